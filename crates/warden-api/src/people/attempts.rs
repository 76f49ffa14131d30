//! Counting attempts at a person's password or code, in the database and
//! in this process's memory, with the lockout they earn and the last code
//! step used.

use super::*;

/// What this process counted for one person: failed attempts and the
/// lockout they earned, and the last code step used.
#[derive(Debug, Default)]
pub(crate) struct Attempts {
    failures: i64,
    locked_until: Option<i64>,
    last_step: Option<i64>,
}

impl Api {
    pub(super) fn attempts_lock(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::HashMap<i64, Attempts>> {
        self.attempts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Counts an attempt at a person's password or code before it is
    /// checked, so concurrent attempts cannot all be checked before the
    /// first failure is written. `Err(until)` while a lockout runs. The
    /// count is kept twice: in the database (for every process), and in
    /// this process's memory, where a same-user process that resets the
    /// columns cannot reach. (Restarting Warden clears the memory, but also
    /// what it opened with the person's password: it then checks no code
    /// until the person signs in again.)
    pub(crate) async fn begin_attempt(&self, user_id: i64, now: i64) -> ApiResult<Result<(), i64>> {
        {
            let mut all = self.attempts_lock();
            let mine = all.entry(user_id).or_default();
            if let Some(until) = mine.locked_until.filter(|u| *u > now) {
                return Ok(Err(until));
            }
            mine.failures += 1;
            mine.locked_until = warden_auth::lockout_until(mine.failures, now);
        }
        let store = self.store.clone();
        blocking(move || {
            Ok(users::begin_attempt(
                &mut store.connect()?,
                user_id,
                now,
                |n| warden_auth::lockout_until(n, now),
            )?)
        })
        .await
    }

    /// The end of a lockout that runs now, by this process's count or the
    /// database's, without counting an attempt.
    pub(crate) fn locked_until(&self, user_id: i64, stored: Option<i64>, now: i64) -> Option<i64> {
        let here = self
            .attempts_lock()
            .get(&user_id)
            .and_then(|a| a.locked_until);
        here.max(stored).filter(|u| *u > now)
    }

    /// A sign-in with the password and a second factor, or a step-up with
    /// a code: this process's count starts again (the database's is reset
    /// beside it, [`users::record_success`]). Other proofs (a provider's
    /// sign-in, a password alone) leave it: a database writer could stand
    /// behind them.
    pub(crate) fn attempt_succeeded(&self, user_id: i64) {
        let mut all = self.attempts_lock();
        let mine = all.entry(user_id).or_default();
        mine.failures = 0;
        mine.locked_until = None;
    }

    /// An admin's reset or a new enrolment: what this process counted for
    /// the person no longer applies.
    pub(super) fn forget_attempts(&self, user_id: i64) {
        self.attempts_lock().remove(&user_id);
    }

    /// Takes `step` as used in this process's memory: `false` when it or a
    /// later one was used here already, whatever the database says.
    pub(super) fn claim_step_here(&self, user_id: i64, step: i64) -> bool {
        let mut all = self.attempts_lock();
        let mine = all.entry(user_id).or_default();
        if mine.last_step.is_some_and(|last| last >= step) {
            return false;
        }
        mine.last_step = Some(step);
        true
    }

    /// The latest step used, by the database's count or this process's.
    pub(super) fn last_step(&self, user_id: i64, stored: Option<i64>) -> Option<i64> {
        let here = self.attempts_lock().get(&user_id).and_then(|a| a.last_step);
        stored.max(here)
    }

    /// A new secret's codes start afresh, as the database's column does.
    pub(super) fn forget_last_step(&self, user_id: i64) {
        if let Some(a) = self.attempts_lock().get_mut(&user_id) {
            a.last_step = None;
        }
    }
}

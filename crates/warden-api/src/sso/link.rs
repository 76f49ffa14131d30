//! Binding a person to one provider account (by themselves or by an
//! admin), and finishing the step-ups and links a browser sign-in started.

use warden_auth::Sensitive;
use warden_store::users::{self, User};

use super::{Purpose, SsoOutcome, stepped_up};
use crate::{Api, ApiError, ApiResult, ErrorCode, Response, blocking};

impl Api {
    /// After an SSO step-up: the session may approve one critical call.
    pub(crate) async fn sso_step_up_done(
        &self,
        o: &SsoOutcome,
        session_hash: String,
        user_id: i64,
    ) -> ApiResult<()> {
        let store = self.store.clone();
        let bound =
            blocking(move || Ok(users::sso_subject_of(&store.connect()?, user_id)?)).await?;
        let subject = format!("{}|{}", o.claims.iss, o.claims.sub);
        if bound.as_deref() != Some(subject.as_str()) {
            return Err(ApiError::new(
                ErrorCode::Unauthenticated,
                "the step-up was done as a different person; sign in at the provider as yourself",
            ));
        }
        let now = self.clock.now();
        let store = self.store.clone();
        let h = session_hash.clone();
        blocking(move || Ok(users::mark_mfa(&store.connect()?, &h, now)?)).await?;
        stepped_up()
            .lock()
            .map_err(|_| ApiError::new(ErrorCode::Internal, "step-up state lost"))?
            .insert(session_hash, now);
        self.record_for(
            &o.who,
            "approval.step_up",
            serde_json::json!({"how": "sso", "result": "verified", "amr": o.claims.amr}),
        )
        .await
    }

    /// Links the signed-in person to the provider account they just signed
    /// in with. Neither may be linked already: changing a link takes an
    /// admin (`warden user sso-link NAME --unlink` first).
    pub(crate) async fn sso_link(&self, actor: &User, o: &SsoOutcome) -> ApiResult<String> {
        let subject = format!("{}|{}", o.claims.iss, o.claims.sub);
        self.bind_subject(actor, &subject, "self").await?;
        Ok(format!("{} ({subject})", o.who))
    }

    /// An admin links a person to one provider account, or unlinks them.
    pub(crate) async fn sso_bind(&self, name: &str, subject: Option<String>) -> ApiResult<()> {
        let person = self.person(name).await?;
        let Some(subject) = subject.map(|s| s.trim().to_string()) else {
            let store = self.store.clone();
            let id = person.id;
            let before = blocking(move || {
                let conn = store.connect()?;
                let before = users::sso_subject_of(&conn, id)?;
                users::set_sso_subject(&conn, id, None)?;
                Ok(before)
            })
            .await?;
            return self
                .record_change(
                    "person.sso_unlinked",
                    name,
                    Some(serde_json::json!({"subject": before})),
                    None,
                )
                .await;
        };
        let subject = if subject.contains('|') {
            subject
        } else {
            let cfg = self.sso_required()?;
            format!("{}|{subject}", cfg.issuer)
        };
        let (iss, sub) = subject.split_once('|').unwrap_or_default();
        if url::Url::parse(iss).is_err() || sub.is_empty() || sub.len() > 255 {
            return Err(ApiError::new(
                ErrorCode::InvalidInput,
                "a provider account is ISSUER|SUBJECT as the refused sign-in's log row shows it (or just the subject, for the configured provider)",
            ));
        }
        self.bind_subject(&person, &subject, "admin").await
    }

    async fn bind_subject(&self, person: &User, subject: &str, by: &str) -> ApiResult<()> {
        let store = self.store.clone();
        let (id, s) = (person.id, subject.to_string());
        let outcome = blocking(move || {
            let conn = store.connect()?;
            if let Some(other) = users::by_sso_subject(&conn, &s)? {
                return Ok(Err(if other.id == id {
                    "already linked to this provider account".to_string()
                } else {
                    format!(
                        "this provider account is already linked to the Warden account {}; an admin can unlink it first",
                        other.name
                    )
                }));
            }
            if users::sso_subject_of(&conn, id)?.is_some() {
                return Ok(Err(
                    "this Warden account is already linked to another provider account; an admin can unlink it first (warden user sso-link NAME --unlink)".to_string(),
                ));
            }
            users::set_sso_subject(&conn, id, Some(&s))?;
            Ok(Ok(()))
        })
        .await?;
        if let Err(why) = outcome {
            return Err(ApiError::new(ErrorCode::Conflict, why));
        }
        self.record_change(
            "person.sso_linked",
            &person.name,
            None,
            Some(serde_json::json!({"subject": subject, "by": by})),
        )
        .await
    }

    /// Finishes a provider sign-in made to link this session's person.
    pub(crate) async fn sso_link_finish(
        &self,
        actor: &User,
        token: &Sensitive<String>,
        flow: &str,
    ) -> ApiResult<Response> {
        let hash = warden_auth::hash_token("session", token.expose());
        let (outcome, purpose) = self.sso_finish(flow, None, None).await?;
        match purpose {
            Purpose::Link(h, id) if h == hash && id == actor.id => {
                Ok(Response::Linked(self.sso_link(actor, &outcome).await?))
            }
            _ => Err(ApiError::new(
                ErrorCode::InvalidInput,
                "that provider sign-in was not a link for this session; start the link again",
            )),
        }
    }

    /// Finishes a provider step-up made for this session.
    pub(crate) async fn sso_step_up_finish(
        &self,
        actor: &User,
        token: &Sensitive<String>,
        flow: &str,
    ) -> ApiResult<Response> {
        let hash = warden_auth::hash_token("session", token.expose());
        let (outcome, purpose) = self.sso_finish(flow, None, None).await?;
        match purpose {
            Purpose::StepUp(h, id) if h == hash && id == actor.id => {
                self.sso_step_up_done(&outcome, h, id).await?;
                Ok(Response::Done)
            }
            _ => Err(ApiError::new(
                ErrorCode::InvalidInput,
                "that sign-in was not a step-up for this session",
            )),
        }
    }
}

//! The one invariant that matters, as a state machine: through any sequence
//! of grants, revocations, approvals, standing approvals, tool changes,
//! reviews, risk overrides, new client sessions and calls, a call reaches the
//! upstream server only when its caller is allowed to make it — low risk or
//! an explicit allow, or a valid approval bound to exactly that agent, tool,
//! arguments and definition — and the call's activity row is committed before
//! the server sees it.
//!
//! The same holds for every other message an agent causes a server to get:
//! the agent's answer to a server's request in the middle of a call
//! (`roots/list`), `logging/setLevel` (the level alone), the notification
//! that its roots changed, resource subscriptions (only to what it may
//! read), and the retries Warden makes for it when a 2026-07-28 server
//! answers `input_required` (each decided again, a person asked again when
//! the retry sends more than they approved, and recorded before it goes).
//!
//! The gateway runs in-process (`Running::start`, as `warden serve` runs it)
//! and agents reach it over HTTP like any MCP client. The upstream is an MCP
//! server in this test that records every call it receives and, at that
//! moment, counts the call's rows in the activity log through a connection of
//! its own. A model written from the rules (DESIGN.md: deny wins, no grant is
//! deny, ask or high risk without an explicit allow asks the owner, approvals
//! bind to agent, tool, arguments and definition) predicts each call; the
//! test compares the prediction with what the upstream received, what the
//! agent was told, and the decision logged.
//!
//! Run inside a Secret Service session (.ci/with-keychain).

use std::collections::{BTreeMap, BTreeSet};
use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response as HttpResponse};
use axum::routing;
use parking_lot::Mutex;
use proptest::prelude::*;
use serde_json::{Value, json};
use warden_api::runtime::{Paths, Running};
use warden_api::{Api, Request, Response};
use warden_auth::{Clock, Keychain, Sensitive, totp};

mod case;
mod client;
mod fixture;
mod model;
mod side;
mod upstream;

use case::*;
use client::*;
use fixture::*;
use model::*;
use upstream::*;

/// How often each path ran, over the whole run: a run that never asked a
/// person, or never forwarded, would prove nothing.
#[derive(Debug, Default)]
pub struct Seen {
    pub forwarded: AtomicUsize,
    pub approved: AtomicUsize,
    pub approval_refused: AtomicUsize,
    pub changed_while_pending: AtomicUsize,
    pub refused: AtomicUsize,
    pub unauthenticated: AtomicUsize,
    pub by_standing_or_session: AtomicUsize,
    pub server_requests_answered: AtomicUsize,
    pub messages_sent: AtomicUsize,
    pub messages_withheld: AtomicUsize,
    pub subscriptions_made: AtomicUsize,
    pub subscriptions_refused: AtomicUsize,
    pub retries_sent: AtomicUsize,
    pub retries_approved_again: AtomicUsize,
    pub retries_refused: AtomicUsize,
}

pub fn seen() -> &'static Seen {
    static SEEN: std::sync::OnceLock<Seen> = std::sync::OnceLock::new();
    SEEN.get_or_init(Seen::default)
}

pub fn bump(counter: &AtomicUsize) {
    counter.fetch_add(1, Ordering::Relaxed);
}

#[test]
pub fn a_call_reaches_the_server_only_when_allowed_and_logged_first() {
    let cases = std::env::var("WARDEN_INVARIANT_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(96);
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases,
        max_shrink_iters: 256,
        ..ProptestConfig::default()
    });
    let result = runner.run(&proptest::collection::vec(op_strategy(), 1..48), |ops| {
        let fx = fixture();
        fx.rt.block_on(async {
            let mut case = Case::start(fx).await;
            for op in &ops {
                case.run(fx, op).await;
            }
            case.finish(fx).await;
        });
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    let s = seen();
    eprintln!("{cases} cases: {s:?}");
    for (what, n) in [
        ("forwarded without asking", &s.forwarded),
        ("forwarded after a person approved", &s.approved),
        ("denied or unanswered approvals", &s.approval_refused),
        (
            "approvals invalidated while pending",
            &s.changed_while_pending,
        ),
        ("refused by policy or quarantine", &s.refused),
        ("refused credentials", &s.unauthenticated),
        (
            "forwarded by a standing or session approval",
            &s.by_standing_or_session,
        ),
        (
            "answered a server request in the middle",
            &s.server_requests_answered,
        ),
        ("a message outside a call that was sent", &s.messages_sent),
        (
            "a message outside a call that was withheld",
            &s.messages_withheld,
        ),
        ("a subscription that was made", &s.subscriptions_made),
        ("a subscription that was refused", &s.subscriptions_refused),
        ("retried without asking again", &s.retries_sent),
        (
            "retried after the person approved the retry",
            &s.retries_approved_again,
        ),
        ("not retried, or not sent at all", &s.retries_refused),
    ] {
        assert!(
            n.load(Ordering::Relaxed) > 0,
            "nothing was {what} in {cases} cases: the run proves too little"
        );
    }
}

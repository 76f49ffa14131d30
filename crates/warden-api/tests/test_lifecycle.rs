//! Sign-in, lockout, expiry and rotation through the API, with an injected
//! clock (nothing sleeps) and the real OS keychain under a service name of its
//! own. Run inside a Secret Service session (.ci/with-keychain).

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use warden_api::{Api, ErrorCode, Request, Response};
use warden_auth::{Clock, Keychain, Sensitive, totp};

struct TestClock(AtomicI64);

impl Clock for TestClock {
    fn now(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

impl TestClock {
    fn set(&self, t: i64) {
        self.0.store(t, Ordering::SeqCst);
    }
}

fn real_now() -> i64 {
    warden_store::now_us() / 1_000_000
}

struct Setup {
    api: Api,
    clock: Arc<TestClock>,
    secret: Vec<u8>,
    password: String,
    service: String,
    _dir: tempfile::TempDir,
}

async fn setup() -> Setup {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = warden_store::Store::open(&dir.path().join("w.db")).expect("store");
    let service = format!("warden-test-{}", warden_auth::random_token().expose());
    let clock = Arc::new(TestClock(AtomicI64::new(real_now())));
    let api = Api::new(
        store,
        dir.path().join("config.toml"),
        Keychain::with_service(service.clone()),
        None,
    )
    .with_clock(clock.clone());
    let password = "correct horse battery".to_string();
    let Response::Enrolled(e) = api
        .call(
            None,
            Request::Init {
                admin: "ada".into(),
                password: Sensitive::new(password.clone()),
            },
        )
        .await
        .expect("init works with a keychain (run inside .ci/with-keychain)")
    else {
        panic!("init answers with an enrollment")
    };
    let secret = totp::decode_secret(e.totp_secret.expose()).expect("base32 secret");
    Setup {
        api,
        clock,
        secret,
        password,
        service,
        _dir: dir,
    }
}

impl Setup {
    async fn login(&self, code: &str) -> Result<Sensitive<String>, warden_api::ApiError> {
        let req = Request::Login {
            name: "ada".into(),
            password: Sensitive::new(self.password.clone()),
            totp: Some(code.to_string()),
            recovery: None,
        };
        match self.api.call(None, req).await? {
            Response::SignedIn(s) => Ok(s.token),
            _ => panic!("login answers with a session"),
        }
    }

    fn code(&self) -> String {
        totp::code_at(&self.secret, self.clock.now())
    }
}

#[tokio::test]
async fn a_totp_code_signs_in_once_and_failures_slow_sign_in_down() {
    let s = setup().await;
    let code = s.code();
    s.login(&code).await.expect("the current code signs in");
    let replay = s
        .login(&code)
        .await
        .expect_err("the same code twice is refused");
    assert_eq!(replay.code, ErrorCode::Unauthenticated);

    // Three wrong attempts, then even the right code waits.
    s.clock.set(s.clock.now() + 60);
    for _ in 0..3 {
        s.login("000000").await.expect_err("wrong code");
    }
    let locked = s.login(&s.code()).await.expect_err("locked for a moment");
    assert!(locked.message.contains("wait"), "{}", locked.message);
    s.clock.set(s.clock.now() + 2);
    s.login(&s.code())
        .await
        .expect("after the delay the right code works");
}

/// Sign-ins from many processes at once: each wrong one counts, so no more
/// are checked than the lockout allows (before, every one of 40 concurrent
/// wrong codes was checked and the count lost most of them).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_wrong_codes_all_count_toward_the_lockout() {
    let s = setup().await;
    let mut attempts = tokio::task::JoinSet::new();
    for _ in 0..40 {
        let api = s.api.clone();
        let password = s.password.clone();
        attempts.spawn(async move {
            let req = Request::Login {
                name: "ada".into(),
                password: Sensitive::new(password),
                totp: Some("000000".into()),
                recovery: None,
            };
            api.call(None, req).await.expect_err("a wrong code").message
        });
    }
    let mut checked = 0;
    let mut locked = 0;
    while let Some(answer) = attempts.join_next().await {
        let message = answer.expect("join");
        if message.contains("wait") {
            locked += 1;
        } else {
            checked += 1;
        }
    }
    assert_eq!(
        checked,
        warden_auth::FREE_ATTEMPTS as usize,
        "only the free attempts are checked; {locked} were turned away"
    );
    let refused = s.login(&s.code()).await.expect_err("locked");
    assert!(refused.message.contains("wait"), "{}", refused.message);
}

/// The first code of an authenticator just set up, typed wrong, is a slip
/// while setting up, and the log says so (not a failed sign-in); once the
/// person signed in, a wrong code is a failed sign-in again.
#[tokio::test]
async fn a_wrong_first_code_is_logged_as_setting_up_not_as_a_failed_sign_in() {
    let s = setup().await;
    let db = s._dir.path().join("w.db");
    let last_kind = || -> String {
        rusqlite::Connection::open(&db)
            .expect("the database opens")
            .query_row(
                "SELECT kind FROM activity ORDER BY id DESC LIMIT 1",
                [],
                |r| r.get(0),
            )
            .expect("a row")
    };
    s.login("000000").await.expect_err("a wrong first code");
    assert_eq!(last_kind(), "auth.first_code_failed");
    s.clock.set(s.clock.now() + 60);
    s.login(&s.code()).await.expect("the right code");
    s.clock.set(s.clock.now() + 60);
    s.login("000000").await.expect_err("a wrong code");
    assert_eq!(last_kind(), "auth.sign_in_failed");
}

/// A same-user process that writes the database resets the failure count,
/// the lockout and the last used step after each try: the running Warden
/// counts them in its own memory as well, so it still refuses a replayed
/// code and still locks after the free attempts (before, both columns were
/// all it knew).
#[tokio::test]
async fn resetting_the_lockout_and_last_step_columns_gains_a_database_writer_nothing() {
    let s = setup().await;
    let db = s._dir.path().join("w.db");
    let reset = || {
        rusqlite::Connection::open(&db)
            .expect("the database opens")
            .execute(
                "UPDATE users SET failed_attempts = 0, locked_until_s = NULL, totp_last_step = NULL",
                [],
            )
            .expect("the columns reset");
    };
    let code = s.code();
    s.login(&code).await.expect("the current code signs in");
    reset();
    let replay = s
        .login(&code)
        .await
        .expect_err("a used code stays used in this process");
    assert_eq!(
        replay.code,
        ErrorCode::Unauthenticated,
        "{}",
        replay.message
    );

    s.clock.set(s.clock.now() + 120);
    for _ in 0..warden_auth::FREE_ATTEMPTS {
        reset();
        s.login("000000").await.expect_err("wrong code");
    }
    reset();
    let locked = s
        .login(&s.code())
        .await
        .expect_err("locked, whatever the columns say");
    assert!(locked.message.contains("wait"), "{}", locked.message);
}

/// The same code sent by several processes at the same moment signs in
/// once (before, each read the last used step before any wrote it).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_code_sent_concurrently_signs_in_once() {
    let s = setup().await;
    let code = s.code();
    let mut attempts = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let api = s.api.clone();
        let password = s.password.clone();
        let code = code.clone();
        attempts.spawn(async move {
            let req = Request::Login {
                name: "ada".into(),
                password: Sensitive::new(password),
                totp: Some(code),
                recovery: None,
            };
            api.call(None, req).await.is_ok()
        });
    }
    let mut signed_in = 0;
    while let Some(ok) = attempts.join_next().await {
        signed_in += usize::from(ok.expect("join"));
    }
    assert_eq!(signed_in, 1, "one code, one sign-in");
}

#[tokio::test]
async fn sessions_end_when_idle_or_too_old() {
    let s = setup().await;
    let token = s.login(&s.code()).await.expect("sign in");
    s.api
        .call(Some(&token), Request::Whoami)
        .await
        .expect("fresh session");
    s.clock.set(s.clock.now() + 29 * 60);
    s.api
        .call(Some(&token), Request::Whoami)
        .await
        .expect("used within the idle limit");
    s.clock.set(s.clock.now() + 31 * 60);
    let idle = s
        .api
        .call(Some(&token), Request::Whoami)
        .await
        .expect_err("idle too long");
    assert_eq!(idle.code, ErrorCode::Unauthenticated);
}

#[tokio::test]
async fn agents_expire_and_rotation_keeps_the_old_credential_for_an_hour() {
    let s = setup().await;
    let now = s.clock.now();
    // Signed in 31 days ago (sessions and codes follow the same clock).
    s.clock.set(now - 31 * 86_400);
    let token = s.login(&s.code()).await.expect("sign in");
    let add = |name: &str, days: Option<u32>| Request::AgentAdd {
        name: name.into(),
        roles: vec![],
        owner: None,
        expires_days: days,
    };
    let credential = |r: Response| match r {
        Response::AgentCreated(c) => c.credential,
        _ => panic!("an agent was created"),
    };
    let too_long = s
        .api
        .call(Some(&token), add("greedy", Some(5000)))
        .await
        .expect_err("over the maximum");
    assert_eq!(too_long.code, ErrorCode::InvalidInput);

    // Made 31 days ago with the default 30-day life: expired now.
    let old = credential(
        s.api
            .call(Some(&token), add("old", None))
            .await
            .expect("add old"),
    );
    s.clock.set(now);
    let token = s.login(&s.code()).await.expect("sign in again today");
    let fresh = credential(
        s.api
            .call(Some(&token), add("fresh", Some(1)))
            .await
            .expect("add fresh"),
    );

    let key = s.api.credential_key().await.expect("credential key");
    let store = s.api.store().clone();
    let gw = warden_gateway::Gateway::start(
        store,
        std::env::temp_dir().join("unused-config.toml"),
        Default::default(),
        warden_api::secret_resolver(Keychain::default()),
        key.clone(),
    )
    .expect("gateway");
    assert!(
        gw.authenticate(&old).is_none(),
        "an expired credential is refused"
    );
    assert!(gw.authenticate(&old).is_none(), "and again");
    let conn = s.api.store().connect().expect("db");
    let mut expired_events = 0;
    for _ in 0..100 {
        let filter = warden_store::ActivityFilter {
            kind: Some("agent.credential_expired".into()),
            limit: 10,
            ..Default::default()
        };
        let rows = warden_store::ActivityLog::query(&conn, &filter).expect("query");
        expired_events = rows.len();
        if expired_events > 0 {
            assert_eq!(rows[0].event.agent.as_deref(), Some("old"));
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(expired_events, 1, "the expiry is on the record, once");
    assert!(gw.authenticate(&fresh).is_some());

    // Rotated now: old and new both work during the overlap.
    let rotated = credential(
        s.api
            .call(
                Some(&token),
                Request::AgentRotate {
                    name: "fresh".into(),
                    expires_days: None,
                },
            )
            .await
            .expect("rotate"),
    );
    gw.reload_agents().expect("reload");
    assert!(
        gw.authenticate(&fresh).is_some(),
        "the old credential works for an hour"
    );
    assert!(gw.authenticate(&rotated).is_some());

    // Rotated two hours ago (by the API's clock): the overlap is over. The
    // session is from today, so only the rotation's clock moves back.
    s.clock.set(now - 2 * 3600);
    let token = {
        s.clock.set(now + 60);
        let t = s.login(&s.code()).await.expect("sign in once more");
        s.clock.set(now - 2 * 3600);
        t
    };
    let again = credential(
        s.api
            .call(
                Some(&token),
                Request::AgentRotate {
                    name: "fresh".into(),
                    expires_days: None,
                },
            )
            .await
            .expect("rotate again"),
    );
    s.clock.set(now);
    gw.reload_agents().expect("reload");
    assert!(
        gw.authenticate(&rotated).is_none(),
        "after the overlap the old credential is refused"
    );
    assert!(gw.authenticate(&again).is_some());
}

#[tokio::test]
async fn the_review_flags_unused_expired_and_orphaned_agents() {
    let s = setup().await;
    let now = s.clock.now();
    let add = |name: &str, days: Option<u32>, owner: Option<&str>| Request::AgentAdd {
        name: name.into(),
        roles: vec![],
        owner: owner.map(String::from),
        expires_days: days,
    };
    // Forty days ago: one agent that lives a year and was never used, one
    // that lived thirty days; and a person whose agent will be orphaned.
    s.clock.set(now - 40 * 86_400);
    let token = s.login(&s.code()).await.expect("sign in");
    s.api
        .call(Some(&token), add("idle", Some(365), None))
        .await
        .expect("idle agent");
    s.api
        .call(Some(&token), add("lapsed", Some(30), None))
        .await
        .expect("lapsed agent");
    s.clock.set(now);
    let token = s.login(&s.code()).await.expect("sign in today");
    s.api
        .call(
            Some(&token),
            Request::UserAdd {
                name: "bob".into(),
                admin: false,
                agent_roles: vec![],
            },
        )
        .await
        .expect("add bob");
    s.api
        .call(Some(&token), add("bobs-bot", Some(30), Some("bob")))
        .await
        .expect("bob's agent");
    s.api
        .call(Some(&token), add("busy", Some(30), None))
        .await
        .expect("a fine agent");
    s.api
        .call(Some(&token), Request::UserDisable { name: "bob".into() })
        .await
        .expect("disable bob");

    let Response::Review(r) = s
        .api
        .call(Some(&token), Request::Review { record: false })
        .await
        .expect("review")
    else {
        panic!("a review")
    };
    let flags = |name: &str| {
        r.agents
            .iter()
            .find(|a| a.name == name)
            .map(|a| a.flags.clone())
            .expect("agent listed")
    };
    assert!(
        flags("idle").contains(&"unused".to_string()),
        "{:?}",
        flags("idle")
    );
    assert!(!flags("idle").contains(&"expired".to_string()));
    assert!(
        flags("lapsed").contains(&"expired".to_string()),
        "{:?}",
        flags("lapsed")
    );
    assert!(
        flags("bobs-bot").contains(&"orphaned".to_string()),
        "{:?}",
        flags("bobs-bot")
    );
    assert!(flags("busy").is_empty(), "{:?}", flags("busy"));
    assert!(r.due, "never reviewed: a review is due");
    assert!(
        r.people
            .iter()
            .any(|p| p.name == "bob" && p.status == "disabled" && p.agents == 1)
    );

    let Response::Review(done) = s
        .api
        .call(Some(&token), Request::Review { record: true })
        .await
        .expect("record")
    else {
        panic!("a review")
    };
    assert!(!done.due);
    s.clock.set(now + 91 * 86_400);
    let token = s.login(&s.code()).await.expect("sign in later");
    let Response::Review(later) = s
        .api
        .call(Some(&token), Request::Review { record: false })
        .await
        .expect("review")
    else {
        panic!("a review")
    };
    assert!(later.due, "ninety days later the next review is due");
}

#[tokio::test]
async fn sensitive_changes_need_a_second_factor_from_the_last_five_minutes() {
    let s = setup().await;
    let token = s.login(&s.code()).await.expect("sign in");
    let grant = |explicit: bool| Request::Grant {
        role: "writers".into(),
        server: "fs".into(),
        pattern: "write_*".into(),
        effect: "allow".into(),
        explicit,
    };
    s.api
        .call(
            Some(&token),
            Request::RoleAdd {
                name: "writers".into(),
                description: String::new(),
            },
        )
        .await
        .expect("role");
    s.api
        .call(Some(&token), grant(true))
        .await
        .expect("just signed in: the sign-in's code counts");
    s.clock.set(s.clock.now() + 301);
    let stale = s
        .api
        .call(Some(&token), grant(true))
        .await
        .expect_err("five minutes later it needs a fresh code");
    assert_eq!(stale.code, ErrorCode::MfaRequired);
    assert!(
        stale.message.contains("warden confirm"),
        "{}",
        stale.message
    );
    let allow = s
        .api
        .call(Some(&token), grant(false))
        .await
        .expect_err("any allow grant gives power, so it needs one too");
    assert_eq!(allow.code, ErrorCode::MfaRequired);
    s.api
        .call(
            Some(&token),
            Request::Grant {
                role: "writers".into(),
                server: "fs".into(),
                pattern: "read_*".into(),
                effect: "deny".into(),
                explicit: false,
            },
        )
        .await
        .expect("a change that only narrows does not");
    let wrong = s
        .api
        .call(
            Some(&token),
            Request::Confirm {
                totp: "000000".into(),
                password: None,
            },
        )
        .await
        .expect_err("a wrong code confirms nothing");
    assert_eq!(wrong.code, ErrorCode::Unauthenticated);
    s.clock.set(s.clock.now() + 2);
    s.api
        .call(
            Some(&token),
            Request::Confirm {
                totp: s.code(),
                password: None,
            },
        )
        .await
        .expect("a fresh code confirms");
    s.api
        .call(Some(&token), grant(true))
        .await
        .expect("confirmed: the change goes through");
}

async fn enrol(
    s: &Setup,
    name: &str,
    code: &str,
    password: &str,
) -> Result<warden_api::Enrollment, warden_api::ApiError> {
    let req = Request::Enrol {
        name: name.into(),
        code: Sensitive::new(code.into()),
        password: Sensitive::new(password.into()),
    };
    match s.api.call(None, req).await? {
        Response::Enrolled(e) => Ok(*e),
        _ => panic!("enrol answers with an enrollment"),
    }
}

async fn login_as(
    s: &Setup,
    name: &str,
    password: &str,
    code: &str,
) -> Result<Sensitive<String>, warden_api::ApiError> {
    let req = Request::Login {
        name: name.into(),
        password: Sensitive::new(password.into()),
        totp: Some(code.into()),
        recovery: None,
    };
    match s.api.call(None, req).await? {
        Response::SignedIn(x) => Ok(x.token),
        _ => panic!("login answers with a session"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_person_enrols_themselves_and_the_admin_never_holds_their_secrets() {
    let s = setup().await;
    let admin = s.login(&s.code()).await.expect("sign in");
    let Response::Invited(invite) = s
        .api
        .call(
            Some(&admin),
            Request::UserAdd {
                name: "bob".into(),
                admin: false,
                agent_roles: vec![],
            },
        )
        .await
        .expect("add bob")
    else {
        panic!("adding a person answers with an invitation")
    };
    // What the admin got back: a name and a code, nothing that signs in.
    let seen = serde_json::to_value(&*invite).expect("json");
    assert_eq!(
        seen.as_object()
            .map(|o| o.keys().cloned().collect::<Vec<_>>()),
        Some(vec!["user".into(), "code".into(), "expires_s".into()])
    );
    assert!(seen["user"]["invited"].as_bool() == Some(true));
    let code = invite.code.expose().clone();
    login_as(&s, "bob", "", "000000")
        .await
        .expect_err("no password signs bob in before he enrols");

    let wrong = enrol(
        &s,
        "bob",
        "aaaaa-bbbbb-ccccc-ddddd",
        "a long passphrase of his own",
    )
    .await
    .expect_err("a wrong code enrols no one");
    assert_eq!(wrong.code, ErrorCode::Unauthenticated);
    s.clock.set(s.clock.now() + 2);

    // Eight requests carry the right code at once: one enrols.
    let mut tasks = Vec::new();
    for i in 0..8 {
        let api = s.api.clone();
        let code = code.to_uppercase().replace('-', " ");
        tasks.push(tokio::spawn(async move {
            api.call(
                None,
                Request::Enrol {
                    name: "bob".into(),
                    code: Sensitive::new(code),
                    password: Sensitive::new(format!("a passphrase of his own {i}")),
                },
            )
            .await
        }));
    }
    let mut won = Vec::new();
    for (i, t) in tasks.into_iter().enumerate() {
        if let Ok(Response::Enrolled(e)) = t.await.expect("task") {
            won.push((i, e));
        }
    }
    assert_eq!(won.len(), 1, "one code enrols once");
    let (i, e) = won.pop().expect("the winner");
    let password = format!("a passphrase of his own {i}");
    assert_eq!(e.recovery_codes.len(), 10);
    let secret = totp::decode_secret(e.totp_secret.expose()).expect("secret");
    let bob = login_as(&s, "bob", &password, &totp::code_at(&secret, s.clock.now()))
        .await
        .expect("bob signs in with the password and code he chose");

    // He changes his password; the old one stops working.
    let bad = s
        .api
        .call(
            Some(&bob),
            Request::PasswordChange {
                current: Sensitive::new("not it at all".into()),
                new: Sensitive::new("a brand new passphrase".into()),
            },
        )
        .await
        .expect_err("the current password must be right");
    assert_eq!(bad.code, ErrorCode::Unauthenticated);
    s.clock.set(s.clock.now() + 2);
    s.api
        .call(
            Some(&bob),
            Request::PasswordChange {
                current: Sensitive::new(password.clone()),
                new: Sensitive::new("a brand new passphrase".into()),
            },
        )
        .await
        .expect("password changed");
    s.clock.set(s.clock.now() + 30);
    login_as(&s, "bob", &password, &totp::code_at(&secret, s.clock.now()))
        .await
        .expect_err("the old password is gone");
    s.clock.set(s.clock.now() + 30);
    let bob = login_as(
        &s,
        "bob",
        "a brand new passphrase",
        &totp::code_at(&secret, s.clock.now()),
    )
    .await
    .expect("the new one works");

    // A new phone: the old secret stops working.
    let Response::Enrolled(again) = s
        .api
        .call(
            Some(&bob),
            Request::TotpReenrol {
                password: Sensitive::new("a brand new passphrase".into()),
            },
        )
        .await
        .expect("just signed in, so the code is fresh")
    else {
        panic!("re-enrolling answers with an enrollment")
    };
    let fresh = totp::decode_secret(again.totp_secret.expose()).expect("secret");
    assert_ne!(fresh, secret);
    s.clock.set(s.clock.now() + 30);
    login_as(
        &s,
        "bob",
        "a brand new passphrase",
        &totp::code_at(&secret, s.clock.now()),
    )
    .await
    .expect_err("the old authenticator no longer signs in");
    s.clock.set(s.clock.now() + 2);
    login_as(
        &s,
        "bob",
        "a brand new passphrase",
        &totp::code_at(&fresh, s.clock.now()),
    )
    .await
    .expect("the new one does");

    // The admin resets bob: his password stops working; the new code
    // expires after three days.
    let admin = s.login(&s.code()).await.expect("admin signs in again");
    let Response::Invited(reset) = s
        .api
        .call(Some(&admin), Request::UserReset { name: "bob".into() })
        .await
        .expect("reset bob")
    else {
        panic!("a reset answers with an invitation")
    };
    s.clock.set(s.clock.now() + 30);
    login_as(
        &s,
        "bob",
        "a brand new passphrase",
        &totp::code_at(&fresh, s.clock.now()),
    )
    .await
    .expect_err("after a reset the old sign-in is gone");
    s.clock.set(s.clock.now() + 73 * 3600);
    enrol(&s, "bob", reset.code.expose(), "yet another passphrase")
        .await
        .expect_err("an expired code enrols no one");
}

#[tokio::test]
async fn an_authenticator_secret_is_sealed_with_the_password_and_an_old_clear_one_is_sealed_at_sign_in()
 {
    let s = setup().await;
    let service = s.service.clone();
    let account = format!("{}/totp/1", s.api.store().install_id().expect("install id"));
    let kc = Keychain::with_service(service.clone());
    // The keychain blocks: off the async threads, as Warden calls it.
    let read = |kc: Keychain, account: String| async move {
        tokio::task::spawn_blocking(move || kc.get(&account))
            .await
            .expect("joined")
            .expect("keychain")
            .expect("an item")
    };
    let stored = read(kc.clone(), account.clone()).await;
    assert!(warden_auth::seal::is_sealed(stored.expose()));
    assert!(
        !stored
            .expose()
            .contains(totp::encode_secret(&s.secret).expose().as_str())
    );

    // An older Warden kept it in the clear: the next sign-in seals it.
    let (k, a, clear) = (kc.clone(), account.clone(), totp::encode_secret(&s.secret));
    tokio::task::spawn_blocking(move || k.set(&a, &clear))
        .await
        .expect("joined")
        .expect("keychain");
    s.login(&s.code())
        .await
        .expect("the clear secret still signs in");
    let resealed = read(kc.clone(), account.clone()).await;
    assert!(
        warden_auth::seal::is_sealed(resealed.expose()),
        "sealed once the password proved itself"
    );
    s.clock.set(s.clock.now() + 30);
    s.login(&s.code()).await.expect("and signs in sealed");

    // A second process on the same data (the CLI beside the app) has not
    // seen the password: it cannot check a code, while the first can.
    let other = Api::new(
        s.api.store().clone(),
        s._dir.path().join("config.toml"),
        Keychain::with_service(service),
        None,
    )
    .with_clock(s.clock.clone());
    s.clock.set(s.clock.now() + 30);
    let token = s.login(&s.code()).await.expect("signed in");
    s.clock.set(s.clock.now() + 30);
    let confirm = |code: String| Request::Confirm {
        totp: code,
        password: None,
    };
    let refused = other
        .call(Some(&token), confirm(s.code()))
        .await
        .expect_err("not unlocked in this process");
    assert_eq!(refused.code, ErrorCode::MfaRequired);
    other
        .call(
            Some(&token),
            Request::Confirm {
                totp: s.code(),
                password: Some(Sensitive::new(s.password.clone())),
            },
        )
        .await
        .expect("with the password it can");

    // A new authenticator set up through the second process retires what
    // the first remembers.
    let Response::Enrolled(_) = other
        .call(
            Some(&token),
            Request::TotpReenrol {
                password: Sensitive::new(s.password.clone()),
            },
        )
        .await
        .expect("re-enrolled")
    else {
        panic!("an enrollment")
    };
    s.clock.set(s.clock.now() + 30);
    let stale = s
        .api
        .call(Some(&token), confirm(s.code()))
        .await
        .expect_err("the old secret is not checked any more");
    assert_eq!(stale.code, ErrorCode::MfaRequired);
}

#[tokio::test]
async fn a_secret_planted_by_a_same_user_process_confirms_nothing() {
    let s = setup().await;
    let account = format!("{}/totp/1", s.api.store().install_id().expect("install id"));
    let token = s.login(&s.code()).await.expect("ada signs in");
    let plant = |value: Sensitive<String>| {
        let (kc, a) = (Keychain::with_service(s.service.clone()), account.clone());
        async move {
            tokio::task::spawn_blocking(move || kc.set(&a, &value))
                .await
                .expect("joined")
                .expect("keychain")
        }
    };
    let mine = totp::generate_secret();
    let own_pw = Sensitive::new("the attacker's own passphrase".to_string());
    let confirm = |password: Option<Sensitive<String>>| Request::Confirm {
        totp: totp::code_at(mine.expose(), s.clock.now()),
        password,
    };

    // Sealed under a password of its own: it opens with that password, but
    // that is not ada's.
    plant(warden_auth::seal::seal(&own_pw, &account, mine.expose()).expect("seal")).await;
    s.clock.set(s.clock.now() + 30);
    let refused = s
        .api
        .call(Some(&token), confirm(Some(own_pw.clone())))
        .await
        .expect_err("the attacker's password is not ada's");
    assert_eq!(refused.code, ErrorCode::Unauthenticated);
    // A failed sign-in with that password leaves nothing behind in memory.
    s.clock.set(s.clock.now() + 30);
    let req = Request::Login {
        name: "ada".into(),
        password: own_pw.clone(),
        totp: Some(totp::code_at(mine.expose(), s.clock.now())),
        recovery: None,
    };
    s.api.call(None, req).await.expect_err("not ada's password");
    s.clock.set(s.clock.now() + 30);
    let refused = s
        .api
        .call(Some(&token), confirm(None))
        .await
        .expect_err("what ada's sign-in opened was replaced, so nothing is unlocked");
    assert_eq!(refused.code, ErrorCode::MfaRequired);

    // In the clear, as an older Warden kept it: no password, no check.
    plant(totp::encode_secret(mine.expose())).await;
    s.clock.set(s.clock.now() + 30);
    s.api
        .call(Some(&token), confirm(Some(own_pw)))
        .await
        .expect_err("a clear secret does not stand in for ada's password");
    s.clock.set(s.clock.now() + 30);
    s.api
        .call(Some(&token), confirm(None))
        .await
        .expect_err("nor for her sign-in");
}

/// Over the control socket, where any process of the person's OS user can
/// send a request with a session it found, a change of policy brings its
/// own proof each time: a session that just proved a code is not enough,
/// a wrong code or none is refused and recorded, and a fresh code (checked
/// against the secret this Warden unsealed at sign-in) goes through once.
#[tokio::test]
async fn over_the_socket_each_change_of_policy_brings_its_own_proof() {
    let s = setup().await;
    let token = s.login(&s.code()).await.expect("sign in");
    s.api
        .call(
            Some(&token),
            Request::RoleAdd {
                name: "writers".into(),
                description: String::new(),
            },
        )
        .await
        .expect("role");
    let grant = || Request::Grant {
        role: "writers".into(),
        server: "fs".into(),
        pattern: "write_*".into(),
        effect: "allow".into(),
        explicit: true,
    };
    let peer = Some(warden_api::Peer {
        pid: std::process::id(),
        uid: 0,
    });
    let code = |c: String| Some(warden_api::Presence::Code(Sensitive::new(c)));

    let none = s
        .api
        .call_remote(Some(&token), grant(), peer, None)
        .await
        .expect_err("a fresh session alone proves nothing over the socket");
    assert_eq!(none.code, ErrorCode::MfaRequired);
    assert!(none.message.contains("--code"), "{}", none.message);
    let unknown = s
        .api
        .call_remote(
            Some(&token),
            grant(),
            None,
            Some(warden_api::Presence::System),
        )
        .await
        .expect_err("the system cannot be asked about a caller nobody knows");
    assert_eq!(unknown.code, ErrorCode::MfaRequired);
    s.clock.set(s.clock.now() + 30);
    let wrong = s
        .api
        .call_remote(Some(&token), grant(), peer, code("000000".into()))
        .await
        .expect_err("a wrong code");
    assert_eq!(wrong.code, ErrorCode::Unauthenticated);
    s.clock.set(s.clock.now() + 2);
    let fresh = s.code();
    s.api
        .call_remote(Some(&token), grant(), peer, code(fresh.clone()))
        .await
        .expect("a fresh code from the person's app");
    let again = s
        .api
        .call_remote(Some(&token), grant(), peer, code(fresh))
        .await
        .expect_err("the same code twice");
    assert_eq!(again.code, ErrorCode::Unauthenticated);

    let Response::Log(rows) = s
        .api
        .call(
            Some(&token),
            Request::Log {
                filter: Default::default(),
                limit: 100,
            },
        )
        .await
        .expect("log")
    else {
        panic!("log answers with rows")
    };
    let refused: Vec<String> = rows
        .iter()
        .filter(|r| r.event.kind == "access.refused")
        .filter_map(|r| r.event.detail.as_deref())
        .filter_map(|d| serde_json::from_str::<serde_json::Value>(d).ok())
        .map(|d| d["why"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(
        refused,
        vec!["presence not confirmed", "no proof of presence"],
        "each refusal without a step-up is recorded (newest first)"
    );
}

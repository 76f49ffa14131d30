//! The gateway, once per test run; every case gets its own server, roles and
//! agents so cases do not see each other.

use crate::*;

pub struct FixedClock(AtomicI64);

impl Clock for FixedClock {
    fn now(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

pub struct Fixture {
    pub rt: tokio::runtime::Runtime,
    pub running: Running,
    /// An API on the same install whose clock stands still, so the admin's
    /// sign-in stays fresh enough for sensitive changes however long this runs.
    pub api: Api,
    pub token: Sensitive<String>,
    pub db: PathBuf,
    pub http: reqwest::Client,
    pub cases: AtomicUsize,
    pub _dir: tempfile::TempDir,
}

pub fn fixture() -> &'static Fixture {
    static FIXTURE: std::sync::OnceLock<Fixture> = std::sync::OnceLock::new();
    FIXTURE.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(
            dir.path().join("config.toml"),
            "[gateway]\nlisten = \"127.0.0.1:0\"\n\n[approvals]\ntimeout_secs = 1\ndesktop_notifications = false\n",
        )
        .expect("config");
        let paths = Paths::resolve(Some(dir.path().to_path_buf())).expect("paths");
        let (running, api, token) = rt.block_on(async {
            let setup = paths.open_api(None).expect("api");
            let Response::Enrolled(e) = setup
                .call(
                    None,
                    Request::Init {
                        admin: "ada".into(),
                        password: Sensitive::new("correct horse battery".into()),
                    },
                )
                .await
                .expect("init works with a keychain (run inside .ci/with-keychain)")
            else {
                panic!("init answers with an enrollment")
            };
            let secret = totp::decode_secret(e.totp_secret.expose()).expect("secret");
            let running = Running::start(&paths, None).await.expect("gateway starts");
            let clock = Arc::new(FixedClock(AtomicI64::new(
                warden_store::now_us() / 1_000_000,
            )));
            let api = Api::new(
                running.api.store().clone(),
                paths.config.clone(),
                Keychain::default(),
                Some(running.gateway.clone()),
            )
            .with_clock(clock.clone());
            let signed_in = api
                .call(
                    None,
                    Request::Login {
                        name: "ada".into(),
                        password: Sensitive::new("correct horse battery".into()),
                        totp: Some(totp::code_at(&secret, clock.now())),
                        recovery: None,
                    },
                )
                .await
                .expect("sign in");
            let Response::SignedIn(s) = signed_in else {
                panic!("sign-in answers with a session")
            };
            // No notifications is looser than Warden's defaults: the admin
            // approves it, with the next code.
            let Response::Settings(review) = api
                .call(
                    Some(&s.token),
                    Request::SettingsApprove {
                        hash: None,
                        totp: None,
                    },
                )
                .await
                .expect("settings review")
            else {
                panic!("the review answers with the settings")
            };
            clock.0.fetch_add(30, Ordering::SeqCst);
            api.call(
                Some(&s.token),
                Request::SettingsApprove {
                    hash: Some(review.hash),
                    totp: Some(totp::code_at(&secret, clock.now())),
                },
            )
            .await
            .expect("the admin approves the settings");
            (running, api, s.token)
        });
        Fixture {
            rt,
            running,
            api,
            token,
            db: paths.db.clone(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(20))
                .build()
                .expect("client"),
            cases: AtomicUsize::new(0),
            _dir: dir,
        }
    })
}

impl Fixture {
    pub async fn admin(&self, req: Request) -> Result<Response, warden_api::ApiError> {
        self.api.call(Some(&self.token), req).await
    }
}

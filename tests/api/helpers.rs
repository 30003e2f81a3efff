//! Spawning servers and talking to them.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

pub const OPERATOR: &str = "sgl_test-operator-token-0123456789abcdefghijklmnop";

/// The environment variable a debug build of `sigil serve` reads its clock file from
/// (`sigil::config::TestClockSource`; release builds lack it).
const TEST_CLOCK_VAR: &str = "SIGIL_TEST_CLOCK_FILE";

/// The clock of the servers a test starts with [`TestClock::opts`]: it stands still where
/// the test puts it, so expiry, schedules and daily budgets are tested at chosen instants
/// rather than at whatever time the suite happens to run (or cross midnight).
pub struct TestClock {
    dir: tempfile::TempDir,
    path: PathBuf,
}

impl TestClock {
    /// A clock standing at `at` (RFC 3339).
    pub fn at(at: &str) -> TestClock {
        if !cfg!(debug_assertions) {
            panic!("the test clock exists only in debug builds of sigil; run these tests without --release");
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("now");
        let clock = TestClock { dir, path };
        clock.set(at);
        clock
    }

    /// Moves the clock to `at` (RFC 3339); the server sees it at its next reading. The file
    /// is replaced by a rename, so the server never reads half of it.
    pub fn set(&self, at: &str) {
        let t: jiff::Timestamp = at.parse().unwrap_or_else(|e| panic!("{at}: {e}"));
        let tmp = self.dir.path().join("now.tmp");
        std::fs::write(&tmp, t.to_string()).unwrap();
        std::fs::rename(&tmp, &self.path).unwrap();
    }

    /// Server options with this clock (and the defaults).
    pub fn opts(&self) -> Opts {
        let mut o = Opts::default();
        o.env.push((TEST_CLOCK_VAR.into(), self.path.display().to_string()));
        o
    }
}

/// A running `sigil serve` process.
///
/// Its stderr (the logs, at `debug`) is captured; every secret the test gets to see (the
/// operator token, each token presented or returned, the root key, passphrase and TLS
/// key) is recorded, and when the server stops, gracefully or on drop, its logs must
/// contain none of them and it must have exited 0 after SIGTERM.
pub struct Server {
    pub child: Child,
    pub base: String,
    pub data: PathBuf,
    pub client: reqwest::Client,
    _dir: Option<tempfile::TempDir>,
    listen: String,
    logs: Logs,
    secrets: Secrets,
    exited: bool,
    /// The test clock's variable, kept for restarts (a restarted server keeps its clock).
    clock_env: Option<(String, String)>,
}

/// Secrets the logs must never contain, shared across restarts of one server.
#[derive(Clone, Default)]
pub struct Secrets(Arc<Mutex<BTreeSet<Vec<u8>>>>);

impl Secrets {
    pub fn add(&self, secret: impl AsRef<[u8]>) {
        let s = secret.as_ref();
        // Short strings would match by chance; every real secret here is far longer.
        if s.len() >= 16 {
            self.0.lock().unwrap().insert(s.to_vec());
        }
    }

    /// Key bytes in every form a log line could carry them: raw, hex, base64, `{:?}`.
    pub fn add_key(&self, key: &[u8]) {
        use base64::Engine;
        use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE_NO_PAD};
        self.add(key);
        self.add(hex::encode(key));
        self.add(hex::encode_upper(key));
        self.add(STANDARD.encode(key));
        self.add(STANDARD_NO_PAD.encode(key));
        self.add(URL_SAFE_NO_PAD.encode(key));
        self.add(format!("{key:?}"));
    }

    /// Every token in a response body (`admin_token`, `access_token`, `token`, …): tokens
    /// are the strings that start `sgl_`.
    fn add_from_response(&self, v: &Value) {
        match v {
            Value::String(t) if t.starts_with("sgl_") => self.add(t),
            Value::Object(m) => m.values().for_each(|v| self.add_from_response(v)),
            Value::Array(a) => a.iter().for_each(|v| self.add_from_response(v)),
            _ => {}
        }
    }

    /// The secrets among `opts` and the data directory: key files, passphrases, the TLS key.
    fn add_from_setup(&self, opts: &Opts, data: &Path) {
        self.add(OPERATOR);
        let mut args = opts.args.iter();
        while let Some(a) = args.next() {
            if a == "--root-key-file" || a == "--new-root-key-file" || a == "--next-root-key-file" {
                if let Some(k) = args.next().and_then(|f| std::fs::read(f).ok()) {
                    self.add_key(&k);
                }
            }
        }
        for (k, v) in &opts.env {
            match k.as_str() {
                "SIGIL_BOOTSTRAP_TOKEN" | "SIGIL_ROOT_PASSPHRASE" => self.add(v),
                "SIGIL_ROOT_PASSPHRASE_FILE" | "SIGIL_ROOT_KEY_FILE" | "SIGIL_NEXT_ROOT_KEY_FILE" => {
                    if let Ok(b) = std::fs::read(v) {
                        self.add_key(&b);
                        self.add(String::from_utf8_lossy(&b).trim());
                    }
                }
                _ => {}
            }
        }
        if let Ok(k) = std::fs::read(data.join("root.key")) {
            self.add_key(&k);
        }
        if let Ok(t) = std::fs::read_to_string(data.join("operator.token")) {
            self.add(t.trim());
        }
        if let Ok(pem) = std::fs::read_to_string(data.join("tls/key.pem")) {
            for line in pem.lines().filter(|l| !l.starts_with("-----")) {
                self.add(line);
            }
        }
    }

    /// Whether `secret` is among those recorded.
    pub fn has(&self, secret: impl AsRef<[u8]>) -> bool {
        self.0.lock().unwrap().contains(secret.as_ref())
    }

    /// Panics on the first secret found in `logs`, quoting the log line it is in.
    pub fn assert_absent_from(&self, logs: &[u8], what: &str) {
        for s in self.0.lock().unwrap().iter() {
            if let Some(at) = logs.windows(s.len()).position(|w| w == s.as_slice()) {
                let line_start = logs[..at].iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
                let line_end = logs[at..].iter().position(|b| *b == b'\n').map_or(logs.len(), |i| at + i);
                panic!(
                    "{what}: a secret ({} bytes, starting {:?}) appears in the server's logs, in the line:\n{}",
                    s.len(),
                    String::from_utf8_lossy(&s[..6]),
                    String::from_utf8_lossy(&logs[line_start..line_end])
                );
            }
        }
    }
}

/// The server's stderr, read to the end by a thread.
struct Logs {
    buf: Arc<Mutex<Vec<u8>>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Logs {
    fn capture(stderr: std::process::ChildStderr) -> Logs {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let sink = buf.clone();
        let reader = std::thread::spawn(move || {
            let mut stderr = stderr;
            let mut chunk = [0u8; 8192];
            while let Ok(n @ 1..) = stderr.read(&mut chunk) {
                sink.lock().unwrap().extend_from_slice(&chunk[..n]);
            }
        });
        Logs { buf, reader: Some(reader) }
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.buf.lock().unwrap()).into_owned()
    }

    /// Waits for the reader to see end-of-file (the process has exited).
    fn finish(&mut self) -> Vec<u8> {
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
        self.buf.lock().unwrap().clone()
    }
}

#[derive(Clone)]
pub struct Opts {
    pub env: Vec<(String, String)>,
    pub args: Vec<String>,
}

impl Default for Opts {
    fn default() -> Self {
        Self { env: vec![("SIGIL_BOOTSTRAP_TOKEN".into(), OPERATOR.into())], args: vec![] }
    }
}

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_sigil")
}

/// PostgreSQL for the tests: the cluster `SIGIL_TEST_PG_URL` names (an admin URL such as
/// `postgres://postgres@127.0.0.1:PORT/postgres`; `scripts/test` starts a throwaway one and
/// sets it). With `SIGIL_TEST_STORE=postgres`, every server the harness starts runs on its
/// own database there instead of sled, so whole modules run on either backend.
pub mod pg {
    use std::path::{Path, PathBuf};

    /// The admin URL. Under CI a test that needs PostgreSQL fails without it; elsewhere
    /// it is skipped (`None`) with a note.
    pub fn admin_url(test: &str) -> Option<String> {
        match std::env::var("SIGIL_TEST_PG_URL") {
            Ok(u) if !u.is_empty() => Some(u),
            _ => {
                assert!(std::env::var_os("CI").is_none(), "SIGIL_TEST_PG_URL is unset under CI: {test} needs PostgreSQL");
                eprintln!("SKIPPED {test}: SIGIL_TEST_PG_URL is unset (scripts/test starts a cluster and sets it)");
                None
            }
        }
    }

    /// True when the harness runs servers on PostgreSQL (`SIGIL_TEST_STORE=postgres`).
    pub fn harness_on_postgres() -> bool {
        match std::env::var("SIGIL_TEST_STORE").as_deref() {
            Ok("postgres") => true,
            Ok("sled") | Ok("") | Err(_) => false,
            Ok(other) => panic!("SIGIL_TEST_STORE={other}: expected sled or postgres"),
        }
    }

    /// Runs SQL on the admin database (on a thread of its own: callers may be inside a
    /// runtime already).
    fn admin_sql(admin: &str, sql: String) -> Result<(), String> {
        let admin = admin.to_owned();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async move {
                let (client, conn) = tokio_postgres::connect(&admin, tokio_postgres::NoTls).await.map_err(|e| e.to_string())?;
                let driver = tokio::spawn(conn);
                // Concurrent CREATE DATABASEs copy template1 one at a time: the others fail
                // with "source database … is being accessed by other users". Try again.
                let mut r = Ok(());
                for _ in 0..50 {
                    r = client
                        .batch_execute(&sql)
                        .await
                        .map_err(|e| e.as_db_error().map_or_else(|| e.to_string(), |d| d.message().to_owned()));
                    match &r {
                        Err(m) if m.contains("being accessed by other users") => {
                            tokio::time::sleep(std::time::Duration::from_millis(100 + u64::from(rand::random::<u8>()))).await;
                        }
                        _ => break,
                    }
                }
                drop(client);
                let _ = driver.await;
                r
            })
        })
        .join()
        .unwrap()
    }

    fn url_of(admin: &str, db: &str) -> String {
        let base = admin.split('?').next().unwrap_or(admin);
        let base = base.rsplit_once('/').map_or(base, |(b, _)| b);
        format!("{base}/{db}")
    }

    /// A new, empty database; its URL.
    pub fn database(test: &str) -> Option<String> {
        let admin = admin_url(test)?;
        let db = format!("sigil_{:016x}", rand::random::<u64>());
        admin_sql(&admin, format!("CREATE DATABASE {db}")).unwrap();
        Some(url_of(&admin, &db))
    }

    /// The database of the data directory `data` (created at its first start; restarts on
    /// the same directory find the same database).
    pub fn database_for(data: &Path) -> String {
        use std::hash::{Hash, Hasher};
        let admin = admin_url("a server on PostgreSQL (SIGIL_TEST_STORE=postgres)").expect("SIGIL_TEST_PG_URL must be set");
        let mut h = std::collections::hash_map::DefaultHasher::new();
        data.hash(&mut h);
        let db = format!("sigil_h{:016x}", h.finish());
        match admin_sql(&admin, format!("CREATE DATABASE {db}")) {
            Ok(()) => {}
            Err(e) if e.contains("already exists") => {}
            Err(e) => panic!("cannot create the test database: {e}"),
        }
        url_of(&admin, &db)
    }

    /// PostgreSQL's programs (`pg_dump`, `initdb`, …): `PG_BIN`, else the newest
    /// `/usr/lib/postgresql/*/bin`.
    pub fn bin_dir() -> PathBuf {
        if let Some(d) = std::env::var_os("PG_BIN") {
            return PathBuf::from(d);
        }
        let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
            .map(|rd| rd.filter_map(|e| e.ok()).map(|e| e.path().join("bin")).filter(|p| p.join("pg_dump").exists()).collect())
            .unwrap_or_default();
        dirs.sort_by_key(|p| p.parent().and_then(|v| v.file_name()).and_then(|v| v.to_str()).and_then(|v| v.parse::<u32>().ok()));
        dirs.pop().expect("no PostgreSQL programs: set PG_BIN or install postgresql")
    }
}

/// The `--store` arguments of the harness's backend for the data directory `data`, for a
/// test that runs an offline command (`sigil rotate-root-key`, …) on a server's store.
pub fn store_args(data: &Path) -> Vec<String> {
    if pg::harness_on_postgres() { vec!["--store".into(), pg::database_for(data)] } else { vec![] }
}

fn spawn_raw(data: &Path, listen: &str, opts: &Opts) -> std::io::Result<Child> {
    let mut cmd = Command::new(bin());
    cmd.arg("serve").arg("--data").arg(data).arg("--listen").arg(listen).args(&opts.args);
    if pg::harness_on_postgres() && !opts.args.iter().any(|a| a == "--store") {
        cmd.arg("--store").arg(pg::database_for(data));
    }
    // Start from a clean slate of SIGIL_* variables so the developer's shell cannot leak in.
    for (k, _) in std::env::vars() {
        if k.starts_with("SIGIL_") {
            cmd.env_remove(k);
        }
    }
    // Everything the server logs, so that the scan for secrets on stop sees every line.
    cmd.env("SIGIL_LOG", "debug");
    // The isolation matrix sends hundreds of bad tokens from one address on purpose; the
    // throttle itself is tested with its own lower setting.
    cmd.env("SIGIL_AUTH_FAILURE_BURST", "100000");
    for (k, v) in &opts.env {
        cmd.env(k, v);
    }
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn()
}

impl Server {
    pub async fn start() -> Server {
        Self::start_with(Opts::default()).await
    }

    pub async fn start_with(opts: Opts) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let mut s = Self::start_in(&data, "127.0.0.1:0", &opts).await;
        s._dir = Some(dir);
        s
    }

    /// Starts on an existing data directory (restarts).
    pub async fn start_in(data: &Path, listen: &str, opts: &Opts) -> Server {
        Self::start_sharing(data, listen, opts, Secrets::default()).await
    }

    /// Like [`Server::start_in`], but a server that exits before it listens is an `Err`
    /// with its exit status and logs (a port taken meanwhile, say), not a panic.
    pub async fn try_start_in(data: &Path, listen: &str, opts: &Opts) -> Result<Server, String> {
        Self::try_start_sharing(data, listen, opts, Secrets::default()).await
    }

    async fn start_sharing(data: &Path, listen: &str, opts: &Opts, secrets: Secrets) -> Server {
        Self::try_start_sharing(data, listen, opts, secrets).await.unwrap_or_else(|e| panic!("server did not start: {e}"))
    }

    async fn try_start_sharing(data: &Path, listen: &str, opts: &Opts, secrets: Secrets) -> Result<Server, String> {
        let mut child = spawn_raw(data, listen, opts).unwrap();
        let mut logs = Logs::capture(child.stderr.take().unwrap());
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("sigil listening on ") {
                    let _ = tx.send(url.to_owned());
                }
            }
        });
        let base = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(b) => b,
            Err(_) => {
                let _ = child.kill();
                let status = child.wait().unwrap();
                let logs = logs.finish();
                secrets.add_from_setup(opts, data);
                secrets.assert_absent_from(&logs, "a failed start");
                return Err(format!("{status}; its logs:\n{}", String::from_utf8_lossy(&logs)));
            }
        };
        secrets.add_from_setup(opts, data);
        let mut client = reqwest::Client::builder();
        // `--http` serves plain HTTP on loopback and makes no development CA.
        if !base.starts_with("http://") {
            let ca = std::fs::read(data.join("tls/ca.pem")).unwrap();
            client = client.add_root_certificate(reqwest::Certificate::from_pem(&ca).unwrap());
        }
        let client = client
            .timeout(Duration::from_secs(30))
            // Below the server's 5 s keep-alive, so a pooled connection is never reused just
            // as the server closes it (hyper reports that race as IncompleteMessage).
            .pool_idle_timeout(Duration::from_secs(2))
            .build()
            .unwrap();
        let listen = base.trim_start_matches("https://").trim_start_matches("http://").to_owned();
        let clock_env = opts.env.iter().find(|(k, _)| k == TEST_CLOCK_VAR).cloned();
        Ok(Server { child, base, data: data.to_owned(), client, _dir: None, listen, logs, secrets, exited: false, clock_env })
    }

    /// What the server has logged so far (stderr).
    pub fn logs(&self) -> String {
        self.logs.text()
    }

    /// The secrets its logs are checked against; a test adds what else it learns.
    pub fn secrets(&self) -> &Secrets {
        &self.secrets
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Sends a request; returns (status, parsed JSON or Null).
    pub async fn call(&self, method: &str, path: &str, token: Option<&str>, body: Option<Value>) -> (u16, Value) {
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut rb = self.client.request(m, self.url(path));
        if let Some(t) = token {
            // A presented token, even a wrong one, is a secret: it may be a real one mistyped.
            self.secrets.add(t);
            rb = rb.bearer_auth(t);
        }
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        let resp = rb.send().await.unwrap();
        let status = resp.status().as_u16();
        let ct = resp.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
        let text = resp.text().await.unwrap();
        // VC-API verify answers 422 in its own JSON shape (`problemDetails`), by its spec.
        let vc_api_verdict = status == 422 && path.contains("/vc-api/") && path.ends_with("/verify");
        if status >= 400 && !vc_api_verdict {
            assert_eq!(ct, "application/problem+json", "{method} {path} → {status} not problem+json: {text}");
        }
        let v = serde_json::from_str(&text).unwrap_or(Value::Null);
        self.secrets.add_from_response(&v);
        (status, v)
    }

    pub async fn get(&self, path: &str, token: &str) -> (u16, Value) {
        self.call("GET", path, Some(token), None).await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> (u16, Value) {
        self.call("POST", path, Some(token), Some(body)).await
    }

    /// Creates a tenant; returns its admin token.
    pub async fn tenant(&self, id: &str) -> String {
        let (s, v) = self.post("/v1/tenants", OPERATOR, json!({"id": id, "name": format!("Tenant {id}")})).await;
        assert_eq!(s, 201, "{v}");
        v["admin_token"].as_str().unwrap().to_owned()
    }

    /// Creates an agent; returns (id, access token, full response).
    pub async fn agent(&self, tenant: &str, admin: &str, name: &str) -> (String, String, Value) {
        let (s, v) = self.post(&format!("/v1/tenants/{tenant}/agents"), admin, json!({"name": name})).await;
        assert_eq!(s, 201, "{v}");
        (v["id"].as_str().unwrap().to_owned(), v["access_token"].as_str().unwrap().to_owned(), v)
    }

    /// Graceful stop: SIGTERM, then the process must exit 0 within 20 s (a SIGKILL is a
    /// failure), and its logs must hold no secret.
    pub fn stop(&mut self) {
        let status = self.terminate();
        let logs = self.logs.finish();
        assert!(
            status.success(),
            "the server did not exit cleanly after SIGTERM ({status}); its logs:\n{}",
            String::from_utf8_lossy(&logs)
        );
        // The scan below proves nothing if the capture lost the logs.
        assert!(logs.windows(15).any(|w| w == b"sigil listening"), "no logs captured: {}", String::from_utf8_lossy(&logs));
        self.secrets.assert_absent_from(&logs, "after a graceful stop");
    }

    fn terminate(&mut self) -> ExitStatus {
        // Close pooled keep-alive connections first: the server would wait for them.
        self.client = reqwest::Client::new();
        if let Ok(Some(status)) = self.child.try_wait() {
            self.exited = true;
            panic!("the server had already exited ({status}); its logs:\n{}", String::from_utf8_lossy(&self.logs.finish()));
        }
        let st = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status().unwrap();
        assert!(st.success(), "kill -TERM failed");
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                self.exited = true;
                return status;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.exited = true;
        panic!("the server ignored SIGTERM for 20 s and had to be killed; its logs:\n{}", String::from_utf8_lossy(&self.logs.finish()));
    }

    /// Sends a request that must hit the crash point this server was started with
    /// (`SIGIL_TEST_CRASH_AT`): no answer comes, the process dies of SIGABRT, and what it
    /// logged until then holds no secret.
    pub async fn call_into_crash(&mut self, method: &str, path: &str, token: &str, body: Option<Value>) {
        use std::os::unix::process::ExitStatusExt;
        self.secrets.add(token);
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut rb = self.client.request(m, self.url(path)).bearer_auth(token);
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        let answer = rb.send().await;
        assert!(answer.is_err(), "{method} {path} answered although it should have crashed: {answer:?}");
        let deadline = Instant::now() + Duration::from_secs(20);
        let status = loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                break st;
            }
            assert!(Instant::now() < deadline, "the server did not die at its crash point");
            std::thread::sleep(Duration::from_millis(20));
        };
        self.exited = true;
        let logs = self.logs.finish();
        assert_eq!(status.signal(), Some(6), "expected SIGABRT at the crash point, got {status}");
        assert!(logs.windows(11).any(|w| w == b"crash point"), "{}", String::from_utf8_lossy(&logs));
        self.secrets.assert_absent_from(&logs, "before the crash");
    }

    /// A new server on this one's data and address after it died, with `opts`.
    pub async fn start_after_crash(mut self, opts: &Opts) -> Server {
        assert!(self.exited, "the server is still running");
        let dir = self._dir.take();
        let mut s = Server::start_sharing(&self.data, &self.listen.clone(), opts, self.secrets.clone()).await;
        s._dir = dir;
        s
    }

    /// `kill -9`; what it logged until then must hold no secret.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.exited = true;
        let logs = self.logs.finish();
        self.secrets.assert_absent_from(&logs, "before kill -9");
    }

    /// Restarts on the same data directory and address.
    pub async fn restart(mut self) -> Server {
        self.stop();
        let listen = self.listen.clone();
        self.start_again(&listen).await
    }

    /// `kill -9`, then a new server on the same data directory and address.
    pub async fn restart_after_kill9(mut self) -> Server {
        self.kill9();
        let listen = self.listen.clone();
        self.start_again(&listen).await
    }

    /// A new server on this one's data (already stopped), keeping its temp dir alive, the
    /// secrets seen so far and its test clock.
    async fn start_again(mut self, listen: &str) -> Server {
        let dir = self._dir.take();
        let mut opts = Opts::default();
        opts.env.extend(self.clock_env.take());
        let mut s = Server::start_sharing(&self.data, listen, &opts, self.secrets.clone()).await;
        s._dir = dir;
        s
    }

    /// Stops the server, hands its store to `edit` (tampering at rest, as someone holding
    /// the disk could), then starts a new server on the same data.
    pub async fn edit_at_rest<F: std::future::Future<Output = ()>>(mut self, edit: impl FnOnce(sigil::store::SledStore) -> F) -> Server {
        self.stop();
        edit(sigil::store::SledStore::open(&self.data.join("store")).unwrap()).await;
        self.start_again("127.0.0.1:0").await
    }

    /// Stops the server, hands its data directory to `edit` (files changed as someone
    /// holding the disk could: a store put back from an older copy), then starts a new
    /// server on the same data and address, so DIDs (which name the port) stay the same.
    pub async fn edit_files_at_rest(mut self, edit: impl FnOnce(&Path)) -> Server {
        self.stop();
        edit(&self.data);
        let listen = self.listen.clone();
        self.start_again(&listen).await
    }

    /// [`Server::edit_at_rest`] on the same address.
    pub async fn edit_store_in_place<F: std::future::Future<Output = ()>>(
        mut self,
        edit: impl FnOnce(sigil::store::SledStore) -> F,
    ) -> Server {
        self.stop();
        edit(sigil::store::SledStore::open(&self.data.join("store")).unwrap()).await;
        let listen = self.listen.clone();
        self.start_again(&listen).await
    }

    /// The Prometheus text of `/metrics`.
    pub async fn metrics(&self) -> String {
        self.client.get(self.url("/metrics")).send().await.unwrap().text().await.unwrap()
    }

    pub fn listen(&self) -> &str {
        &self.listen
    }
}

impl Drop for Server {
    /// A server still running at the end of a test is stopped as [`Server::stop`] does,
    /// with the same checks, unless the test is already failing.
    fn drop(&mut self) {
        if self.exited {
            return;
        }
        if std::thread::panicking() {
            let _ = self.child.kill();
            let _ = self.child.wait();
            return;
        }
        self.stop();
    }
}

/// Runs `sigil serve` expecting it to fail; returns (exit code, stderr). What it said must
/// hold none of the secrets it was given.
///
/// A server that starts instead (it is still running after 60 s) is killed and the test
/// fails, rather than waiting for it forever.
pub fn serve_fails(data: &Path, opts: &Opts) -> (i32, String) {
    let child = spawn_raw(data, "127.0.0.1:0", opts).unwrap();
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let out = match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(out) => out.unwrap(),
        Err(_) => {
            let _ = Command::new("kill").arg("-KILL").arg(pid.to_string()).status();
            let out = rx.recv().unwrap().unwrap();
            panic!("the server started instead of refusing to; its logs:\n{}", String::from_utf8_lossy(&out.stderr));
        }
    };
    let secrets = Secrets::default();
    secrets.add_from_setup(opts, data);
    secrets.assert_absent_from(&out.stderr, "a refused start");
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// Every regular file under `dir` with its bytes.
pub fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push((p.clone(), std::fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

//! Spawning servers and talking to them.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

pub const OPERATOR: &str = "sgl_test-operator-token-0123456789abcdefghijklmnop";

/// A running `sigil serve` process.
pub struct Server {
    pub child: Child,
    pub base: String,
    pub data: PathBuf,
    pub client: reqwest::Client,
    _dir: Option<tempfile::TempDir>,
    listen: String,
}

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

fn spawn_raw(data: &Path, listen: &str, opts: &Opts) -> std::io::Result<Child> {
    let mut cmd = Command::new(bin());
    cmd.arg("serve").arg("--data").arg(data).arg("--listen").arg(listen).args(&opts.args);
    // Start from a clean slate of SIGIL_* variables so the developer's shell cannot leak in.
    for (k, _) in std::env::vars() {
        if k.starts_with("SIGIL_") {
            cmd.env_remove(k);
        }
    }
    cmd.env("SIGIL_LOG", "warn");
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
        let mut child = spawn_raw(data, listen, opts).unwrap();
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
                let out = child.wait_with_output().unwrap();
                panic!("server did not start: {}", String::from_utf8_lossy(&out.stderr));
            }
        };
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || for _ in BufReader::new(stderr).lines() {});
        let ca = std::fs::read(data.join("tls/ca.pem")).unwrap();
        let client = reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(&ca).unwrap())
            .timeout(Duration::from_secs(30))
            // Below the server's 5 s keep-alive, so a pooled connection is never reused just
            // as the server closes it (hyper reports that race as IncompleteMessage).
            .pool_idle_timeout(Duration::from_secs(2))
            .build()
            .unwrap();
        let listen = base.trim_start_matches("https://").to_owned();
        Server { child, base, data: data.to_owned(), client, _dir: None, listen }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Sends a request; returns (status, parsed JSON or Null).
    pub async fn call(&self, method: &str, path: &str, token: Option<&str>, body: Option<Value>) -> (u16, Value) {
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut rb = self.client.request(m, self.url(path));
        if let Some(t) = token {
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

    /// Graceful stop (SIGTERM) and wait.
    pub fn stop(&mut self) {
        let _ = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// `kill -9`.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
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

    /// A new server on this one's data (already stopped), keeping its temp dir alive.
    async fn start_again(mut self, listen: &str) -> Server {
        let dir = self._dir.take();
        let mut s = Server::start_in(&self.data, listen, &Opts::default()).await;
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

    /// The Prometheus text of `/metrics`.
    pub async fn metrics(&self) -> String {
        self.client.get(self.url("/metrics")).send().await.unwrap().text().await.unwrap()
    }

    pub fn listen(&self) -> &str {
        &self.listen
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `sigil serve` expecting it to fail; returns (exit code, stderr).
pub fn serve_fails(data: &Path, opts: &Opts) -> (i32, String) {
    let child = spawn_raw(data, "127.0.0.1:0", opts).unwrap();
    let out = child.wait_with_output().unwrap();
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

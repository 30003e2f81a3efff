//! End-to-end load benchmark (`scripts/bench`): a real `sigil serve` over HTTPS on loopback,
//! seeded with `sigil seed`, driven by keep-alive connections from this process, and
//! compared with the bare-crypto ceiling measured in the same run on the same threads.
//!
//! Modes (`cargo bench --bench load -- MODE [options]`):
//! - `throughput`: presentations and `POST /v1/verify` at 1, 16 and 64 connections;
//! - `scale`: the same store seeded with 1k and with N agents: bytes per agent, start-up
//!   time, memory and presentation latency;
//! - `rotation`: rotate the keys of N agents while presentation load runs;
//! - `backends`: presentations on sled, on PostgreSQL with one node and with two nodes on
//!   one database, at 16 and 64 connections, and bytes stored per agent on each;
//! - `soak`: a long run at a fixed rate (half the measured capacity unless `--rate`) of
//!   presentations, verifications and admin writes, sampling the server's RSS, open files
//!   and p99 latency every `--sample` seconds, and saying whether they stay flat
//!   (`scripts/soak`).
//!
//! A benchmark, not a test: it reports figures and asserts nothing about time. It does
//! fail loudly when a request fails, because a fast wrong answer is not a result.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use serde_json::{Map, Value, json};
use sigil::crypto::Signer;
use sigil::vc::jcs;
use sigil::vc::proof::{self, ProofOptions};

const SIGIL: &str = env!("CARGO_BIN_EXE_sigil");

// ---------------------------------------------------------------- options

struct Opts {
    mode: String,
    duration: Duration,
    conns: Vec<usize>,
    agents: u64,
    hot: u64,
    keep: bool,
    runs: Vec<String>,
    /// Soak: requests per second (0: half the capacity measured first).
    rate: f64,
    /// Soak: seconds between samples.
    sample: Duration,
}

fn parse_opts() -> Opts {
    let mut o = Opts {
        mode: "throughput".into(),
        duration: Duration::from_secs(10),
        conns: vec![1, 16, 64],
        agents: 0,
        hot: 1000,
        keep: false,
        runs: vec!["presentations".into(), "verify".into()],
        rate: 0.0,
        sample: Duration::from_secs(60),
    };
    let mut args = std::env::args().skip(1).filter(|a| a != "--bench");
    while let Some(a) = args.next() {
        let mut val = || args.next().unwrap_or_else(|| panic!("{a} needs a value"));
        match a.as_str() {
            "--duration" => o.duration = Duration::from_secs_f64(val().parse().expect("--duration seconds")),
            "--conns" => o.conns = val().split(',').map(|c| c.parse().expect("--conns list")).collect(),
            "--agents" => o.agents = val().parse().expect("--agents"),
            "--hot" => o.hot = val().parse().expect("--hot"),
            "--keep" => o.keep = true,
            "--rate" => o.rate = val().parse().expect("--rate requests per second"),
            "--sample" => o.sample = Duration::from_secs_f64(val().parse().expect("--sample seconds")),
            "--runs" => o.runs = val().split(',').map(str::to_owned).collect(),
            m if !m.starts_with('-') => o.mode = m.to_owned(),
            other => panic!("unknown option {other}"),
        }
    }
    o
}

// ---------------------------------------------------------------- the server

struct Server {
    child: Child,
    base: String,
    addr: std::net::SocketAddr,
    ca: reqwest::Certificate,
    tls: Arc<rustls::ClientConfig>,
    started_in: Duration,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn sigil_cmd(data: &Path) -> Command {
    let mut cmd = Command::new(SIGIL);
    for (k, _) in std::env::vars() {
        if k.starts_with("SIGIL_") {
            cmd.env_remove(k);
        }
    }
    cmd.env("SIGIL_DATA", data);
    cmd
}

#[derive(serde::Deserialize)]
struct Tokens {
    tenant: String,
    admin_token: String,
    agents: Vec<HotAgent>,
}

#[derive(serde::Deserialize, Clone)]
struct HotAgent {
    token: String,
}

/// `sigil seed` into a fresh data dir; returns the tokens it wrote and its own report.
fn seed(data: &Path, public_url: &str, agents: u64, hot: u64) -> (Tokens, Value) {
    seed_with(data, public_url, agents, hot, &[])
}

/// [`seed`] with more `serve` options (`--store`, `--root-key-file`).
fn seed_with(data: &Path, public_url: &str, agents: u64, hot: u64, extra: &[String]) -> (Tokens, Value) {
    let out = data.with_extension("tokens.json");
    let t0 = Instant::now();
    let o = sigil_cmd(data)
        .args(["seed", "--agents", &agents.to_string(), "--hot", &hot.to_string(), "--public-url", public_url])
        .args(extra)
        .arg("--tokens-out")
        .arg(&out)
        .env("SIGIL_LOG", "warn")
        .output()
        .unwrap();
    assert!(o.status.success(), "sigil seed failed: {}", String::from_utf8_lossy(&o.stderr));
    let report: Value = serde_json::from_slice(&o.stdout).unwrap();
    eprintln!("  seeded {agents} agents in {:.1} s", t0.elapsed().as_secs_f64());
    (serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap(), report)
}

fn start(data: &Path, port: u16) -> Server {
    start_with(data, port, &format!("https://127.0.0.1:{port}"), &[])
}

/// [`start`] with its public URL given (nodes behind one address share it) and more
/// `serve` options.
fn start_with(data: &Path, port: u16, public_url: &str, extra: &[String]) -> Server {
    let log = std::fs::File::create(data.with_extension("server.log")).unwrap();
    let t0 = Instant::now();
    let mut child = sigil_cmd(data)
        .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--public-url", public_url])
        .args(extra)
        // The whole load comes from one client address, which the per-address verify limit
        // would throttle; it is a guard against one abusive client, not a capacity setting.
        .args(["--verify-rate", "0"])
        // Durable audit, default logging (access log at info), default workers: as deployed.
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(url) = line.strip_prefix("sigil listening on ") {
                let _ = tx.send(url.to_owned());
            }
        }
    });
    let base = rx.recv_timeout(Duration::from_secs(120)).expect("server did not start");
    let started_in = t0.elapsed();
    let ca_pem = std::fs::read(data.join("tls/ca.pem")).unwrap();
    let ca = reqwest::Certificate::from_pem(&ca_pem).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&ca_pem) {
        roots.add(cert.unwrap()).unwrap();
    }
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let addr = format!("127.0.0.1:{port}").parse().unwrap();
    Server { child, base, addr, ca, tls: Arc::new(tls), started_in }
}

impl Server {
    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// utime + stime of the server, in seconds.
    fn cpu_seconds(&self) -> f64 {
        proc_cpu(&format!("/proc/{}/stat", self.pid()))
    }

    fn status_kib(&self, field: &str) -> u64 {
        let s = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        s.lines().find_map(|l| l.strip_prefix(field).map(|v| v.trim().trim_end_matches(" kB").trim().parse().unwrap())).unwrap_or(0)
    }

    fn client(&self) -> reqwest::Client {
        reqwest::Client::builder()
            .add_root_certificate(self.ca.clone())
            .http1_only()
            .pool_max_idle_per_host(1)
            .pool_idle_timeout(Duration::from_secs(3))
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap()
    }

    /// One keep-alive HTTPS connection for the measured loops, on hyper's HTTP/1.1 client
    /// directly. The load generator shares the two cores with the server, so what it spends
    /// per request is taken from the server: reqwest (pool, redirects, timeouts, JSON) cost
    /// 76 µs per presentation and 229 µs per verify request here; this costs a fraction.
    async fn connect(&self) -> Result<SendRequest<Full<Bytes>>, String> {
        open_conn(self.addr, &self.tls).await
    }

    fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn proc_cpu(path: &str) -> f64 {
    let s = std::fs::read_to_string(path).unwrap();
    // Fields after the ")" that closes the command name; utime and stime are 14 and 15.
    let rest = &s[s.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap();
    ticks / clock_ticks()
}

fn clock_ticks() -> f64 {
    let o = Command::new("getconf").arg("CLK_TCK").output().ok();
    o.and_then(|o| String::from_utf8(o.stdout).ok()).and_then(|s| s.trim().parse().ok()).unwrap_or(100.0)
}

// ---------------------------------------------------------------- load

#[derive(Default)]
struct RunResult {
    ok: u64,
    failed: u64,
    secs: f64,
    lat_us: Vec<u32>,
    server_cpu: f64,
    client_cpu: f64,
    first_error: Option<String>,
}

impl RunResult {
    fn rate(&self) -> f64 {
        self.ok as f64 / self.secs
    }
    fn pct(&self, p: f64) -> f64 {
        if self.lat_us.is_empty() {
            return f64::NAN;
        }
        let i = ((self.lat_us.len() as f64 * p).ceil() as usize).clamp(1, self.lat_us.len()) - 1;
        self.lat_us[i] as f64 / 1000.0
    }
}

fn presentation_body(n: u64) -> Value {
    json!({"action": "refunds:create", "resource": format!("orders/{}", n % 10_000),
           "context": {"amount": "120.00", "currency": "EUR"},
           "challenge": format!("bench-{n}"), "domain": "payments.example"})
}

/// What one request of a run sends: (path, bearer token, JSON body). Bodies are serialized
/// before the run (verify pools) or per request (small presentation requests).
type MakeRequest = Arc<dyn Fn(u64) -> Option<(String, Option<String>, Bytes)> + Send + Sync>;

/// Sends one request on `conn`; Ok when it succeeded (and, for verify, verified).
async fn send_one(conn: &mut SendRequest<Full<Bytes>>, path: &str, token: Option<&str>, body: Bytes) -> Result<(), String> {
    send_for_body(conn, path, token, body).await.map(|_| ())
}

/// `conns` keep-alive connections, each sending requests back to back, for `duration`
/// (or until `make` runs out). A warm-up of one second per run is not counted.
async fn run(server: &Server, conns: usize, duration: Duration, warmup: Duration, make: MakeRequest) -> RunResult {
    run_until(server, conns, duration, warmup, make, Arc::new(AtomicBool::new(false))).await
}

/// [`run`] that also ends when `until` is set.
async fn run_until(
    server: &Server,
    conns: usize,
    duration: Duration,
    warmup: Duration,
    make: MakeRequest,
    until: Arc<AtomicBool>,
) -> RunResult {
    run_on(&[server], conns, duration, warmup, make, until).await
}

/// [`run_until`] with the connections spread over `servers` (round robin, as a load
/// balancer would); server CPU is the sum over them.
async fn run_on(
    servers: &[&Server],
    conns: usize,
    duration: Duration,
    warmup: Duration,
    make: MakeRequest,
    until: Arc<AtomicBool>,
) -> RunResult {
    let cpu = || servers.iter().map(|s| s.cpu_seconds()).sum::<f64>();
    let counter = Arc::new(AtomicU64::new(0));
    let measuring = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    // Every connection is open before any sends, and with no warm-up the count starts
    // before the first request: nothing that runs is left out of the figures.
    let mut conns_open = Vec::with_capacity(conns);
    for i in 0..conns {
        let server = servers[i % servers.len()];
        conns_open.push((server.connect().await.expect("connect"), (server.addr, server.tls.clone())));
    }
    let mut snapshot = None;
    if warmup.is_zero() {
        snapshot = Some((cpu(), proc_cpu("/proc/self/stat"), Instant::now()));
        measuring.store(true, Ordering::Relaxed);
    }
    for (mut conn, server) in conns_open {
        let (counter, measuring, stop, make) = (counter.clone(), measuring.clone(), stop.clone(), make.clone());
        tasks.push(tokio::spawn(async move {
            let mut r = RunResult::default();
            while !stop.load(Ordering::Relaxed) {
                let n = counter.fetch_add(1, Ordering::Relaxed);
                let Some((path, token, body)) = make(n) else { break };
                let t0 = Instant::now();
                let outcome = send_one(&mut conn, &path, token.as_deref(), body).await;
                let el = t0.elapsed();
                if outcome.is_err() && conn.is_closed() {
                    // The server closed the connection (an error answer may do that): open another.
                    conn = open_conn(server.0, &server.1).await.expect("reconnect");
                }
                if measuring.load(Ordering::Relaxed) {
                    match outcome {
                        Ok(()) => {
                            r.ok += 1;
                            r.lat_us.push(el.as_micros().min(u32::MAX as u128) as u32);
                        }
                        Err(e) => {
                            r.failed += 1;
                            r.first_error.get_or_insert(e);
                        }
                    }
                } else if let Err(e) = outcome {
                    r.failed += 1;
                    r.first_error.get_or_insert(e);
                }
            }
            r
        }));
    }
    let (s0, c0, t0) = match snapshot {
        Some(s) => s,
        None => {
            tokio::time::sleep(warmup).await;
            let s = (cpu(), proc_cpu("/proc/self/stat"), Instant::now());
            measuring.store(true, Ordering::Relaxed);
            s
        }
    };
    let deadline = t0 + duration;
    while Instant::now() < deadline && !until.load(Ordering::Relaxed) && !tasks.iter().all(|t| t.is_finished()) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    measuring.store(false, Ordering::Relaxed);
    let secs = t0.elapsed().as_secs_f64();
    let (s1, c1) = (cpu(), proc_cpu("/proc/self/stat"));
    stop.store(true, Ordering::Relaxed);
    let mut total = RunResult { secs, server_cpu: s1 - s0, client_cpu: c1 - c0, ..Default::default() };
    for t in tasks {
        let r = t.await.unwrap();
        total.ok += r.ok;
        total.failed += r.failed;
        total.lat_us.extend(r.lat_us);
        if total.first_error.is_none() {
            total.first_error = r.first_error;
        }
    }
    total.lat_us.sort_unstable();
    total
}

/// TCP (no Nagle) + TLS + HTTP/1.1 handshake to `addr`; the connection is driven by its own task.
async fn open_conn(addr: std::net::SocketAddr, tls: &Arc<rustls::ClientConfig>) -> Result<SendRequest<Full<Bytes>>, String> {
    let tcp = tokio::net::TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    tcp.set_nodelay(true).map_err(|e| e.to_string())?;
    let name = ServerName::IpAddress(addr.ip().into());
    let tls = tokio_rustls::TlsConnector::from(tls.clone()).connect(name, tcp).await.map_err(|e| e.to_string())?;
    let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls)).await.map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    Ok(send)
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

// ---------------------------------------------------------------- the ceilings

/// Runs `op` back to back on `threads` OS threads for `dur`; total operations per second.
fn on_threads(threads: usize, dur: Duration, op: &(dyn Fn() + Sync)) -> f64 {
    let count = AtomicU64::new(0);
    let stop = AtomicBool::new(false);
    let t0 = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    op();
                    n += 1;
                }
                count.fetch_add(n, Ordering::Relaxed);
            });
        }
        std::thread::sleep(dur);
        stop.store(true, Ordering::Relaxed);
    });
    count.load(Ordering::Relaxed) as f64 / t0.elapsed().as_secs_f64()
}

struct Ceilings {
    sign: [f64; 2],
    verify: [f64; 2],
}

/// The least any signer and any verifier must do for the presentation the server just
/// produced: canonicalize + hash + one signature over the whole VP; and canonicalize + hash
/// + verify for the VP and each of its two credentials (re-signed here with local keys).
fn ceilings(sample: &Value) -> Ceilings {
    let signer = Signer::generate();
    let opts = |purpose: &'static str, challenge: bool| ProofOptions {
        cryptosuite: Default::default(),
        verification_method: "did:web:127.0.0.1%3A1:tenants:bench:agents:x#key-1".into(),
        proof_purpose: purpose,
        created: "2026-11-28T20:00:00Z".into(),
        expires: challenge.then(|| "2026-11-28T20:05:00Z".into()),
        challenge: challenge.then(|| "bench-challenge".into()),
        domain: challenge.then(|| "payments.example".into()),
    };
    let mut unsigned = sample.as_object().unwrap().clone();
    unsigned.remove("proof");
    let ctx = unsigned.get("@context").cloned();
    let vp_opts = opts("authentication", true);
    let sign = || {
        let canon = jcs::canonicalize_object(&unsigned, None).unwrap();
        proof::sign_canonical(&canon, ctx.as_ref(), &vp_opts, &signer).unwrap();
    };
    let mut local = unsigned.clone();
    let creds: Vec<Value> = sample["verifiableCredential"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let mut m: Map<String, Value> = c.as_object().unwrap().clone();
            m.remove("proof");
            proof::sign(m, &opts("assertionMethod", false), &signer).unwrap()
        })
        .collect();
    local.insert("verifiableCredential".into(), Value::Array(creds.clone()));
    let vp = proof::sign(local, &vp_opts, &signer).unwrap();
    let pk = signer.public();
    let docs: Vec<Value> = std::iter::once(vp).chain(creds).collect();
    let verify = || {
        for d in &docs {
            let (unsecured, parsed) = proof::parse(d).unwrap();
            proof::verify_parsed(&unsecured, &parsed, &pk).unwrap();
        }
    };
    let d = Duration::from_secs(3);
    Ceilings { sign: [on_threads(1, d, &sign), on_threads(2, d, &sign)], verify: [on_threads(1, d, &verify), on_threads(2, d, &verify)] }
}

// ---------------------------------------------------------------- helpers

fn presentation_request(tokens: &Arc<Vec<HotAgent>>) -> MakeRequest {
    let tokens = tokens.clone();
    Arc::new(move |n| {
        let a = &tokens[(n % tokens.len() as u64) as usize];
        Some(("/v1/presentations".into(), Some(a.token.clone()), Bytes::from(serde_json::to_vec(&presentation_body(n)).unwrap())))
    })
}

/// `n` fresh presentations (one-time challenges), each with the verify request for it.
async fn fresh_presentations(server: &Server, tokens: &Arc<Vec<HotAgent>>, n: usize, offset: u64) -> Vec<Value> {
    let per = n.div_ceil(32);
    let mut tasks = Vec::new();
    for k in 0..32u64 {
        let (client, base, tokens) = (server.client(), server.base.clone(), tokens.clone());
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::with_capacity(per);
            for i in 0..per as u64 {
                let id = offset + k * per as u64 + i;
                let a = &tokens[(id % tokens.len() as u64) as usize];
                let body = presentation_body(id);
                let resp: Value = client
                    .post(format!("{base}/v1/presentations"))
                    .bearer_auth(&a.token)
                    .json(&body)
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                let vp = resp.get("presentation").cloned().unwrap_or_else(|| panic!("no presentation: {resp}"));
                out.push(json!({"presentation": vp, "challenge": body["challenge"], "domain": body["domain"],
                                "action": {"action": body["action"], "resource": body["resource"], "context": body["context"]}}));
            }
            out
        }));
    }
    let mut all = Vec::with_capacity(n);
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    all.truncate(n);
    all
}

fn dir_bytes(p: &Path) -> u64 {
    let mut total = 0;
    for e in std::fs::read_dir(p).unwrap().map_while(Result::ok) {
        let md = e.metadata().unwrap();
        total += if md.is_dir() { dir_bytes(&e.path()) } else { md.len() };
    }
    total
}

fn header() {
    println!(
        "| run | conns | req/s | p50 ms | p90 ms | p99 ms | server CPU µs/req | load-gen CPU µs/req | ceiling/s (2 thr) | ratio | CPU/req ÷ bare crypto | failed |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
}

fn row(name: &str, conns: usize, r: &RunResult, ceiling2: f64, ceiling1: f64) {
    let cpu_us = r.server_cpu / r.ok.max(1) as f64 * 1e6;
    println!(
        "| {name} | {conns} | {:.0} | {:.2} | {:.2} | {:.2} | {:.0} | {:.0} | {:.0} | {:.2} | {:.2} | {} |",
        r.rate(),
        r.pct(0.50),
        r.pct(0.90),
        r.pct(0.99),
        cpu_us,
        r.client_cpu / r.ok.max(1) as f64 * 1e6,
        ceiling2,
        r.rate() / ceiling2,
        cpu_us / (1e6 / ceiling1),
        r.failed
    );
    if let Some(e) = &r.first_error {
        println!("  first error: {e}");
    }
}

fn machine() {
    let cpu = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpu.lines().find_map(|l| l.strip_prefix("model name")).map(|m| m.trim_start_matches([' ', '\t', ':'])).unwrap_or("?");
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    println!("machine: {cores} cores, {model}; load generator in the same process group on the same cores");
}

// ---------------------------------------------------------------- modes

async fn throughput(o: &Opts) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let port = free_port();
    let url = format!("https://127.0.0.1:{port}");
    let agents = o.agents.max(o.hot);
    let (tokens, _) = seed(&data, &url, agents, o.hot);
    let server = start(&data, port);
    let hot = Arc::new(tokens.agents);
    let sample = fresh_presentations(&server, &hot, 1, 0).await.remove(0)["presentation"].clone();
    println!("typical presentation: {} bytes", serde_json::to_vec(&sample).unwrap().len());
    eprintln!("  measuring the bare-crypto ceilings");
    let c = ceilings(&sample);
    println!(
        "bare crypto: sign {:.0}/s (1 thread), {:.0}/s (2 threads); verify (3 signatures) {:.0}/s (1 thread), {:.0}/s (2 threads)",
        c.sign[0], c.sign[1], c.verify[0], c.verify[1]
    );
    machine();
    header();
    let warm = Duration::from_secs(1);
    for &n in o.conns.iter().filter(|_| o.runs.iter().any(|r| r == "presentations")) {
        let r = run(&server, n, o.duration, warm, presentation_request(&hot)).await;
        row("presentations", n, &r, c.sign[1], c.sign[0]);
    }
    let mut offset = 1_000_000;
    for &n in o.conns.iter().filter(|_| o.runs.iter().any(|r| r == "verify")) {
        // Enough fresh presentations for the run at the verify ceiling, capped for memory;
        // a run that uses them all up ends early and its rate is over the time it ran.
        let want = ((c.verify[1] * (o.duration.as_secs_f64() + 1.0)) as usize).clamp(2_000, 40_000);
        let pool: Arc<Vec<Bytes>> = Arc::new(
            fresh_presentations(&server, &hot, want, offset).await.iter().map(|v| Bytes::from(serde_json::to_vec(v).unwrap())).collect(),
        );
        offset += want as u64;
        let make: MakeRequest = {
            let pool = pool.clone();
            Arc::new(move |i| pool.get(i as usize).map(|b| ("/v1/verify".to_owned(), None, b.clone())))
        };
        let r = run(&server, n, o.duration, warm, make).await;
        row("verify", n, &r, c.verify[1], c.verify[0]);
    }
    println!("server peak RSS: {} MiB", server.status_kib("VmHWM:") / 1024);
    server.stop();
    if o.keep {
        println!("kept {}", dir.keep().display());
    }
}

async fn scale(o: &Opts) {
    let big = if o.agents == 0 { 1_000_000 } else { o.agents };
    println!(
        "| agents | store bytes | bytes/agent | seed s | start-up s | RSS after start MiB | req/s (16 conns) | p50 ms | p99 ms | peak RSS MiB | failed |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let mut p99 = Vec::new();
    for n in [1_000u64, big] {
        let dir = tempfile::tempdir_in(std::env::var_os("BENCH_DIR").unwrap_or_else(|| std::env::temp_dir().into())).unwrap();
        let data = dir.path().join("data");
        let port = free_port();
        let (tokens, report) = seed(&data, &format!("https://127.0.0.1:{port}"), n, o.hot.min(n));
        let bytes = dir_bytes(&data.join("store"));
        let server = start(&data, port);
        let rss0 = server.status_kib("VmRSS:") / 1024;
        let hot = Arc::new(tokens.agents);
        let r = run(&server, 16, o.duration, Duration::from_secs(2), presentation_request(&hot)).await;
        println!(
            "| {n} | {bytes} | {:.0} | {:.1} | {:.2} | {rss0} | {:.0} | {:.2} | {:.2} | {} | {} |",
            bytes as f64 / n as f64,
            report["seconds"].as_f64().unwrap_or(f64::NAN),
            server.started_in.as_secs_f64(),
            r.rate(),
            r.pct(0.5),
            r.pct(0.99),
            server.status_kib("VmHWM:") / 1024,
            r.failed
        );
        p99.push(r.pct(0.99));
        server.stop();
    }
    println!("p99 at {big} agents ÷ p99 at 1000 agents: {:.2}", p99[1] / p99[0]);
}

async fn rotation(o: &Opts) {
    let n = if o.agents == 0 { 100_000 } else { o.agents };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let port = free_port();
    let (tokens, _) = seed(&data, &format!("https://127.0.0.1:{port}"), n, o.hot.min(n));
    let server = start(&data, port);
    // Every agent of the tenant, listed through the API as an operator would.
    let client = server.client();
    let mut ids = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut url = format!("{}/v1/tenants/{}/agents?limit=500", server.base, tokens.tenant);
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={c}"));
        }
        let page: Value = client.get(url).bearer_auth(&tokens.admin_token).send().await.unwrap().json().await.unwrap();
        for a in page["items"].as_array().unwrap() {
            ids.push(a["id"].as_str().unwrap().to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(ids.len() as u64, n, "listing found every agent");
    let hot = Arc::new(tokens.agents);
    let (tenant, admin) = (tokens.tenant.clone(), tokens.admin_token.clone());
    let ids = Arc::new(ids);
    let rotate: MakeRequest = Arc::new(move |i| {
        ids.get(i as usize)
            .map(|a| (format!("/v1/tenants/{tenant}/agents/{a}/keys/rotate"), Some(admin.clone()), Bytes::from_static(b"{}")))
    });
    let long = Duration::from_secs(3600);
    let t0 = Instant::now();
    let done = Arc::new(AtomicBool::new(false));
    let rotations = async {
        let r = run(&server, 8, long, Duration::ZERO, rotate).await;
        done.store(true, Ordering::Relaxed);
        r
    };
    let (rot, pres) = tokio::join!(rotations, run_until(&server, 16, long, Duration::ZERO, presentation_request(&hot), done.clone()));
    println!("| load | requests ok | failed | req/s | p50 ms | p99 ms |");
    println!("|---|---:|---:|---:|---:|---:|");
    for (name, r) in [("key rotations (8 conns)", &rot), ("presentations during rotation (16 conns)", &pres)] {
        println!("| {name} | {} | {} | {:.0} | {:.2} | {:.2} |", r.ok, r.failed, r.rate(), r.pct(0.5), r.pct(0.99));
        if let Some(e) = &r.first_error {
            println!("  first error: {e}");
        }
    }
    println!("rotated {} agents in {:.1} s", rot.ok, t0.elapsed().as_secs_f64());
    // Rotations (transactions with their entries) and presentations (journaled entries)
    // raced on one tenant's chain: it must still verify end to end.
    let report: Value = client
        .get(format!("{}/v1/tenants/{}/audit/verify", server.base, tokens.tenant))
        .bearer_auth(&tokens.admin_token)
        .timeout(Duration::from_secs(600))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    println!(
        "audit chain after the run: {} entries, {}",
        report["entries"],
        if report["ok"] == true { "verified".to_owned() } else { format!("BROKEN: {}", report["first_bad"]) }
    );
    server.stop();
}

/// A database for one benchmark on the cluster `SIGIL_BENCH_PG_URL` names (an admin URL;
/// `scripts/bench backends` starts a throwaway cluster and sets it).
fn bench_database() -> String {
    let admin = std::env::var("SIGIL_BENCH_PG_URL").expect("SIGIL_BENCH_PG_URL: the admin URL of a PostgreSQL cluster");
    let db = format!("sigil_bench_{:016x}", rand::random::<u64>());
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let sql = format!("CREATE DATABASE {db}");
    let admin2 = admin.clone();
    std::thread::spawn(move || {
        rt.block_on(async move {
            let (client, conn) = tokio_postgres::connect(&admin2, tokio_postgres::NoTls).await.unwrap();
            let driver = tokio::spawn(conn);
            client.batch_execute(&sql).await.unwrap();
            drop(client);
            let _ = driver.await;
        })
    })
    .join()
    .unwrap();
    let base = admin.split('?').next().unwrap_or(&admin);
    let base = base.rsplit_once('/').map_or(base, |(b, _)| b);
    format!("{base}/{db}")
}

/// sled and PostgreSQL side by side in one run: presentations/s and latency at each
/// `--conns` (default 16 and 64) on sled, on PostgreSQL with one node, and with two nodes
/// on one database (connections split between them, as behind a load balancer), and the
/// bytes each backend stores per agent (`sigil seed`'s report: sled's files, PostgreSQL's
/// table and index).
async fn backends(o: &Opts) {
    let conns: Vec<usize> = if o.conns == [1, 16, 64] { vec![16, 64] } else { o.conns.clone() };
    let agents = o.agents.max(o.hot);
    machine();
    println!("agents seeded: {agents} ({} hot); {} s per run after 1 s warm-up", o.hot, o.duration.as_secs_f64());
    println!();
    println!("| backend | nodes | conns | presentations/s | p50 ms | p99 ms | server CPU µs/req (all nodes) | failed |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    let mut sizes = Vec::new();
    for (backend, nodes) in [("sled", 1usize), ("postgres", 1), ("postgres", 2)] {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("root.key");
        std::fs::write(&key, rand::random::<[u8; 32]>()).unwrap();
        let mut extra = vec!["--root-key-file".to_owned(), key.display().to_string()];
        if backend == "postgres" {
            extra.extend(["--store".to_owned(), bench_database()]);
        }
        let ports: Vec<u16> = (0..nodes).map(|_| free_port()).collect();
        let url = format!("https://127.0.0.1:{}", ports[0]);
        let data: Vec<_> = (0..nodes).map(|i| dir.path().join(format!("data{i}"))).collect();
        let (tokens, report) = seed_with(&data[0], &url, agents, o.hot, &extra);
        if nodes == 1 {
            let bytes = report["store_bytes"].as_u64().unwrap_or(0);
            sizes.push(format!("{backend}: {bytes} bytes for {agents} agents, {:.0} bytes/agent", bytes as f64 / agents as f64));
        }
        let servers: Vec<Server> = ports.iter().zip(&data).map(|(p, d)| start_with(d, *p, &url, &extra)).collect();
        let refs: Vec<&Server> = servers.iter().collect();
        let hot = Arc::new(tokens.agents.clone());
        for &n in &conns {
            let r =
                run_on(&refs, n, o.duration, Duration::from_secs(1), presentation_request(&hot), Arc::new(AtomicBool::new(false))).await;
            println!(
                "| {backend} | {nodes} | {n} | {:.0} | {:.2} | {:.2} | {:.0} | {} |",
                r.rate(),
                r.pct(0.5),
                r.pct(0.99),
                r.server_cpu / r.ok.max(1) as f64 * 1e6,
                r.failed
            );
            if let Some(e) = &r.first_error {
                println!("  first error: {e}");
            }
        }
        for s in servers {
            s.stop();
        }
    }
    println!();
    for s in sizes {
        println!("stored: {s}");
    }
}

/// Sends one request and returns the response body when it succeeded.
async fn send_for_body(conn: &mut SendRequest<Full<Bytes>>, path: &str, token: Option<&str>, body: Bytes) -> Result<Bytes, String> {
    let mut req = hyper::Request::post(path).header("host", "127.0.0.1").header("content-type", "application/json");
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let req = req.body(Full::new(body)).map_err(|e| e.to_string())?;
    conn.ready().await.map_err(|e| e.to_string())?;
    let resp = conn.send_request(req).await.map_err(|e| e.to_string())?;
    let status = resp.status();
    let b = resp.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes();
    if status.is_success() && !contains(&b, b"\"verified\":false") {
        Ok(b)
    } else {
        Err(format!("{status}: {}", String::from_utf8_lossy(&b[..b.len().min(300)])))
    }
}

/// Latencies (µs) and failures of one soak interval.
#[derive(Default)]
struct Interval {
    lat_us: Vec<u32>,
    ok: u64,
    failed: u64,
    first_error: Option<String>,
}

/// One soak operation: 16 of 20 are presentations (every fourth of them verified
/// afterwards, with its one-time challenge), 1 of 20 is an admin write (a new agent).
async fn soak_op(conn: &mut SendRequest<Full<Bytes>>, n: u64, tokens: &Tokens, stats: &std::sync::Mutex<Interval>) -> Result<(), String> {
    let record = |t0: Instant, r: &Result<Bytes, String>| {
        let mut s = stats.lock().unwrap();
        match r {
            Ok(_) => {
                s.ok += 1;
                s.lat_us.push(t0.elapsed().as_micros().min(u32::MAX as u128) as u32);
            }
            Err(e) => {
                s.failed += 1;
                s.first_error.get_or_insert_with(|| e.clone());
            }
        }
    };
    if n % 20 == 19 {
        let body = Bytes::from(serde_json::to_vec(&json!({"name": format!("soak-{n}")})).unwrap());
        let t0 = Instant::now();
        let r = send_for_body(conn, &format!("/v1/tenants/{}/agents", tokens.tenant), Some(&tokens.admin_token), body).await;
        record(t0, &r);
        return r.map(|_| ());
    }
    let a = &tokens.agents[(n % tokens.agents.len() as u64) as usize];
    let body = presentation_body(n + 1_000_000_000);
    let t0 = Instant::now();
    let r = send_for_body(conn, "/v1/presentations", Some(&a.token), Bytes::from(serde_json::to_vec(&body).unwrap())).await;
    record(t0, &r);
    let vp = r?;
    if n % 4 == 0 {
        let vp: Value = serde_json::from_slice(&vp).map_err(|e| e.to_string())?;
        let req = json!({"presentation": vp["presentation"], "challenge": body["challenge"], "domain": body["domain"],
                         "action": {"action": body["action"], "resource": body["resource"], "context": body["context"]}});
        let t0 = Instant::now();
        let r = send_for_body(conn, "/v1/verify", None, Bytes::from(serde_json::to_vec(&req).unwrap())).await;
        record(t0, &r);
        r?;
    }
    Ok(())
}

fn open_files(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map(|d| d.count()).unwrap_or(0)
}

/// A bounded run at a fixed rate (open loop: requests are started on a schedule, not when
/// the previous one answers, so a slowing server shows as latency, not as a lower rate).
async fn soak(o: &Opts) {
    machine();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let port = free_port();
    let url = format!("https://127.0.0.1:{port}");
    let (tokens, _) = seed(&data, &url, o.hot.max(100), o.hot.max(100));
    let server = start(&data, port);
    let tokens = Arc::new(tokens);
    let rate = if o.rate > 0.0 {
        o.rate
    } else {
        let hot = Arc::new(tokens.agents.clone());
        let probe = run(&server, 16, Duration::from_secs(10), Duration::from_secs(1), presentation_request(&hot)).await;
        println!("capacity probe: {:.0} presentations/s at 16 connections (closed loop, 10 s)", probe.rate());
        probe.rate() / 2.0
    };
    let conns = 32usize;
    println!(
        "soak: {:.0} requests started per second over {conns} connections for {:.0} s, sampled every {:.0} s",
        rate,
        o.duration.as_secs_f64(),
        o.sample.as_secs_f64()
    );
    println!("| minute | HTTP req/s done | p50 ms | p99 ms | RSS MiB | open files | failed |");
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    let stats = Arc::new(std::sync::Mutex::new(Interval::default()));
    let counter = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    let per_conn = Duration::from_secs_f64(conns as f64 / rate);
    for _ in 0..conns {
        let mut conn = server.connect().await.expect("connect");
        let (stats, counter, stop, tokens) = (stats.clone(), counter.clone(), stop.clone(), tokens.clone());
        let target = (server.addr, server.tls.clone());
        tasks.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(per_conn);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            while !stop.load(Ordering::Relaxed) {
                tick.tick().await;
                let n = counter.fetch_add(1, Ordering::Relaxed);
                if soak_op(&mut conn, n, &tokens, &stats).await.is_err() && conn.is_closed() {
                    conn = open_conn(target.0, &target.1).await.expect("reconnect");
                }
            }
        }));
    }
    let t0 = Instant::now();
    let mut samples: Vec<(f64, f64, u64, usize)> = Vec::new(); // (p99 ms, rate, RSS KiB, fds)
    let mut failed_total = 0;
    while t0.elapsed() < o.duration {
        tokio::time::sleep(o.sample.min(o.duration.saturating_sub(t0.elapsed()))).await;
        let mut iv = std::mem::take(&mut *stats.lock().unwrap());
        iv.lat_us.sort_unstable();
        let pct = |p: f64| {
            if iv.lat_us.is_empty() {
                return f64::NAN;
            }
            let i = ((iv.lat_us.len() as f64 * p).ceil() as usize).clamp(1, iv.lat_us.len()) - 1;
            iv.lat_us[i] as f64 / 1000.0
        };
        let (rss, fds) = (server.status_kib("VmRSS:"), open_files(server.pid()));
        let r = iv.ok as f64 / o.sample.as_secs_f64();
        failed_total += iv.failed;
        println!(
            "| {:.1} | {:.0} | {:.2} | {:.2} | {:.1} | {} | {} |",
            t0.elapsed().as_secs_f64() / 60.0,
            r,
            pct(0.5),
            pct(0.99),
            rss as f64 / 1024.0,
            fds,
            iv.failed
        );
        if let Some(e) = iv.first_error {
            println!("  first error: {e}");
        }
        samples.push((pct(0.99), r, rss, fds));
    }
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = t.await;
    }
    // Flat means: over the last two thirds (the first third is warm-up: caches filling,
    // allocator arenas growing), the last third is within bounds of the middle one.
    let third = samples.len() / 3;
    if third == 0 {
        println!("verdict: too short to judge (need at least 3 samples)");
    } else {
        let avg = |xs: &[(f64, f64, u64, usize)], f: fn(&(f64, f64, u64, usize)) -> f64| xs.iter().map(f).sum::<f64>() / xs.len() as f64;
        let (mid, last) = (&samples[third..2 * third], &samples[2 * third..]);
        let rss_growth = avg(last, |s| s.2 as f64) / avg(mid, |s| s.2 as f64) - 1.0;
        let fd_growth = avg(last, |s| s.3 as f64) - avg(mid, |s| s.3 as f64);
        let p99_ratio = avg(last, |s| s.0) / avg(mid, |s| s.0);
        let flat = rss_growth < 0.10 && fd_growth <= 4.0 && p99_ratio < 1.5 && failed_total == 0;
        println!(
            "verdict: {} (RSS {:+.1} %, open files {:+.1}, p99 x{:.2} from the middle to the last third; {} failed requests)",
            if flat { "FLAT" } else { "NOT FLAT" },
            rss_growth * 100.0,
            fd_growth,
            p99_ratio,
            failed_total
        );
    }
    server.stop();
}

fn main() {
    let o = parse_opts();
    // One thread: the load generator's connections need less than a core, and a single
    // scheduler thread spends nothing on waking tasks across threads.
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    match o.mode.as_str() {
        "throughput" => rt.block_on(throughput(&o)),
        "scale" => rt.block_on(scale(&o)),
        "rotation" => rt.block_on(rotation(&o)),
        "soak" => rt.block_on(soak(&o)),
        "backends" => rt.block_on(backends(&o)),
        m => panic!("unknown mode {m}: throughput | scale | rotation | soak | backends"),
    }
}

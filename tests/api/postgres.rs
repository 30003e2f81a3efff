//! Sigil on PostgreSQL, where the database is the shared authority: the key check lives
//! there (a node with any data directory proves its root key against it, and one with the
//! wrong key refuses to start, exit 3), nodes starting together on an empty database
//! initialize it once, and a database restart is a bounded 503 problem+json while it is
//! down and normal service after, with no restart of Sigil.
//!
//! The restart test runs a throwaway cluster of its own (`scripts/pg-cluster`), so that
//! stopping it disturbs no other test; the others use `SIGIL_TEST_PG_URL`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::helpers::{OPERATOR, Opts, Server, pg, serve_fails};
use crate::presentations::{delegation, refund, setup};

fn root_key(dir: &Path, name: &str, byte: u8) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, [byte; 32]).unwrap();
    p
}

fn on(url: &str, key: &Path) -> Opts {
    Opts { args: vec!["--store".into(), url.into(), "--root-key-file".into(), key.display().to_string()], ..Default::default() }
}

#[tokio::test]
async fn the_key_check_lives_in_the_database() {
    let Some(url) = pg::database("the_key_check_lives_in_the_database") else { return };
    let dir = tempfile::tempdir().unwrap();
    let (right, wrong) = (root_key(dir.path(), "right.key", 7), root_key(dir.path(), "wrong.key", 8));
    let a = Server::start_in(&dir.path().join("a"), "127.0.0.1:0", &on(&url, &right)).await;
    let admin = a.tenant("acme").await;
    assert!(!dir.path().join("a/keycheck.json").exists(), "on PostgreSQL the key check is not a file of one node");
    // Another node, with a data directory of its own that has never seen this store.
    let b = Server::start_in(&dir.path().join("b"), "127.0.0.1:0", &on(&url, &right)).await;
    assert_eq!(b.get("/v1/tenants/acme/agents", &admin).await.0, 200, "the second node serves the same store");
    // The wrong root key: refused before anything is served, whatever the data directory.
    let (code, said) = serve_fails(&dir.path().join("c"), &on(&url, &wrong));
    assert_eq!(code, 3, "{said}");
    assert!(said.contains("root key"), "{said}");
    drop((a, b));
}

/// Nodes that start together on an empty database initialize it once: each waits for the
/// startup lock (held here by the test, as a node initializing would hold it), and once it
/// is free a tenant made on one node is served by every other (one token pepper, one key
/// check; two initializations would leave nodes with different peppers).
// Each start blocks a worker while it waits for the server's first line: one thread for
// each, and one for the lock holder's connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 5)]
async fn nodes_starting_together_initialize_once() {
    let Some(url) = pg::database("nodes_starting_together_initialize_once") else { return };
    let dir = tempfile::tempdir().unwrap();
    let key = root_key(dir.path(), "root.key", 5);
    let opts = on(&url, &key);
    let (holder, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    // `store::pg_store::STARTUP_LOCK`. The schema may not exist yet: the lock needs none.
    const STARTUP_LOCK: i64 = 0x5349_4749_4c00_0002;
    holder.execute("SELECT pg_advisory_lock($1)", &[&STARTUP_LOCK]).await.unwrap();
    let starts: Vec<_> = (0..3)
        .map(|i| {
            let (data, opts) = (dir.path().join(format!("n{i}")), opts.clone());
            tokio::spawn(async move { Server::start_in(&data, "127.0.0.1:0", &opts).await })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(starts.iter().all(|s| !s.is_finished()), "a node started while another held the startup lock");
    holder.execute("SELECT pg_advisory_unlock($1)", &[&STARTUP_LOCK]).await.unwrap();
    let mut nodes = Vec::new();
    for s in starts {
        nodes.push(s.await.unwrap());
    }
    let admin = nodes[0].tenant("acme").await;
    for n in &nodes {
        assert_eq!(n.get("/v1/tenants/acme/agents", &admin).await.0, 200, "a node initialized the store a second time");
    }
}

/// A throwaway cluster, stopped and removed on drop.
struct Cluster {
    dir: PathBuf,
    script: PathBuf,
}

impl Cluster {
    fn start() -> (Cluster, String) {
        let dir = std::env::temp_dir().join(format!("sigil-pg-{:016x}", rand::random::<u64>()));
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/pg-cluster");
        let out = Command::new(&script).arg("start").arg(&dir).output().unwrap();
        assert!(out.status.success(), "pg-cluster start: {}", String::from_utf8_lossy(&out.stderr));
        let url = String::from_utf8(out.stdout).unwrap().trim().to_owned();
        (Cluster { dir, script }, url)
    }

    fn run(&self, what: &str) {
        let out = Command::new(&self.script).arg(what).arg(&self.dir).output().unwrap();
        assert!(out.status.success(), "pg-cluster {what}: {}", String::from_utf8_lossy(&out.stderr));
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new(&self.script).arg("stop").arg(&self.dir).status();
    }
}

#[tokio::test]
async fn a_database_restart_is_503_then_served_again() {
    if pg::admin_url("a_database_restart_is_503_then_served_again").is_none() {
        return;
    }
    let (cluster, url) = Cluster::start();
    let dir = tempfile::tempdir().unwrap();
    let key = root_key(dir.path(), "root.key", 3);
    let mut opts = on(&url, &key);
    opts.args.extend(["--store-timeout-ms".into(), "1000".into()]);
    let s = Server::start_in(&dir.path().join("data"), "127.0.0.1:0", &opts).await;
    let (admin, agent, token) = setup(&s, "acme", Some(delegation(&["refunds:create"], &["orders/*"]))).await;
    assert_eq!(s.post("/v1/presentations", &token, refund("before")).await.0, 200);

    cluster.run("halt");
    // Writes and readiness need the database: each is a 503 problem+json (`call` checks the
    // content type of every error), quickly, with nothing of the driver in it.
    let bound = Duration::from_secs(5);
    let down: [(&str, String, Option<&str>, Option<serde_json::Value>); 4] = [
        ("POST", "/v1/presentations".into(), Some(token.as_str()), Some(refund("during"))),
        ("POST", "/v1/tenants/acme/agents".into(), Some(admin.as_str()), Some(json!({"name": "late-bot"}))),
        ("POST", "/v1/tenants".into(), Some(OPERATOR), Some(json!({"id": "beta", "name": "Beta"}))),
        ("GET", "/readyz".into(), None, None),
    ];
    for round in 0..2 {
        for (method, path, token, body) in &down {
            let started = Instant::now();
            let (st, v) = s.call(method, path, *token, body.clone()).await;
            let took = started.elapsed();
            assert_eq!(st, 503, "round {round}: {method} {path} with the database down: {v}");
            assert!(took < bound, "round {round}: {method} {path} took {took:?}");
            if path != "/readyz" {
                assert_eq!(v["code"], "unavailable", "{v}");
                let text = v.to_string().to_ascii_lowercase();
                assert!(!text.contains("postgres") && !text.contains("connection"), "internals in the answer: {v}");
            }
        }
    }
    // A read that needs the database is a 503 too, never a 500 (it may also be answered
    // from a cache).
    let (st, v) = s.get(&format!("/v1/tenants/acme/agents/{agent}"), &admin).await;
    assert!(st == 503 || st == 200, "{st}: {v}");

    cluster.run("resume");
    // Back without restarting Sigil: the pool drops the dead connections and opens new
    // ones. Allow the first request a moment for that, then every one must succeed.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut n = 0;
    loop {
        n += 1;
        let (st, v) = s.post("/v1/presentations", &token, refund(&format!("after-{n}"))).await;
        if st == 200 {
            break;
        }
        assert_eq!(st, 503, "{v}");
        assert!(Instant::now() < deadline, "not served again 10 s after the database came back: {v}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(s.post("/v1/tenants/acme/agents", &admin, json!({"name": "back-bot"})).await.0, 201);
    assert_eq!(s.post("/v1/tenants", OPERATOR, json!({"id": "beta", "name": "Beta"})).await.0, 201);
    assert_eq!(s.call("GET", "/readyz", None, None).await.0, 200);
    assert!(!s.logs().contains("panicked"), "{}", s.logs());
    drop(s);
    drop(cluster);
}

/// Backup and restore on PostgreSQL, both ways the docs give: Sigil's own backup file
/// restored into an empty database (`sigil restore --store`), and `pg_dump` restored with
/// `pg_restore` then marked restored (`--after-pg-restore`). Either way a node with the
/// root key serves what was there, and a restore never goes over an existing store.
#[tokio::test]
async fn backup_and_restore_on_postgres() {
    let Some(url) = pg::database("backup_and_restore_on_postgres") else { return };
    let dir = tempfile::tempdir().unwrap();
    let key = root_key(dir.path(), "root.key", 9);
    let s = Server::start_in(&dir.path().join("a"), "127.0.0.1:0", &on(&url, &key)).await;
    let admin = s.tenant("acme").await;
    let (agent, _, _) = s.agent("acme", &admin, "kept-bot").await;
    let resp = s.client.get(s.url("/v1/system/backup")).bearer_auth(OPERATOR).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let file = dir.path().join("sigil.backup");
    std::fs::write(&file, resp.bytes().await.unwrap()).unwrap();
    let dump = dir.path().join("sigil.pgdump");
    let out =
        Command::new(pg::bin_dir().join("pg_dump")).args(["--format=custom", "--dbname", &url, "--file"]).arg(&dump).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    drop(s);

    let restore = |args: &[&str]| {
        let out = Command::new(crate::helpers::bin()).arg("restore").args(args).env_remove("SIGIL_STORE").output().unwrap();
        (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
    };
    let file_s = file.display().to_string();
    // Sigil's backup file into an empty database; never over one that holds a store.
    let fresh = pg::database("backup_and_restore_on_postgres").unwrap();
    let (ok, said) = restore(&["--store", &fresh, "--in", &file_s]);
    assert!(ok, "{said}");
    let (ok, said) = restore(&["--store", &fresh, "--in", &file_s]);
    assert!(!ok && said.contains("already holds a store"), "{said}");
    // pg_dump + pg_restore, then marked restored.
    let dumped = pg::database("backup_and_restore_on_postgres").unwrap();
    let out = Command::new(pg::bin_dir().join("pg_restore")).args(["--no-owner", "--dbname", &dumped]).arg(&dump).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (ok, said) = restore(&["--store", &dumped, "--after-pg-restore"]);
    assert!(ok, "{said}");
    for (i, db) in [fresh, dumped].iter().enumerate() {
        let s = Server::start_in(&dir.path().join(format!("r{i}")), "127.0.0.1:0", &on(db, &key)).await;
        assert_eq!(s.get(&format!("/v1/tenants/acme/agents/{agent}"), &admin).await.0, 200, "restore {i}");
    }
}

//! Restarts, crashes and wrong keys.

use serde_json::json;

use crate::helpers::{OPERATOR, Opts, Server, serve_fails, snapshot};

#[tokio::test]
async fn restart_keeps_state() {
    let s = Server::start().await;
    let admin = s.tenant("acme").await;
    let (agent, token, _) = s.agent("acme", &admin, "bot").await;
    let s = s.restart().await;
    let (st, v) = s.get(&format!("/v1/tenants/acme/agents/{agent}"), &admin).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(s.get("/v1/agent", &token).await.0, 200);
    assert_eq!(s.get("/v1/tenants", OPERATOR).await.1["items"][0]["id"], "acme");
}

#[tokio::test]
async fn kill_9_right_after_201_loses_nothing() {
    let s = Server::start().await;
    let admin = s.tenant("acme").await;
    let mut created = Vec::new();
    for i in 0..20 {
        created.push(s.agent("acme", &admin, &format!("bot-{i}")).await.0);
    }
    let s = s.restart_after_kill9().await;
    for a in created {
        let (st, v) = s.get(&format!("/v1/tenants/acme/agents/{a}"), &admin).await;
        assert_eq!(st, 200, "agent {a} lost after kill -9: {v}");
    }
}

/// Presentations are audited through sled's write-ahead journal, not a transaction: after
/// `kill -9` every acknowledged presentation still has its entry, in an intact chain (the
/// journal is replayed at start), and the server goes on appending to the same chain.
#[tokio::test]
async fn kill_9_after_presentations_loses_no_audit_entry() {
    let s = Server::start().await;
    let admin = s.tenant("acme").await;
    let (agent, token, _) = s.agent("acme", &admin, "bot").await;
    let body = json!({"principal": {"id": "alice", "kind": "person"}, "actions": ["refunds:create"], "resources": ["orders/*"],
        "limits": {"amount": {"max": "500.00", "currency": "EUR"}}, "valid_until": "2099-01-01T00:00:00Z"});
    assert_eq!(s.post(&format!("/v1/tenants/acme/agents/{agent}/delegations"), &admin, body).await.0, 201);
    let present = |c: String| {
        let (s, token) = (&s, &token);
        async move {
            let (st, v) = s.post("/v1/presentations", token, crate::presentations::refund(&c)).await;
            assert_eq!(st, 200, "{v}");
        }
    };
    for round in 0..10 {
        let ((), (), (), ()) = tokio::join!(
            present(format!("c{round}a")),
            present(format!("c{round}b")),
            present(format!("c{round}c")),
            present(format!("c{round}d"))
        );
    }
    let before = s.get("/v1/tenants/acme/audit/verify", &admin).await.1["entries"].as_u64().unwrap();
    let s = s.restart_after_kill9().await;
    let (st, page) = s.get(&format!("/v1/tenants/acme/audit?event=presentation.granted&agent={agent}&limit=500"), &admin).await;
    assert_eq!(st, 200, "{page}");
    assert_eq!(page["items"].as_array().unwrap().len(), 40, "acknowledged presentations lost their audit entries");
    assert_eq!(s.post("/v1/presentations", &token, crate::presentations::refund("after")).await.0, 200);
    let (_, v) = s.get("/v1/tenants/acme/audit/verify", &admin).await;
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["entries"].as_u64(), Some(before + 1), "{v}");
}

#[tokio::test]
async fn wrong_root_key_refuses_to_start_and_touches_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("root.key");
    std::fs::write(&key, [7u8; 32]).unwrap();
    let data = dir.path().join("data");
    let opts = Opts { args: vec!["--root-key-file".into(), key.display().to_string()], ..Default::default() };
    let mut s = Server::start_in(&data, "127.0.0.1:0", &opts).await;
    s.tenant("acme").await;
    s.stop();
    drop(s);
    let before = snapshot(&data);
    let wrong = dir.path().join("wrong.key");
    std::fs::write(&wrong, [8u8; 32]).unwrap();
    let bad = Opts { args: vec!["--root-key-file".into(), wrong.display().to_string()], ..Default::default() };
    let (code, err) = serve_fails(&data, &bad);
    assert_eq!(code, 3, "a wrong root key exits 3: {err}");
    assert!(err.contains("root key or passphrase is wrong"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "one clear line: {err}");
    assert!(before == snapshot(&data), "data files changed after a refused start");
    // A short key file is a config error (exit 2), also without touching anything.
    std::fs::write(&wrong, [8u8; 31]).unwrap();
    assert_eq!(serve_fails(&data, &bad).0, 2);
    assert!(before == snapshot(&data));
    // The right key still works.
    let s = Server::start_in(&data, "127.0.0.1:0", &opts).await;
    assert_eq!(s.get("/v1/tenants", OPERATOR).await.0, 200);
}

#[tokio::test]
async fn wrong_passphrase_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // The passphrase comes through the `_FILE` twin here; the plain variable works the same.
    let pw = dir.path().join("pw");
    std::fs::write(&pw, "correct horse battery staple\n").unwrap();
    let mut opts = Opts::default();
    opts.env.push(("SIGIL_ROOT_PASSPHRASE_FILE".into(), pw.display().to_string()));
    let mut s = Server::start_in(&data, "127.0.0.1:0", &opts).await;
    s.tenant("acme").await;
    s.stop();
    drop(s);
    assert!(!data.join("root.key").exists(), "a passphrase store must not get a key file");
    let before = snapshot(&data);
    std::fs::write(&pw, "wrong horse battery staple\n").unwrap();
    let (code, err) = serve_fails(&data, &opts);
    assert_eq!(code, 3, "a wrong passphrase exits 3: {err}");
    assert!(err.contains("root key or passphrase is wrong"), "{err}");
    assert!(before == snapshot(&data));
    std::fs::write(&pw, "correct horse battery staple\n").unwrap();
    let s = Server::start_in(&data, "127.0.0.1:0", &opts).await;
    assert_eq!(s.get("/v1/tenants", OPERATOR).await.0, 200);
}

#[tokio::test]
async fn generated_operator_token_and_dev_key_files_are_private() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let s = Server::start_in(&data, "127.0.0.1:0", &Opts { env: vec![], args: vec![] }).await;
    use std::os::unix::fs::PermissionsExt;
    for f in ["operator.token", "root.key", "tls/key.pem"] {
        let mode = std::fs::metadata(data.join(f)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{f}");
    }
    let token = std::fs::read_to_string(data.join("operator.token")).unwrap();
    let (st, _) = s.post("/v1/tenants", token.trim(), json!({"name": "x"})).await;
    assert_eq!(st, 201);
}

#[tokio::test]
async fn invalid_config_exits_2_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(crate::helpers::bin())
        .args(["serve", "--listen", "0.0.0.0:0", "--http", "--data"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("loopback"));
}

#[tokio::test]
async fn plain_http_on_loopback_works() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(crate::helpers::bin())
        .args(["serve", "--http", "--listen", "127.0.0.1:0", "--data"])
        .arg(dir.path().join("d"))
        .env("SIGIL_LOG", "error")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::BufRead;
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let base = line.trim().strip_prefix("sigil listening on ").unwrap().to_owned();
    assert!(base.starts_with("http://127.0.0.1:"));
    let r = reqwest::get(format!("{base}/healthz")).await.unwrap();
    assert_eq!(r.status(), 200);
    let _ = child.kill();
    let _ = child.wait();
}

/// One agent creation by a background writer: what it got back, and when it was sent and
/// acknowledged.
struct Write {
    id: String,
    token: String,
    credential: String,
    sent: std::time::Instant,
    acked: std::time::Instant,
}

/// Writers run on the multi-threaded runtime's workers while the backup command runs on a
/// blocking thread, so writes are acknowledged while the backup request is in flight; the
/// restored store must then be a consistent prefix of what was acknowledged.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn backup_while_serving_and_restore_elsewhere() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Instant;
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("root.key");
    std::fs::write(&key, [9u8; 32]).unwrap();
    let opts = Opts { args: vec!["--root-key-file".into(), key.display().to_string()], ..Default::default() };
    let s = Arc::new(Server::start_in(&dir.path().join("data"), "127.0.0.1:0", &opts).await);
    let admin = s.tenant("acme").await;
    let (agent, token, _) = s.agent("acme", &admin, "bot").await;
    let delegation = json!({"principal": {"id": "alice", "kind": "person"}, "actions": ["refunds:create"], "resources": ["orders/*"],
        "limits": {"amount": {"max": "500.00", "currency": "EUR"}}, "valid_until": "2099-01-01T00:00:00Z"});
    assert_eq!(s.post(&format!("/v1/tenants/acme/agents/{agent}/delegations"), &admin, delegation).await.0, 201);
    // Writes keep coming, from two sequential writers, until the backup is done and a
    // few more after it.
    let done = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..2)
        .map(|w| {
            let (s, admin, done) = (s.clone(), admin.clone(), done.clone());
            tokio::spawn(async move {
                let mut writes = Vec::new();
                let mut after = 0;
                while after < 3 {
                    if done.load(Ordering::SeqCst) {
                        after += 1;
                    }
                    let sent = Instant::now();
                    let (id, token, v) = s.agent("acme", &admin, &format!("bg-{w}-{}", writes.len())).await;
                    let credential = v["identity_credential_id"].as_str().unwrap().to_owned();
                    writes.push(Write { id, token, credential, sent, acked: Instant::now() });
                }
                writes
            })
        })
        .collect();
    // Let the writers get going first.
    while s.get("/v1/tenants/acme/agents?limit=500", &admin).await.1["items"].as_array().unwrap().len() < 5 {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let op = dir.path().join("op.token");
    std::fs::write(&op, OPERATOR).unwrap();
    let out = dir.path().join("sigil.backup");
    let backup_started = Instant::now();
    let run = {
        let (base, ca, out, op) = (s.base.clone(), s.data.join("tls/ca.pem"), out.clone(), op.clone());
        tokio::task::spawn_blocking(move || {
            std::process::Command::new(crate::helpers::bin())
                .args(["backup", "--url", &base, "--token-file"])
                .arg(&op)
                .arg("--ca")
                .arg(&ca)
                .arg("--out")
                .arg(&out)
                .output()
                .unwrap()
        })
        .await
        .unwrap()
    };
    let backup_ended = Instant::now();
    done.store(true, Ordering::SeqCst);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let mut writes = Vec::new();
    for w in writers {
        writes.push(w.await.unwrap());
    }
    let during = writes.iter().flatten().filter(|w| w.acked > backup_started && w.acked < backup_ended).count();
    assert!(during >= 1, "no write was acknowledged while the backup ran ({:?})", backup_ended - backup_started);
    eprintln!(
        "backup ran {:?}; {during} of {} writes acknowledged meanwhile",
        backup_ended - backup_started,
        writes.iter().map(Vec::len).sum::<usize>()
    );
    // A tenant token cannot take backups.
    let r = s.client.get(s.url("/v1/system/backup")).bearer_auth(&admin).send().await.unwrap();
    assert_eq!(r.status(), 403);
    // A presentation verified after the backup: its spent challenge is not in the backup.
    async fn verify(s: &Server, vp: &serde_json::Value, c: &str) -> serde_json::Value {
        s.call("POST", "/v1/verify", None, Some(json!({"presentation": vp, "challenge": c, "domain": "payments.example"}))).await.1
    }
    let spent = s.post("/v1/presentations", &token, crate::presentations::refund("after-backup")).await.1["presentation"].clone();
    assert_eq!(verify(&s, &spent, "after-backup").await["verified"], true);
    let listen = s.listen().to_owned();
    let Ok(mut s) = std::sync::Arc::try_unwrap(s) else { panic!("the server is still shared") };
    s.stop();
    // Nothing readable in the backup file.
    let bytes = std::fs::read(&out).unwrap();
    assert!(!bytes.windows(11).any(|w| w == b"Tenant acme"), "tenant name in clear");
    assert!(!bytes.windows(OPERATOR.len()).any(|w| w == OPERATOR.as_bytes()), "token in clear");
    // Restore into a fresh directory and serve from it with the same root key.
    let restored = dir.path().join("restored");
    let run = std::process::Command::new(crate::helpers::bin())
        .args(["restore", "--data"])
        .arg(&restored)
        .arg("--in")
        .arg(&out)
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let again = std::process::Command::new(crate::helpers::bin())
        .args(["restore", "--data"])
        .arg(&restored)
        .arg("--in")
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(2), "restore refuses a non-empty directory");
    // Served at the same address, so that the same DIDs resolve to it.
    let r2 = Server::start_in(&restored, &listen, &opts).await;
    assert_eq!(r2.get(&format!("/v1/tenants/acme/agents/{agent}"), &admin).await.0, 200);
    assert_eq!(r2.get("/v1/agent", &token).await.0, 200);
    // A consistent prefix: every write acknowledged before the backup started is there,
    // none sent after it ended is, each writer's writes are a prefix of what it wrote, and
    // each agent that is there is there whole (record, token, identity credential, DID).
    let (_, list) = r2.get("/v1/tenants/acme/agents?limit=500", &admin).await;
    let restored: std::collections::BTreeSet<String> =
        list["items"].as_array().unwrap().iter().map(|a| a["id"].as_str().unwrap().to_owned()).collect();
    let mut present = 0;
    for writer in &writes {
        let kept = writer.iter().take_while(|w| restored.contains(&w.id)).count();
        for (i, w) in writer.iter().enumerate() {
            let there = restored.contains(&w.id);
            assert_eq!(
                there,
                i < kept,
                "write {i} of a sequential writer is {} but an earlier one is missing",
                if there { "present" } else { "absent" }
            );
            if w.acked < backup_started {
                assert!(there, "write {i}, acknowledged before the backup started, is missing");
            }
            if w.sent > backup_ended {
                assert!(!there, "write {i}, sent after the backup ended, is in it");
            }
            let (st, v) = r2.get(&format!("/v1/tenants/acme/agents/{}", w.id), &admin).await;
            assert_eq!(st, if there { 200 } else { 404 }, "{v}");
            assert_eq!(r2.get("/v1/agent", &w.token).await.0, if there { 200 } else { 401 }, "agent {i}'s token");
            let (st, c) = r2.get(&format!("/v1/tenants/acme/credentials/{}", w.credential), &admin).await;
            assert_eq!(st, if there { 200 } else { 404 }, "agent {i}'s identity credential: {c}");
            let st = r2.call("GET", &format!("/tenants/acme/agents/{}/did.json", w.id), None, None).await.0;
            assert_eq!(st, if there { 200 } else { 404 }, "agent {i}'s DID");
        }
        present += kept;
    }
    assert_eq!(restored.len(), present + 1, "agents in the backup that no writer acknowledged");
    assert!(present < writes.iter().map(Vec::len).sum::<usize>(), "the backup holds writes made after it");
    eprintln!("{present} acknowledged writes restored");
    // The audit trail verifies and holds exactly the creations that are there.
    let (_, v) = r2.get("/v1/tenants/acme/audit/verify", &admin).await;
    assert_eq!(v["ok"], true, "{v}");
    let (_, created) = r2.get("/v1/tenants/acme/audit?event=agent.created&limit=500", &admin).await;
    assert_eq!(created["items"].as_array().unwrap().len(), present + 1, "{created}");
    // Every presentation made before the restore is refused; new ones verify.
    let v = verify(&r2, &spent, "after-backup").await;
    assert_eq!(v["verified"], false, "a challenge spent after the backup was accepted again: {v}");
    assert!(v["errors"].to_string().contains("restored from a backup"), "{v}");
    let fresh = r2.post("/v1/presentations", &token, crate::presentations::refund("after-restore")).await.1["presentation"].clone();
    assert_eq!(verify(&r2, &fresh, "after-restore").await["verified"], true);
    // A corrupted backup is refused.
    let mut bad = bytes.clone();
    let mid = bad.len() / 2;
    bad[mid] ^= 1;
    std::fs::write(&out, &bad).unwrap();
    let run = std::process::Command::new(crate::helpers::bin())
        .args(["restore", "--data"])
        .arg(dir.path().join("r3"))
        .arg("--in")
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(2));
}

mod crashes {
    //! Multi-step changes stopped between two of their steps by a crash point
    //! (`SIGIL_TEST_CRASH_AT`, debug builds only), then repaired by the next start.

    use serde_json::json;

    use crate::helpers::{OPERATOR, Opts, Server, bin, serve_fails};

    fn keys(dir: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf) {
        let (k1, k2) = (dir.join("k1"), dir.join("k2"));
        std::fs::write(&k1, [1u8; 32]).unwrap();
        std::fs::write(&k2, [2u8; 32]).unwrap();
        (k1, k2)
    }

    fn with_key(k: &std::path::Path, crash_at: Option<&str>) -> Opts {
        let mut o = Opts { args: vec!["--root-key-file".into(), k.display().to_string()], ..Default::default() };
        if let Some(p) = crash_at {
            o.env.push(("SIGIL_TEST_CRASH_AT".into(), p.into()));
        }
        o
    }

    /// Everything a tenant's admin and agent use still works.
    async fn works(s: &Server, admin: &str, agent: &str, agent_token: &str, challenge: &str) {
        assert_eq!(s.get(&format!("/v1/tenants/acme/agents/{agent}"), admin).await.0, 200);
        assert_eq!(s.get("/v1/tenants", OPERATOR).await.0, 200);
        let (st, r) = s.post("/v1/presentations", agent_token, crate::presentations::refund(challenge)).await;
        assert_eq!(st, 200, "{r}");
    }

    async fn setup(s: &Server) -> (String, String, String) {
        let admin = s.tenant("acme").await;
        let (agent, token, _) = s.agent("acme", &admin, "bot").await;
        let (st, d) = s
            .post(
                &format!("/v1/tenants/acme/agents/{agent}/delegations"),
                &admin,
                json!({"principal": {"id": "alice", "kind": "person"}, "actions": ["refunds:create"], "resources": ["orders/*"],
                       "limits": {"amount": {"max": "500.00", "currency": "EUR"}}, "valid_until": "2099-01-01T00:00:00Z"}),
            )
            .await;
        assert_eq!(st, 201, "{d}");
        (admin, agent, token)
    }

    /// Online root-key rotation killed after its staged wraps are durable but before the
    /// key-check file names the new key: the old key still opens everything, the new one
    /// is refused (exit 3), and the staged wraps are discarded so a later rotation runs.
    #[tokio::test]
    async fn root_rotation_crashing_before_the_key_check_keeps_the_old_key() {
        let dir = tempfile::tempdir().unwrap();
        let (k1, k2) = keys(dir.path());
        let data = dir.path().join("data");
        let mut s = Server::start_in(&data, "127.0.0.1:0", &with_key(&k1, Some("root_rotation.staged"))).await;
        let (admin, agent, token) = setup(&s).await;
        s.call_into_crash("POST", "/v1/system/root-key/rotate", OPERATOR, Some(json!({"new_root_key_file": k2.display().to_string()})))
            .await;
        let (code, err) = serve_fails(&data, &with_key(&k2, None));
        assert_eq!(code, 3, "the new key never became the root: {err}");
        let mut s = s.start_after_crash(&with_key(&k1, None)).await;
        works(&s, &admin, &agent, &token, "after-staged-crash").await;
        let (st, r) = s.post("/v1/system/root-key/rotate", OPERATOR, json!({"new_root_key_file": k2.display().to_string()})).await;
        assert_eq!((st, r["version"].as_u64()), (200, Some(2)), "nothing staged is left behind: {r}");
        s.stop();
        let s = Server::start_in(&data, "127.0.0.1:0", &with_key(&k2, None)).await;
        works(&s, &admin, &agent, &token, "after-rotation").await;
    }

    /// Killed right after the key-check file names the new key (the commit point) and
    /// before the staged wraps replace the old ones: the next start with the new key
    /// finishes the rotation; the old key is a wrong key (exit 3).
    #[tokio::test]
    async fn root_rotation_crashing_after_the_key_check_completes_with_the_new_key() {
        let dir = tempfile::tempdir().unwrap();
        let (k1, k2) = keys(dir.path());
        let data = dir.path().join("data");
        let mut s = Server::start_in(&data, "127.0.0.1:0", &with_key(&k1, Some("root_rotation.committed"))).await;
        let (admin, agent, token) = setup(&s).await;
        s.call_into_crash("POST", "/v1/system/root-key/rotate", OPERATOR, Some(json!({"new_root_key_file": k2.display().to_string()})))
            .await;
        let (code, err) = serve_fails(&data, &with_key(&k1, None));
        assert_eq!(code, 3, "the old key is retired at the commit point: {err}");
        let mut s = s.start_after_crash(&with_key(&k2, None)).await;
        works(&s, &admin, &agent, &token, "after-committed-crash").await;
        s.stop();
        // The repair was durable: a second start needs nothing more.
        let s = Server::start_in(&data, "127.0.0.1:0", &with_key(&k2, None)).await;
        works(&s, &admin, &agent, &token, "second-start").await;
    }

    /// The same two crash points in the offline command (`sigil rotate-root-key`).
    #[tokio::test]
    async fn offline_root_rotation_crashing_at_either_step_is_repaired() {
        for (point, survivor, refused) in [("root_rotation.staged", 1, 2), ("root_rotation.committed", 2, 1)] {
            let dir = tempfile::tempdir().unwrap();
            let (k1, k2) = keys(dir.path());
            let data = dir.path().join("data");
            let mut s = Server::start_in(&data, "127.0.0.1:0", &with_key(&k1, None)).await;
            let (admin, agent, token) = setup(&s).await;
            s.stop();
            drop(s);
            let out = std::process::Command::new(bin())
                .args(["rotate-root-key", "--data"])
                .arg(&data)
                .arg("--root-key-file")
                .arg(&k1)
                .arg("--new-root-key-file")
                .arg(&k2)
                .env("SIGIL_LOG", "warn")
                .env("SIGIL_TEST_CRASH_AT", point)
                .output()
                .unwrap();
            use std::os::unix::process::ExitStatusExt;
            assert_eq!(out.status.signal(), Some(6), "{point}: {}", String::from_utf8_lossy(&out.stderr));
            let key = |n| if n == 1 { &k1 } else { &k2 };
            let (code, err) = serve_fails(&data, &with_key(key(refused), None));
            assert_eq!(code, 3, "{point}: {err}");
            let s = Server::start_in(&data, "127.0.0.1:0", &with_key(key(survivor), None)).await;
            works(&s, &admin, &agent, &token, point).await;
        }
    }

    /// Tenant deletion over HTTPS, and the same deletion killed after the keys are
    /// shredded and while the records are purged: after the restart the tenant is gone
    /// (its DID, its tokens), its id can be taken again, and no old token reaches the new
    /// tenant.
    #[tokio::test]
    async fn tenant_deletion_over_https_survives_a_crash_at_either_step() {
        for point in [None, Some("tenant_delete.shredded"), Some("tenant_delete.purging")] {
            let opts = || {
                let mut o = Opts::default();
                if let Some(p) = point {
                    o.env.push(("SIGIL_TEST_CRASH_AT".into(), p.into()));
                }
                o
            };
            let mut s = Server::start_with(opts()).await;
            let (admin, agent, token) = setup(&s).await;
            let s = match point {
                None => {
                    let (st, r) = s.call("DELETE", "/v1/tenants/acme", Some(OPERATOR), None).await;
                    assert_eq!(st, 204, "{r}");
                    s
                }
                Some(_) => {
                    s.call_into_crash("DELETE", "/v1/tenants/acme", OPERATOR, None).await;
                    s.start_after_crash(&Opts::default()).await
                }
            };
            assert_eq!(s.get(&format!("/v1/tenants/acme/agents/{agent}"), &admin).await.0, 401, "{point:?}");
            assert_eq!(s.post("/v1/presentations", &token, crate::presentations::refund("gone")).await.0, 401, "{point:?}");
            assert_eq!(s.call("GET", "/tenants/acme/did.json", None, None).await.0, 404, "{point:?}");
            let (_, list) = s.get("/v1/tenants", OPERATOR).await;
            assert!(!list.to_string().contains("\"acme\""), "{point:?}: {list}");
            let again = s.tenant("acme").await;
            assert_eq!(s.get("/v1/tenants/acme/agents", &again).await.0, 200);
            assert_eq!(s.get("/v1/tenants/acme/agents", &admin).await.0, 401, "{point:?}: the old admin token is dead");
        }
    }
}

/// A data directory from before record manifests (format 1) opens: start-up builds every
/// tenant's manifest from the records stored, reads an older counter in clear, rolls the
/// uncounted data key over, and rewrites the key-check file as format 2. A key-check file
/// edited back to claim format 1 no longer opens (the format is sealed into it), and a
/// format this release does not know is refused with a clear line.
#[tokio::test]
async fn a_format_1_directory_is_upgraded_at_start() {
    use base64::Engine as _;
    use sigil::store::{Store, Txn, keys};

    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("root.key");
    std::fs::write(&key, [9u8; 32]).unwrap();
    let data = dir.path().join("data");
    let opts = Opts {
        args: vec!["--root-key-file".into(), key.display().to_string(), "--rotation-interval".into(), "1".into()],
        ..Default::default()
    };
    let mut s = Server::start_in(&data, "127.0.0.1:0", &opts).await;
    let admin = s.tenant("acme").await;
    let (agent, token, _) = s.agent("acme", &admin, "bot").await;
    let body = json!({"principal": {"id": "alice", "kind": "person"}, "actions": ["refunds:create"], "resources": ["orders/*"],
        "limits": {"amount": {"max": "100.00", "currency": "EUR", "per_day": "100.00"}}, "valid_until": "2099-01-01T00:00:00Z"});
    assert_eq!(s.post(&format!("/v1/tenants/acme/agents/{agent}/delegations"), &admin, body).await.0, 201);
    let spend = |amount: &str, challenge: &str| {
        let mut b = crate::presentations::refund(challenge);
        b["context"]["amount"] = amount.into();
        b
    };
    assert_eq!(s.post("/v1/presentations", &token, spend("10.00", "c1")).await.0, 200);
    s.stop();
    drop(s);

    // What a format-1 release left: no manifests, no seal counts, budgets in clear.
    {
        let store = sigil::store::SledStore::open(&data.join("store")).unwrap();
        let mut txn = Txn::new();
        for prefix in [&b"t/acme/mb/"[..], b"t/acme/sc/", b"t/acme/bd/"] {
            for (k, _) in store.scan(prefix, None, 1000).await.unwrap() {
                txn.delete(k.clone());
                if prefix == b"t/acme/bd/" {
                    txn.put(k, b"60.00".to_vec());
                }
            }
        }
        txn.delete(keys::manifest_root("acme")).put(keys::meta::FORMAT.to_vec(), 1u32.to_be_bytes().to_vec());
        store.commit(txn).await.unwrap();
        store.flush_now().unwrap();
    }
    let root = sigil::crypto::RootKey::from_bytes(sigil::crypto::SecretBytes::new(vec![9u8; 32]), 1).unwrap();
    let kc_path = data.join("keycheck.json");
    let write_kc = |format: u32, sealed_for: u32| {
        let mut kc: serde_json::Value = serde_json::from_slice(&std::fs::read(&kc_path).unwrap()).unwrap();
        kc["format"] = format.into();
        kc["check"] = base64::engine::general_purpose::STANDARD.encode(root.key_check(sealed_for)).into();
        std::fs::write(&kc_path, serde_json::to_vec(&kc).unwrap()).unwrap();
    };
    write_kc(1, 1);

    let s = Server::start_in(&data, "127.0.0.1:0", &opts).await;
    let kc: serde_json::Value = serde_json::from_slice(&std::fs::read(&kc_path).unwrap()).unwrap();
    assert_eq!(kc["format"], 2, "the key-check file names the new format");
    assert!(s.logs().contains("upgraded the data directory"));
    assert_eq!(s.get(&format!("/v1/tenants/acme/agents/{agent}"), &admin).await.0, 200);
    // The 60.00 in clear counts: 60 + 50 > 100, 60 + 30 ≤ 100.
    let (st, p) = s.post("/v1/presentations", &token, spend("50.00", "c2")).await;
    assert_eq!((st, p["code"].as_str()), (403, Some("daily_limit_exceeded")), "{p}");
    assert_eq!(s.post("/v1/presentations", &token, spend("30.00", "c3")).await.0, 200);
    // The data key whose seals were never counted rolls over at the next housekeeping run.
    let mut rolled = false;
    for _ in 0..50 {
        let (_, k) = s.get("/v1/tenants/acme/data-key", &admin).await;
        if k["version"] == 2 {
            rolled = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(rolled, "the uncounted data key did not roll over");
    assert_eq!(s.post("/v1/presentations", &token, spend("1.00", "c4")).await.0, 200);
    let mut s = s;
    s.stop();
    drop(s);

    // Claiming format 1 again (with a check sealed for format 2) does not open.
    let kc_bytes = std::fs::read(&kc_path).unwrap();
    let mut kc: serde_json::Value = serde_json::from_slice(&kc_bytes).unwrap();
    kc["format"] = 1.into();
    std::fs::write(&kc_path, serde_json::to_vec(&kc).unwrap()).unwrap();
    let (code, err) = serve_fails(&data, &opts);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("root key or passphrase is wrong"), "{err}");
    // A newer format than this release reads is refused in one clear line.
    kc["format"] = 3.into();
    std::fs::write(&kc_path, serde_json::to_vec(&kc).unwrap()).unwrap();
    let (code, err) = serve_fails(&data, &opts);
    assert!(code != 0 && err.contains("unsupported store format 3"), "{code}: {err}");
    std::fs::write(&kc_path, kc_bytes).unwrap();
    let s = Server::start_in(&data, "127.0.0.1:0", &opts).await;
    assert_eq!(s.get(&format!("/v1/tenants/acme/agents/{agent}"), &admin).await.0, 200);
}

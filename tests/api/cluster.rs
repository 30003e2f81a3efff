//! Two real `sigil serve` processes on one PostgreSQL database, as an installation behind one
//! address runs them: one public URL, one root key, separate processes (separate caches,
//! locks and chain heads). Each test states one guarantee of docs/ARCHITECTURE.md
//! ("Several nodes on one database") and drives both nodes at once.
//!
//! The database is the cluster `SIGIL_TEST_PG_URL` names (`scripts/test` and CI start a
//! throwaway one); under CI these tests fail without it, elsewhere they are skipped.

use std::path::Path;
use std::sync::Arc;

use serde_json::{Value, json};

use crate::helpers::{OPERATOR, Opts, Server, TestClock, pg};
use crate::presentations::refund;

/// Two nodes on one database, and what they share.
struct Pair {
    a: Server,
    b: Server,
    /// The options both nodes run with, `--root-key-file` last but one.
    opts: Opts,
    _dir: tempfile::TempDir,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Two nodes on a new database: one root key, one public URL (node `a`'s address, as a
/// load balancer's would be), `extra` options for both.
async fn pair(test: &str, extra: Opts) -> Option<Pair> {
    let url = pg::database(test)?;
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("root.key");
    std::fs::write(&key, rand::random::<[u8; 32]>()).unwrap();
    let (pa, pb) = (free_port(), free_port());
    let public = format!("https://127.0.0.1:{pa}");
    let mut opts = extra;
    opts.args.extend(["--store".into(), url, "--root-key-file".into(), key.display().to_string(), "--public-url".into(), public]);
    let a = start(&dir.path().join("a"), pa, &opts).await;
    let mut b = start(&dir.path().join("b"), pb, &opts).await;
    // The harness talks to a server at the URL it prints, the shared public one: `b` is
    // reached at its own address.
    b.base = format!("https://127.0.0.1:{pb}");
    Some(Pair { a, b, opts, _dir: dir })
}

async fn start(data: &Path, port: u16, opts: &Opts) -> Server {
    Server::start_in(data, &format!("127.0.0.1:{port}"), opts).await
}

/// Tenant `acme` (made on `a`) with agent `bot` holding a refund delegation of at most
/// 500.00 EUR a request and `per_day` a day; returns (admin token, agent id, agent token).
async fn tenant(s: &Server, per_day: &str) -> (String, String, String) {
    let admin = s.tenant("acme").await;
    let (agent, token, _) = s.agent("acme", &admin, "bot").await;
    let body = json!({"principal": {"id": "alice", "kind": "person"}, "actions": ["refunds:create"], "resources": ["orders/*"],
        "limits": {"amount": {"max": "500.00", "currency": "EUR", "per_day": per_day}}, "valid_until": "2099-01-01T00:00:00Z"});
    let (st, v) = s.post(&format!("/v1/tenants/acme/agents/{agent}/delegations"), &admin, body).await;
    assert_eq!(st, 201, "{v}");
    // Guardrails out of the way: these tests send many requests, some denied on purpose.
    let (st, v) = s
        .call(
            "PUT",
            "/v1/tenants/acme/guardrails",
            Some(&admin),
            Some(json!({"rate_per_second": 100000, "burst": 100000, "denial_threshold": 0, "denial_window_secs": 300, "sensitive_context_keys": []})),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    (admin, agent, token)
}

/// One 1.00 EUR refund on `s`.
async fn present(s: &Server, token: &str, challenge: &str) -> (u16, Value) {
    s.post("/v1/presentations", token, spend(challenge, "1.00")).await
}

fn spend(challenge: &str, amount: &str) -> Value {
    let mut body = refund(challenge);
    body["context"]["amount"] = amount.into();
    body
}

/// The trail verifies on both nodes (each reads the whole chain from the database).
async fn trail_verifies(p: &Pair, admin: &str) -> u64 {
    let mut len = 0;
    for s in [&p.a, &p.b] {
        let (st, v) = s.get("/v1/tenants/acme/audit/verify", admin).await;
        assert_eq!((st, v["ok"].as_bool()), (200, Some(true)), "the trail does not verify: {v}");
        len = v["entries"].as_u64().unwrap_or(0);
    }
    len
}

/// Daily budgets are exact across nodes, and the tenant's trail stays one verifiable chain
/// while both nodes write it: 60 concurrent 30.00 EUR refunds against 1,000.00 EUR a day,
/// half on each node, grant exactly 33; every decision is in the trail once.
#[tokio::test]
async fn a_daily_budget_is_exact_and_the_trail_one_chain_across_nodes() {
    let clock = TestClock::at("2026-06-03T12:00:00Z");
    let Some(p) = pair("a_daily_budget_is_exact_across_nodes", clock.opts()).await else { return };
    let (admin, _, token) = tenant(&p.a, "1000.00").await;
    let p = Arc::new(p);
    let mut tasks = Vec::new();
    for i in 0..60 {
        let (p, token) = (p.clone(), token.clone());
        tasks.push(tokio::spawn(async move {
            let s = if i % 2 == 0 { &p.a } else { &p.b };
            let (st, v) = s.post("/v1/presentations", &token, spend(&format!("b{i}"), "30.00")).await;
            (st, v["code"].as_str().map(str::to_owned))
        }));
    }
    let mut granted = 0;
    for t in tasks {
        match t.await.unwrap() {
            (200, _) => granted += 1,
            (403, Some(code)) => assert_eq!(code, "daily_limit_exceeded"),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(granted, 33, "1000.00 / 30.00 → exactly 33 grants");
    for s in [&p.a, &p.b] {
        let (st, v) = s.post("/v1/presentations", &token, spend("after", "30.00")).await;
        assert_eq!((st, v["code"].as_str()), (403, Some("daily_limit_exceeded")));
    }
    trail_verifies(&p, &admin).await;
    let (_, audit) = p.b.get("/v1/tenants/acme/audit?limit=500", &admin).await;
    let items = audit["items"].as_array().unwrap();
    let count = |kind: &str| items.iter().filter(|e| e["event"] == kind).count();
    assert_eq!(
        (count("presentation.granted"), count("presentation.denied")),
        (33, 29),
        "a decision is missing from the trail or there twice"
    );
    let seqs: Vec<u64> = items.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "the chain has a gap or a fork: {seqs:?}");
}

/// A challenge verifies once across nodes: each presentation, offered to both nodes at
/// the same moment, verifies on exactly one.
#[tokio::test]
async fn a_challenge_verifies_once_across_nodes() {
    let Some(p) = pair("a_challenge_verifies_once_across_nodes", Opts::default()).await else { return };
    let (_, _, token) = tenant(&p.a, "100000.00").await;
    for i in 0..10 {
        let challenge = format!("once-{i}");
        let (st, made) = p.a.post("/v1/presentations", &token, spend(&challenge, "1.00")).await;
        assert_eq!(st, 200, "{made}");
        let body = json!({"presentation": made["presentation"], "challenge": challenge, "domain": "payments.example"});
        let (ra, rb) =
            tokio::join!(p.a.call("POST", "/v1/verify", None, Some(body.clone())), p.b.call("POST", "/v1/verify", None, Some(body)));
        assert_eq!((ra.0, rb.0), (200, 200), "{} {}", ra.1, rb.1);
        let verified = [ra.1["verified"] == true, rb.1["verified"] == true];
        assert_eq!(verified.iter().filter(|v| **v).count(), 1, "{challenge}: verified on {verified:?}; a: {} b: {}", ra.1, rb.1);
    }
}

/// A suspension, a token replacement, a token deletion and a tenant deletion made on one
/// node are effective on the other for the very next request, although that node had
/// everything cached (it served the agent and the tokens just before).
#[tokio::test]
async fn a_change_on_one_node_is_effective_on_the_other_at_once() {
    let Some(p) = pair("a_change_on_one_node_is_effective_on_the_other_at_once", Opts::default()).await else { return };
    let (admin, agent, token) = tenant(&p.a, "100000.00").await;
    for round in 0..3 {
        // `b` serves the agent: its token, wallet and keys are cached there.
        assert_eq!(present(&p.b, &token, &format!("warm-{round}")).await.0, 200);
        let (st, v) = p.a.post(&format!("/v1/tenants/acme/agents/{agent}/suspend"), &admin, json!({})).await;
        assert_eq!(st, 200, "{v}");
        let (st, v) = present(&p.b, &token, &format!("suspended-{round}")).await;
        assert_eq!((st, v["code"].as_str()), (403, Some("agent_suspended")), "node b signed for an agent node a suspended");
        let (st, v) = p.a.post(&format!("/v1/tenants/acme/agents/{agent}/resume"), &admin, json!({})).await;
        assert_eq!(st, 200, "{v}");
        assert_eq!(present(&p.b, &token, &format!("resumed-{round}")).await.0, 200, "node b still refuses an agent node a resumed");
    }
    // Token replacement on `a`, without grace: the old token stops on `b`.
    let (st, v) = p.a.post(&format!("/v1/tenants/acme/agents/{agent}/tokens"), &admin, json!({})).await;
    assert_eq!(st, 201, "{v}");
    let new_token = v["access_token"].as_str().unwrap().to_owned();
    assert_eq!(present(&p.b, &token, "replaced").await.0, 401, "node b accepted a token node a replaced");
    assert_eq!(present(&p.b, &new_token, "new").await.0, 200);
    // A tenant token deleted on `a`, cached on `b`.
    let (st, v) = p.a.post("/v1/tenants/acme/tokens", &admin, json!({"role": "auditor"})).await;
    assert_eq!(st, 201, "{v}");
    let (auditor, id) = (v["token"].as_str().unwrap().to_owned(), v["id"].as_str().unwrap().to_owned());
    assert_eq!(p.b.get("/v1/tenants/acme/audit?limit=1", &auditor).await.0, 200);
    assert_eq!(p.a.call("DELETE", &format!("/v1/tenants/acme/tokens/{id}"), Some(&admin), None).await.0, 204);
    assert_eq!(p.b.get("/v1/tenants/acme/audit?limit=1", &auditor).await.0, 401, "node b accepted a token node a deleted");
    // The tenant deleted on `a`.
    assert_eq!(present(&p.b, &new_token, "last").await.0, 200);
    let (st, v) = p.a.call("DELETE", "/v1/tenants/acme", Some(OPERATOR), None).await;
    assert!(st == 202 || st == 204, "{st} {v}");
    let (st, v) = present(&p.b, &new_token, "deleted").await;
    assert_eq!(st, 401, "node b served a tenant node a deleted: {v}");
}

/// Authentication-failure throttling and automatic suspension are security boundaries:
/// they count across nodes. Failures from one address spread over both nodes are throttled
/// at the burst of the installation, not of each node; denials spread over both nodes
/// suspend the agent.
#[tokio::test]
async fn throttling_and_automatic_suspension_count_across_nodes() {
    let mut opts = Opts::default();
    opts.env.push(("SIGIL_AUTH_FAILURE_BURST".into(), "6".into()));
    let Some(p) = pair("throttling_and_automatic_suspension_count_across_nodes", opts).await else { return };
    let (admin, agent, token) = tenant(&p.a, "100000.00").await;
    let bad = format!("sgl_{}", "x".repeat(43));
    let mut throttled_at = None;
    for i in 0..14 {
        let s = if i % 2 == 0 { &p.a } else { &p.b };
        let (st, v) = s.get("/v1/tenants/acme/agents", &bad).await;
        match st {
            401 => {}
            429 => {
                assert_eq!(v["code"], "too_many_auth_failures", "{v}");
                throttled_at = Some(i + 1);
                break;
            }
            other => panic!("{other}: {v}"),
        }
    }
    assert_eq!(throttled_at, Some(7), "six failures allowed to the address across both nodes, not six per node");
    for s in [&p.a, &p.b] {
        assert_eq!(s.get("/v1/tenants/acme/agents", &bad).await.0, 429, "the block holds on both nodes");
        assert_eq!(s.get("/v1/tenants/acme/agents", &admin).await.0, 200, "a valid token is never refused for others' failures");
    }
    // Four denials in the window suspend the agent; two on each node.
    let (st, v) = p
        .b
        .call(
            "PUT",
            "/v1/tenants/acme/guardrails",
            Some(&admin),
            Some(json!({"rate_per_second": 100000, "burst": 100000, "denial_threshold": 4, "denial_window_secs": 300, "sensitive_context_keys": []})),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    for i in 0..4 {
        let s = if i % 2 == 0 { &p.a } else { &p.b };
        let mut body = refund(&format!("deny-{i}"));
        body["action"] = "invoices:pay".into();
        assert_eq!(s.post("/v1/presentations", &token, body).await.0, 403);
    }
    let (_, a) = p.a.get(&format!("/v1/tenants/acme/agents/{agent}"), &admin).await;
    assert_eq!(a["state"], "suspended", "denials split across the nodes did not suspend the agent");
    for s in [&p.a, &p.b] {
        let (st, v) = present(s, &token, "after").await;
        assert_eq!((st, v["code"].as_str()), (403, Some("agent_suspended")));
    }
}

/// Presentations on both nodes, until `stop`; every answer that is not a 200 is returned.
async fn load(p: Arc<Pair>, token: String, stop: Arc<std::sync::atomic::AtomicBool>, tag: &'static str) -> (usize, Vec<String>) {
    let mut n = 0;
    let mut bad = Vec::new();
    while !stop.load(std::sync::atomic::Ordering::SeqCst) {
        let s = if n % 2 == 0 { &p.a } else { &p.b };
        let (st, v) = present(s, &token, &format!("{tag}-{n}")).await;
        if st != 200 {
            bad.push(format!("{st} on node {}: {v}", if n % 2 == 0 { "a" } else { "b" }));
        }
        n += 1;
    }
    (n, bad)
}

/// Agent, issuer and data keys rotate, on either node, while both nodes serve
/// presentations: no request fails, and what was signed verifies on both nodes.
#[tokio::test]
async fn key_rotations_while_both_nodes_serve() {
    let Some(p) = pair("key_rotations_while_both_nodes_serve", Opts::default()).await else { return };
    let (admin, agent, token) = tenant(&p.a, "100000.00").await;
    let p = Arc::new(p);
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let loads: Vec<_> = (0..4).map(|i| tokio::spawn(load(p.clone(), token.clone(), stop.clone(), ["l0", "l1", "l2", "l3"][i]))).collect();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    for round in 0..2 {
        let (s, other) = if round == 0 { (&p.a, &p.b) } else { (&p.b, &p.a) };
        let (st, v) = s.post(&format!("/v1/tenants/acme/agents/{agent}/keys/rotate"), &admin, json!({})).await;
        assert_eq!(st, 200, "agent key: {v}");
        let (st, v) = other.post("/v1/tenants/acme/issuer-key/rotate", &admin, json!({})).await;
        assert_eq!(st, 200, "issuer key: {v}");
        let (st, v) = s.post("/v1/tenants/acme/data-key/rotate", &admin, json!({})).await;
        assert_eq!(st, 202, "data key: {v}");
        let mut done = false;
        for _ in 0..300 {
            let (_, v) = other.get("/v1/tenants/acme/data-key", &admin).await;
            if v["rotating"] == false {
                done = true;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        assert!(done, "the data-key rotation did not finish");
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let mut total = 0;
    for l in loads {
        let (n, bad) = l.await.unwrap();
        total += n;
        assert!(bad.is_empty(), "{} of {n} requests failed during the rotations, first: {}", bad.len(), bad[0]);
    }
    assert!(total > 20, "only {total} requests ran during the rotations");
    // Signed after the rotations on one node, verified on the other.
    let (st, made) = present(&p.a, &token, "final").await;
    assert_eq!(st, 200, "{made}");
    let body = json!({"presentation": made["presentation"], "challenge": "final", "domain": "payments.example"});
    let (st, v) = p.b.call("POST", "/v1/verify", None, Some(body)).await;
    assert_eq!((st, v["verified"].as_bool()), (200, Some(true)), "{v}");
    trail_verifies(&p, &admin).await;
}

/// A POST that may meet a dead server: `None` when no answer came.
async fn try_post(s: &Server, path: &str, token: &str, body: Value) -> Option<(u16, Value)> {
    s.secrets().add(token);
    let resp = s.client.post(s.url(path)).bearer_auth(token).json(&body).send().await.ok()?;
    let status = resp.status().as_u16();
    let text = resp.text().await.ok()?;
    let v = serde_json::from_str(&text).unwrap_or(Value::Null);
    Some((status, v))
}

/// What one worker saw: acknowledged agent ids, acknowledged grants, and failures.
#[derive(Default)]
struct Seen {
    agents: Vec<String>,
    grants: usize,
    failed: Vec<String>,
    after_kill: usize,
}

/// One worker of the kill -9 test on node `s` (`node`: its name): presentations, or agent
/// creations when `creates`, until `stop`; answers from `a` after `killed` count for nothing.
async fn work(
    s: &Server,
    node: &'static str,
    creates: bool,
    admin: &str,
    token: &str,
    (killed, stop): (&std::sync::atomic::AtomicBool, &std::sync::atomic::AtomicBool),
) -> Seen {
    use std::sync::atomic::Ordering;
    let mut seen = Seen::default();
    let mut n = 0;
    while !stop.load(Ordering::SeqCst) {
        n += 1;
        let was_killed = killed.load(Ordering::SeqCst);
        let answer = if creates {
            try_post(s, "/v1/tenants/acme/agents", admin, json!({"name": format!("{node}-{n}")})).await
        } else {
            try_post(s, "/v1/presentations", token, spend(&format!("{node}-{n}"), "1.00")).await
        };
        match answer {
            Some((201, v)) if creates => seen.agents.push(v["id"].as_str().unwrap().to_owned()),
            Some((200, _)) if !creates => seen.grants += 1,
            // The killed node: whatever it answered or not once killed is no acknowledgement.
            _ if node == "a" && (was_killed || killed.load(Ordering::SeqCst)) => break,
            other => seen.failed.push(format!("{other:?}")),
        }
        if was_killed {
            seen.after_kill += 1;
        }
    }
    seen
}

/// `kill -9` of one node under mixed load (presentations and agent creations on both):
/// every write either node acknowledged is there afterwards, the trail verifies, and the
/// other node served on without a failed request.
#[tokio::test]
async fn kill9_of_one_node_under_mixed_load() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let Some(mut p) = pair("kill9_of_one_node_under_mixed_load", Opts::default()).await else { return };
    let (admin, _, token) = tenant(&p.a, "1000000.00").await;
    let killed = AtomicBool::new(false);
    let stop = AtomicBool::new(false);
    let pid = p.a.child.id();
    let killer = async {
        tokio::time::sleep(std::time::Duration::from_millis(800)).await;
        killed.store(true, Ordering::SeqCst);
        let st = std::process::Command::new("kill").arg("-9").arg(pid.to_string()).status().unwrap();
        assert!(st.success());
        tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
        stop.store(true, Ordering::SeqCst);
    };
    let flags = (&killed, &stop);
    let (a1, a2, b1, b2, ()) = tokio::join!(
        work(&p.a, "a", false, &admin, &token, flags),
        work(&p.a, "a", true, &admin, &token, flags),
        work(&p.b, "b", false, &admin, &token, flags),
        work(&p.b, "b", true, &admin, &token, flags),
        killer
    );
    p.a.kill9();
    for (name, s) in [("a presenting", &a1), ("a creating", &a2), ("b presenting", &b1), ("b creating", &b2)] {
        assert!(s.failed.is_empty(), "{name}: {} failed, first {}", s.failed.len(), s.failed[0]);
    }
    assert!(b1.after_kill > 0 && b2.after_kill > 0, "node b served nothing after the kill");
    assert!(a1.grants + a2.agents.len() > 0, "node a acknowledged nothing before the kill: the test proves nothing");
    // Every acknowledged write is there, read through the surviving node.
    for id in a2.agents.iter().chain(&b2.agents) {
        let (st, v) = p.b.get(&format!("/v1/tenants/acme/agents/{id}"), &admin).await;
        assert_eq!(st, 200, "agent {id} was acknowledged but is gone: {v}");
    }
    let (st, v) = p.b.get("/v1/tenants/acme/audit/verify", &admin).await;
    assert_eq!((st, v["ok"].as_bool()), (200, Some(true)), "the trail does not verify after kill -9: {v}");
    let mut granted = 0;
    let mut after: Option<String> = None;
    loop {
        let path = match &after {
            Some(c) => format!("/v1/tenants/acme/audit?limit=500&after={c}"),
            None => "/v1/tenants/acme/audit?limit=500".to_owned(),
        };
        let (_, page) = p.b.get(&path, &admin).await;
        granted += page["items"].as_array().unwrap().iter().filter(|e| e["event"] == "presentation.granted").count();
        match page["next_cursor"].as_str() {
            Some(c) => after = Some(c.to_owned()),
            None => break,
        }
    }
    let acknowledged = a1.grants + b1.grants;
    assert!(granted >= acknowledged, "{acknowledged} grants acknowledged, {granted} in the trail");
}

/// A root-key rotation on one node while both serve: the other keeps serving what it holds,
/// refuses (503, never a wrap under the retired root) what needs the new root, and serves
/// everything once restarted with the new key, as the operator's rolling restart does.
#[tokio::test]
async fn a_root_key_rotation_on_one_node_then_a_rolling_restart() {
    let Some(mut p) = pair("a_root_key_rotation_on_one_node_then_a_rolling_restart", Opts::default()).await else { return };
    let (admin, _, token) = tenant(&p.a, "100000.00").await;
    assert_eq!(present(&p.b, &token, "before").await.0, 200);
    // The notices of the setup's changes reach node b late under load, and drop what it
    // opened: once they are in, it opens the tenant's keys again, for the rest of the test.
    tokio::time::sleep(std::time::Duration::from_millis(1000)).await;
    assert_eq!(present(&p.b, &token, "settled").await.0, 200);
    let new_key = p._dir.path().join("next.key");
    std::fs::write(&new_key, rand::random::<[u8; 32]>()).unwrap();
    p.b.secrets().add_key(&std::fs::read(&new_key).unwrap());
    let (st, r) = p.a.post("/v1/system/root-key/rotate", OPERATOR, json!({"new_root_key_file": new_key.display().to_string()})).await;
    assert_eq!((st, r["version"].as_u64()), (200, Some(2)), "{r}");
    // Node b, still on the old root: what it holds opened still serves.
    assert_eq!(present(&p.b, &token, "during").await.0, 200, "node b stopped serving a cached tenant");
    assert_eq!(p.b.get("/v1/tenants/acme/agents", &admin).await.0, 200);
    // A wrap under the retired root is refused, not made.
    let (st, v) = p.b.post("/v1/tenants", OPERATOR, json!({"id": "late", "name": "Late"})).await;
    assert_eq!((st, v["code"].as_str()), (503, Some("root_key_outdated")), "node b, on the retired root, created a tenant: {v}");
    assert_eq!(present(&p.a, &token, "on-a").await.0, 200);
    // The rolling restart: b again, with the new key.
    p.b.stop();
    let mut opts = p.opts.clone();
    let at = opts.args.iter().position(|a| a == "--root-key-file").unwrap() + 1;
    opts.args[at] = new_key.display().to_string();
    let port: u16 = p.b.base.rsplit(':').next().unwrap().parse().unwrap();
    let mut b = start(&p._dir.path().join("b"), port, &opts).await;
    b.base = format!("https://127.0.0.1:{port}");
    assert_eq!(present(&b, &token, "restarted").await.0, 200);
    let (st, v) = b.post("/v1/tenants", OPERATOR, json!({"id": "late", "name": "Late"})).await;
    assert_eq!(st, 201, "{v}");
    let late_admin = v["admin_token"].as_str().unwrap().to_owned();
    assert_eq!(p.a.get("/v1/tenants/late/agents", &late_admin).await.0, 200, "node a cannot open what node b wrapped");
    for s in [&p.a, &b] {
        let (st, v) = s.get("/v1/tenants/acme/audit/verify", &admin).await;
        assert_eq!((st, v["ok"].as_bool()), (200, Some(true)), "{v}");
    }
}

/// `opts` with `flag`'s value replaced by `value`, or the flag removed when `None`.
fn with_flag(opts: &Opts, flag: &str, value: Option<&Path>) -> Opts {
    let mut opts = opts.clone();
    if let Some(at) = opts.args.iter().position(|a| a == flag) {
        match value {
            Some(v) => opts.args[at + 1] = v.display().to_string(),
            None => {
                opts.args.drain(at..at + 2);
            }
        }
    }
    opts
}

/// Administration on both nodes until `stop`: tenants made on one node and used on the
/// other at once (a token made, the audit trail read: wraps that node never opened),
/// and each new tenant's data key rotated (a new wrap). Every answer that is not the
/// expected one is returned, with the tenants made (id, admin token).
async fn administer(
    p: Arc<Pair>,
    stop: Arc<std::sync::atomic::AtomicBool>,
    tag: &'static str,
) -> (usize, Vec<String>, Vec<(String, String)>) {
    let mut n = 0;
    let mut bad = Vec::new();
    let mut made = Vec::new();
    while !stop.load(std::sync::atomic::Ordering::SeqCst) {
        let (s, other, names) = if n % 2 == 0 { (&p.a, &p.b, ("a", "b")) } else { (&p.b, &p.a, ("b", "a")) };
        let id = format!("{tag}{n}");
        n += 1;
        let (st, v) = s.post("/v1/tenants", OPERATOR, json!({"id": id, "name": "Load"})).await;
        if st != 201 {
            bad.push(format!("tenant creation: {st} on node {}: {v}", names.0));
            continue;
        }
        let admin = v["admin_token"].as_str().unwrap_or_default().to_owned();
        made.push((id.clone(), admin.clone()));
        let (st, v) = other.post(&format!("/v1/tenants/{id}/tokens"), &admin, json!({"role": "auditor"})).await;
        if st != 201 {
            bad.push(format!("token creation: {st} on node {}: {v}", names.1));
        }
        let (st, v) = other.post(&format!("/v1/tenants/{id}/data-key/rotate"), &admin, json!({})).await;
        if st != 202 {
            bad.push(format!("data-key rotation: {st} on node {}: {v}", names.1));
        }
        let (st, v) = s.get(&format!("/v1/tenants/{id}/audit?limit=5"), &admin).await;
        if st != 200 {
            bad.push(format!("audit read: {st} on node {}: {v}", names.0));
        }
    }
    (n, bad, made)
}

/// The root key rotates on one node while both serve, each node given the next root key
/// ahead of time (`--next-root-key-file`): no request fails on either node (presentations,
/// tenant creation, token creation, data-key rotation, tenants the other node never
/// opened), the other node adopts the new root without restart, both make new tenants
/// the other opens, and a rolling restart with the new key as `--root-key-file` serves on.
#[tokio::test]
async fn a_root_key_rotation_while_both_nodes_serve() {
    let keys = tempfile::tempdir().unwrap();
    let next = keys.path().join("next.key");
    std::fs::write(&next, rand::random::<[u8; 32]>()).unwrap();
    let mut opts = Opts::default();
    opts.args.extend(["--next-root-key-file".into(), next.display().to_string()]);
    let Some(p) = pair("a_root_key_rotation_while_both_nodes_serve", opts).await else { return };
    let (admin, _, token) = tenant(&p.a, "1000000.00").await;
    // Tenants node b never opened: their data keys are not in its cache.
    let mut cold = Vec::new();
    for i in 0..3 {
        let (st, v) = p.a.post("/v1/tenants", OPERATOR, json!({"id": format!("cold{i}"), "name": "Cold"})).await;
        assert_eq!(st, 201, "{v}");
        cold.push(v["admin_token"].as_str().unwrap().to_owned());
    }
    let p = Arc::new(p);
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let loads: Vec<_> = ["l0", "l1", "l2"].into_iter().map(|tag| tokio::spawn(load(p.clone(), token.clone(), stop.clone(), tag))).collect();
    let admins: Vec<_> = ["x", "y"].into_iter().map(|tag| tokio::spawn(administer(p.clone(), stop.clone(), tag))).collect();
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let (st, r) = p.a.post("/v1/system/root-key/rotate", OPERATOR, json!({"new_root_key_file": next.display().to_string()})).await;
    assert_eq!((st, r["version"].as_u64()), (200, Some(2)), "{r}");
    // Node b opens the re-wrapped keys of tenants it never served, under load.
    for (i, admin) in cold.iter().enumerate() {
        let (st, v) = p.b.get(&format!("/v1/tenants/cold{i}/audit?limit=1"), admin).await;
        assert_eq!(st, 200, "node b cannot open cold{i} after the rotation: {v}");
    }
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let mut total = 0;
    for l in loads {
        let (n, bad) = l.await.unwrap();
        total += n;
        assert!(bad.is_empty(), "{} of {n} presentations failed during the root rotation, first: {}", bad.len(), bad[0]);
    }
    let mut made = Vec::new();
    for l in admins {
        let (n, bad, tenants) = l.await.unwrap();
        assert!(bad.is_empty(), "{} administration requests failed during the root rotation ({n} rounds), first: {}", bad.len(), bad[0]);
        made.extend(tenants);
    }
    assert!(total > 30 && made.len() > 4, "only {total} presentations and {} tenants during the rotation", made.len());
    eprintln!(
        "load window around the root rotation: {total} presentations, {} tenants made (each with a token and a data-key rotation)",
        made.len()
    );
    // Both nodes make new tenants, under the new root, that the other opens.
    for (i, (s, other)) in [(&p.a, &p.b), (&p.b, &p.a)].into_iter().enumerate() {
        let (st, v) = s.post("/v1/tenants", OPERATOR, json!({"id": format!("after{i}"), "name": "After"})).await;
        assert_eq!(st, 201, "{v}");
        let admin = v["admin_token"].as_str().unwrap();
        assert_eq!(other.get(&format!("/v1/tenants/after{i}/agents"), admin).await.0, 200);
    }
    trail_verifies(&p, &admin).await;
    // The rolling restart: each node in turn with the new key as its root key.
    let mut p = Arc::into_inner(p).unwrap();
    let restart_opts = with_flag(&with_flag(&p.opts, "--root-key-file", Some(&next)), "--next-root-key-file", None);
    for name in ["b", "a"] {
        let s = if name == "a" { &mut p.a } else { &mut p.b };
        let port: u16 = s.base.rsplit(':').next().unwrap().parse().unwrap();
        s.stop();
        // The old key alone is refused: the key check names the new one.
        let (code, _) = crate::helpers::serve_fails(&p._dir.path().join(name), &with_flag(&p.opts, "--next-root-key-file", None));
        assert_eq!(code, 3, "node {name} started with the retired root key");
        let mut restarted = start(&p._dir.path().join(name), port, &restart_opts).await;
        restarted.base = format!("https://127.0.0.1:{port}");
        if name == "a" {
            p.a = restarted;
        } else {
            p.b = restarted;
        }
    }
    for (i, s) in [&p.a, &p.b].into_iter().enumerate() {
        assert_eq!(present(s, &token, &format!("restarted-{i}")).await.0, 200);
        for (j, admin) in cold.iter().enumerate() {
            assert_eq!(s.get(&format!("/v1/tenants/cold{j}/audit?limit=1"), admin).await.0, 200);
        }
        // Every tenant made during the rotation opens under the new root alone.
        for (id, admin) in &made {
            let (st, v) = s.get(&format!("/v1/tenants/{id}/audit?limit=1"), admin).await;
            assert_eq!(st, 200, "tenant {id}, made during the rotation, after the restart: {v}");
        }
    }
    trail_verifies(&p, &admin).await;
}

/// A node that starts while another node's root-key rotation is between its steps
/// (wraps staged, key check not yet rewritten) leaves that rotation alone: it used to
/// settle it as interrupted, discarding the staged wraps, and the rotation then committed
/// a key check no data key opened under. Checked by a restart with the new key alone.
#[tokio::test]
async fn a_node_starting_during_a_root_rotation_leaves_it_alone() {
    let mut opts = Opts::default();
    opts.env.push(("SIGIL_TEST_PAUSE_AT".into(), "root_rotation.staged".into()));
    opts.env.push(("SIGIL_TEST_PAUSE_MS".into(), "6000".into()));
    let Some(mut p) = pair("a_node_starting_during_a_root_rotation_leaves_it_alone", opts).await else { return };
    let (admin, _, token) = tenant(&p.a, "100000.00").await;
    let new_key = p._dir.path().join("next.key");
    std::fs::write(&new_key, rand::random::<[u8; 32]>()).unwrap();
    p.a.secrets().add_key(&std::fs::read(&new_key).unwrap());
    let body = json!({"new_root_key_file": new_key.display().to_string()});
    let rotation = p.a.post("/v1/system/root-key/rotate", OPERATOR, body);
    let third = async {
        tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
        let started = std::time::Instant::now();
        let c = start(&p._dir.path().join("c"), free_port(), &p.opts).await;
        (c, started.elapsed())
    };
    let ((st, r), (mut c, took)) = tokio::join!(rotation, third);
    assert_eq!((st, r["version"].as_u64()), (200, Some(2)), "{r}");
    assert!(took < std::time::Duration::from_millis(4000), "node c started after the rotation ({took:?}): the test proves nothing");
    c.stop();
    // Node b again, with the new key alone: every data key must open under it.
    p.b.stop();
    let mut opts = p.opts.clone();
    let at = opts.args.iter().position(|a| a == "--root-key-file").unwrap() + 1;
    opts.args[at] = new_key.display().to_string();
    let port = free_port();
    let mut b = start(&p._dir.path().join("b"), port, &opts).await;
    b.base = format!("https://127.0.0.1:{port}");
    let (st, v) = b.get("/v1/tenants/acme/agents", &admin).await;
    assert_eq!(st, 200, "the tenant's data key is not under the new root: {v}");
    assert_eq!(present(&b, &token, "after").await.0, 200);
}

/// A rotation that dies after it moved the wrap version to the new root, before staging
/// any wrap: the other node refuses wraps meanwhile (`503 root_key_outdated`, it does not
/// hold the new key), and the dead node's next start discards the rotation, after which
/// both make wraps under the old root again.
#[tokio::test]
async fn a_root_rotation_dying_before_it_staged_is_discarded_at_the_next_start() {
    let mut opts = Opts::default();
    opts.env.push(("SIGIL_TEST_CRASH_AT".into(), "root_rotation.guarded".into()));
    let Some(mut p) = pair("a_root_rotation_dying_before_it_staged_is_discarded", opts).await else { return };
    let new_key = p._dir.path().join("next.key");
    std::fs::write(&new_key, rand::random::<[u8; 32]>()).unwrap();
    p.a.secrets().add_key(&std::fs::read(&new_key).unwrap());
    let body = json!({"new_root_key_file": new_key.display().to_string()});
    p.a.call_into_crash("POST", "/v1/system/root-key/rotate", OPERATOR, Some(body)).await;
    let (st, v) = p.b.post("/v1/tenants", OPERATOR, json!({"id": "mid", "name": "Mid"})).await;
    assert_eq!((st, v["code"].as_str()), (503, Some("root_key_outdated")), "{v}");
    let mut again = p.opts.clone();
    again.env.retain(|(k, _)| k != "SIGIL_TEST_CRASH_AT");
    p.a = p.a.start_after_crash(&again).await;
    for (i, s) in [&p.a, &p.b].into_iter().enumerate() {
        let (st, v) = s.post("/v1/tenants", OPERATOR, json!({"id": format!("after{i}"), "name": "After"})).await;
        assert_eq!(st, 201, "no wrap after the discarded rotation: {v}");
    }
}

//! The audit trail and budgets over a real server: read, filter, verify (API and offline
//! CLI), tampering at rest and in exports, and atomic daily budgets under concurrency.

use serde_json::{Value, json};

use sigil::store::{Store, Txn};

use crate::helpers::{Server, TestClock};
use crate::presentations::refund;

/// Store key of audit entry `seq` of tenant `acme`.
fn entry(seq: u64) -> Vec<u8> {
    sigil::store::keys::audit_entry("acme", seq)
}

/// A sealed entry with one bit of its ciphertext (the GCM tag) flipped.
fn flip_last_byte(mut blob: Vec<u8>) -> Vec<u8> {
    if let Some(b) = blob.last_mut() {
        *b ^= 1;
    }
    blob
}

/// Tenant `acme` with an auditor token and an agent holding a refund delegation; returns
/// (admin, auditor, agent id, agent token).
pub async fn setup(s: &Server) -> (String, String, String, String) {
    let admin = s.tenant("acme").await;
    let (_, aud) = s.post("/v1/tenants/acme/tokens", &admin, json!({"role": "auditor"})).await;
    let (agent, token, _) = s.agent("acme", &admin, "bot").await;
    let body = json!({"principal": {"id": "alice", "kind": "person"}, "actions": ["refunds:create"], "resources": ["orders/*"],
        "limits": {"amount": {"max": "500.00", "currency": "EUR", "per_day": "1000.00"}}, "valid_until": "2099-01-01T00:00:00Z"});
    let (st, _) = s.post(&format!("/v1/tenants/acme/agents/{agent}/delegations"), &admin, body).await;
    assert_eq!(st, 201);
    (admin, aud["token"].as_str().unwrap().to_owned(), agent, token)
}

#[tokio::test]
async fn daily_budget_is_atomic_under_concurrency() {
    // Noon (UTC, the delegation's zone): sixty requests cannot straddle midnight.
    let clock = TestClock::at("2026-06-03T12:00:00Z");
    let s = std::sync::Arc::new(Server::start_with(clock.opts()).await);
    let (_, _, _, token) = setup(&s).await;
    let mut tasks = Vec::new();
    for i in 0..60 {
        let (s, token) = (s.clone(), token.clone());
        tasks.push(tokio::spawn(async move {
            let mut body = refund(&format!("b{i}"));
            body["context"]["amount"] = "30.00".into();
            let (st, p) = s.post("/v1/presentations", &token, body).await;
            (st, p["code"].as_str().map(str::to_owned))
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
    let (st, p) = s.post("/v1/presentations", &token, refund("after")).await;
    assert_eq!((st, p["code"].as_str()), (403, Some("daily_limit_exceeded")));
}

/// One refund of `amount` EUR: `200` or the denial's code.
async fn spend(s: &Server, token: &str, challenge: &str, amount: &str) -> Result<(), String> {
    let mut body = refund(challenge);
    body["context"]["amount"] = amount.into();
    match s.post("/v1/presentations", token, body).await {
        (200, _) => Ok(()),
        (_, p) => Err(p["code"].as_str().unwrap_or("?").to_owned()),
    }
}

fn exceeded() -> Result<(), String> {
    Err("daily_limit_exceeded".into())
}

/// What was spent today stays spent across a graceful restart and a `kill -9` (a grant is
/// acknowledged only once durable, budget included); the next day starts afresh.
#[tokio::test]
async fn daily_budget_survives_restarts() {
    let clock = TestClock::at("2026-06-03T12:00:00Z");
    let s = Server::start_with(clock.opts()).await;
    let (_, _, _, token) = setup(&s).await;
    for i in 0..3 {
        assert_eq!(spend(&s, &token, &format!("a{i}"), "300.00").await, Ok(()));
    }
    let s = s.restart_after_kill9().await;
    assert_eq!(spend(&s, &token, "b", "100.01").await, exceeded(), "900.00 of 1000.00 spent before kill -9");
    assert_eq!(spend(&s, &token, "c", "100.00").await, Ok(()));
    let s = s.restart().await;
    assert_eq!(spend(&s, &token, "d", "0.01").await, exceeded(), "1000.00 spent before the restart");
    clock.set("2026-06-04T00:00:00Z");
    assert_eq!(spend(&s, &token, "e", "500.00").await, Ok(()), "a new day");
}

/// The budget's day is the delegation's local day (`schedule.timezone`), daylight saving
/// time included: it resets at local midnight, not at UTC midnight.
#[tokio::test]
async fn daily_budget_resets_at_midnight_in_the_delegations_time_zone() {
    // Europe/Berlin: UTC+1 until 2026-03-29 02:00 local, UTC+2 after (a 23-hour day).
    let clock = TestClock::at("2026-03-28T22:59:59Z");
    let s = Server::start_with(clock.opts()).await;
    let admin = s.tenant("acme").await;
    let (agent, token, _) = s.agent("acme", &admin, "bot").await;
    let body = json!({"principal": {"id": "alice", "kind": "person"}, "actions": ["refunds:create"], "resources": ["orders/*"],
        "limits": {"amount": {"max": "500.00", "currency": "EUR", "per_day": "1000.00"}},
        "schedule": {"timezone": "Europe/Berlin", "days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"], "from": "00:00", "to": "24:00"},
        "valid_until": "2099-01-01T00:00:00Z"});
    let (st, v) = s.post(&format!("/v1/tenants/acme/agents/{agent}/delegations"), &admin, body).await;
    assert_eq!(st, 201, "{v}");
    let budget = format!("/v1/tenants/acme/credentials/{}/budget", v["id"].as_str().unwrap());
    let (_, auditor) = s.post("/v1/tenants/acme/tokens", &admin, json!({"role": "auditor"})).await;
    let auditor = auditor["token"].as_str().unwrap().to_owned();
    let read = |who: String, path: String| {
        let s = &s;
        async move {
            let (st, b) = s.get(&path, &who).await;
            assert_eq!(st, 200, "{b}");
            (b["day"].as_str().unwrap().to_owned(), b["spent"].as_str().unwrap().to_owned(), b["remaining"].as_str().unwrap().to_owned())
        }
    };
    // Saturday 23:59:59 in Berlin: the whole budget.
    assert_eq!(spend(&s, &token, "sat1", "500.00").await, Ok(()));
    assert_eq!(
        read(auditor.clone(), budget.clone()).await,
        ("2026-03-28".into(), "500.00".into(), "500.00".into()),
        "auditors read the spend"
    );
    assert_eq!(spend(&s, &token, "sat2", "500.00").await, Ok(()));
    assert_eq!(read(admin.clone(), budget.clone()).await, ("2026-03-28".into(), "1000.00".into(), "0.00".into()));
    assert_eq!(spend(&s, &token, "sat3", "0.01").await, exceeded());
    assert_eq!(s.get(&budget, &token).await.0, 403, "an agent does not read its budget here");
    let (st, b) = s.get(&format!("{budget}?day=March"), &admin).await;
    assert_eq!((st, b["code"].as_str()), (400, Some("invalid_request")), "{b}");
    // Sunday 00:00 in Berlin (still Saturday in UTC): a new day.
    clock.set("2026-03-28T23:00:00Z");
    assert_eq!(read(admin.clone(), budget.clone()).await, ("2026-03-29".into(), "0".into(), "1000.00".into()), "the local day turned");
    for c in ["sun1", "sun2"] {
        assert_eq!(spend(&s, &token, c, "500.00").await, Ok(()), "local midnight resets the budget");
    }
    let (_, day) = (0, read(admin.clone(), format!("{budget}?day=2026-03-28")).await);
    assert_eq!(day, ("2026-03-28".into(), "1000.00".into(), "0.00".into()), "an earlier day is read by its date");
    // UTC midnight (Sunday 01:00 in Berlin) resets nothing; nor does Sunday 23:59:59 CEST.
    clock.set("2026-03-29T00:00:00Z");
    assert_eq!(spend(&s, &token, "sun3", "0.01").await, exceeded(), "UTC midnight is not the delegation's midnight");
    clock.set("2026-03-29T21:59:59Z");
    assert_eq!(spend(&s, &token, "sun4", "0.01").await, exceeded());
    // Monday 00:00 CEST, an hour earlier in UTC than the Sunday before.
    clock.set("2026-03-29T22:00:00Z");
    assert_eq!(spend(&s, &token, "mon1", "500.00").await, Ok(()), "local midnight after the switch to summer time");
}

pub fn export_lines(text: &str) -> Vec<String> {
    text.lines().filter(|l| !l.trim().is_empty()).map(str::to_owned).collect()
}

fn cli_verify(s: &Server, lines: &[String]) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("audit.jsonl");
    std::fs::write(&f, lines.join("\n") + "\n").unwrap();
    let out = std::process::Command::new(crate::helpers::bin())
        .args(["audit", "verify"])
        .arg(&f)
        .args(["--trust-tenant", &s.url("/tenants/acme")])
        .arg("--ca")
        .arg(s.data.join("tls/ca.pem"))
        .args(["--resolver-allow", s.listen()])
        .output()
        .unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned())
}

#[tokio::test]
async fn trail_is_readable_verifiable_and_tamper_evident() {
    let s = Server::start().await;
    let (admin, auditor, agent, token) = setup(&s).await;
    assert_eq!(s.post("/v1/presentations", &token, refund("g1")).await.0, 200);
    let mut denied = refund("d1");
    denied["action"] = "invoices:pay".into();
    assert_eq!(s.post("/v1/presentations", &token, denied).await.0, 403);
    let (_, wallet) = s.get(&format!("/v1/tenants/acme/agents/{agent}/credentials"), &admin).await;
    let del = wallet["items"][1]["id"].as_str().unwrap().to_owned();
    let (st, c) = s.post(&format!("/v1/tenants/acme/credentials/{del}/revoke"), &admin, json!({})).await;
    assert_eq!((st, c["status"].as_str()), (200, Some("revoked")), "{c}");
    // The auditor reads and filters.
    let (st, page) = s.get("/v1/tenants/acme/audit?limit=500", &auditor).await;
    assert_eq!(st, 200);
    let events: Vec<&str> = page["items"].as_array().unwrap().iter().map(|e| e["event"].as_str().unwrap()).collect();
    for e in [
        "tenant.created",
        "token.created",
        "agent.created",
        "delegation.issued",
        "presentation.granted",
        "presentation.denied",
        "credential.revoked",
    ] {
        assert!(events.contains(&e), "{e} missing from {events:?}");
    }
    let (_, pres) = s.get(&format!("/v1/tenants/acme/audit?event=presentation&agent={agent}"), &auditor).await;
    let items = pres["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[1]["details"]["reason"], "action_not_allowed");
    assert!(items[0]["details"]["vp_hash"].is_string() && items[0]["request_id"].is_string());
    let (_, paged) = s.get("/v1/tenants/acme/audit?limit=2", &auditor).await;
    let (_, next) = s.get(&format!("/v1/tenants/acme/audit?limit=2&after={}", paged["next_cursor"].as_str().unwrap()), &auditor).await;
    assert_eq!(next["items"][0]["seq"], 3);
    // Verify through the API, export, verify offline.
    let (_, v) = s.get("/v1/tenants/acme/audit/verify", &auditor).await;
    assert_eq!(v["ok"], true, "{v}");
    let export = s.client.get(s.url("/v1/tenants/acme/audit/export")).bearer_auth(&auditor).send().await.unwrap().text().await.unwrap();
    assert!(!export.contains("sgl_"), "a token in the audit trail");
    let lines = export_lines(&export);
    assert!(lines.last().unwrap().contains("audit.checkpoint"));
    let (ok, out) = cli_verify(&s, &lines);
    assert!(ok, "{out}");
    // Tampering with the export: an edited entry, a deleted one, two swapped.
    let mut edited = lines.clone();
    edited[3] = edited[3].replacen("\"actor\":\"", "\"actor\":\"x", 1);
    let (ok, out) = cli_verify(&s, &edited);
    assert!(!ok && out.contains("entry 4"), "{out}");
    let mut deleted = lines.clone();
    deleted.remove(2);
    let (ok, out) = cli_verify(&s, &deleted);
    assert!(!ok && out.contains("line 3"), "{out}");
    let mut swapped = lines.clone();
    swapped.swap(4, 5);
    let (ok, out) = cli_verify(&s, &swapped);
    assert!(!ok && out.contains("line 5"), "{out}");
    let (ok, out) = cli_verify(&s, &lines[..lines.len() - 1]);
    assert!(!ok && out.contains("checkpoint"), "a truncated export is not accepted: {out}");
    // Tampering at rest: flip a byte of stored entry 3; the API reports it as the first bad one.
    let s = s
        .edit_at_rest(|store| async move {
            let mut txn = Txn::new();
            txn.put(entry(3), flip_last_byte(store.get(&entry(3)).await.unwrap().unwrap()));
            store.commit(txn).await.unwrap();
        })
        .await;
    let (_, v) = s.get("/v1/tenants/acme/audit/verify", &auditor).await;
    assert_eq!((v["ok"].as_bool(), v["first_bad"]["seq"].as_u64()), (Some(false), Some(3)), "{v}");
    // At rest: with entry 3 repaired and entry 5 deleted, verification stops at 6.
    let s = s
        .edit_at_rest(|store| async move {
            let mut txn = Txn::new();
            txn.put(entry(3), flip_last_byte(store.get(&entry(3)).await.unwrap().unwrap())).delete(entry(5));
            store.commit(txn).await.unwrap();
        })
        .await;
    let (_, v) = s.get("/v1/tenants/acme/audit/verify", &auditor).await;
    assert_eq!((v["ok"].as_bool(), v["first_bad"]["seq"].as_u64()), (Some(false), Some(6)), "deleted entry: {v}");
    let _: Value = v;
}

#[tokio::test]
async fn reordered_entries_at_rest_are_reported() {
    let s = Server::start().await;
    let (_, auditor, _, token) = setup(&s).await;
    for i in 0..3 {
        assert_eq!(s.post("/v1/presentations", &token, refund(&format!("o{i}"))).await.0, 200);
    }
    let s = s
        .edit_at_rest(|store| async move {
            let (a, b) = (store.get(&entry(6)).await.unwrap().unwrap(), store.get(&entry(7)).await.unwrap().unwrap());
            let mut txn = Txn::new();
            txn.put(entry(6), b).put(entry(7), a);
            store.commit(txn).await.unwrap();
        })
        .await;
    let (_, v) = s.get("/v1/tenants/acme/audit/verify", &auditor).await;
    assert_eq!((v["ok"].as_bool(), v["first_bad"]["seq"].as_u64()), (Some(false), Some(6)), "{v}");
}

//! Guardrails and metrics over a real server: per-agent rate limits, automatic suspension
//! after repeated denials, throttling of repeated authentication failures, Prometheus.

use serde_json::json;

use crate::helpers::{OPERATOR, Opts, Server};
use crate::presentations::refund;

async fn agent_with(s: &Server, admin: &str) -> (String, String) {
    let (agent, token, _) = s.agent("acme", admin, "bot").await;
    let body = json!({"principal": {"id": "alice", "kind": "person"}, "actions": ["refunds:create"], "resources": ["orders/*"],
        "limits": {"amount": {"max": "500.00", "currency": "EUR"}}, "valid_until": "2099-01-01T00:00:00Z"});
    assert_eq!(s.post(&format!("/v1/tenants/acme/agents/{agent}/delegations"), admin, body).await.0, 201);
    (agent, token)
}

/// Rate 1/s with a burst of 3 (the tenant's setting): a fresh agent's first three requests
/// are granted, the ones right after are `429 rate_limited`, and a second later one more
/// is granted. Returns the agent.
///
/// The limiter runs on the server's monotonic clock, which the test clock does not move,
/// so every assertion is bounded by the time the requests took instead of assuming they
/// were quick: by then at most `3 + whole seconds elapsed` can have been granted, and a
/// request sent a second after the first was answered must be. An attempt that took a
/// second or more cannot show the limit, so it is repeated with a new agent.
async fn burst_then_one_per_second(s: &Server, admin: &str) -> String {
    use std::time::{Duration, Instant};
    for _attempt in 0..10 {
        let (agent, token) = agent_with(s, admin).await;
        let started = Instant::now();
        let mut first_answered = None;
        let mut codes = Vec::new();
        for i in 0..5 {
            let (st, p) = s.post("/v1/presentations", &token, refund(&format!("r{i}"))).await;
            first_answered.get_or_insert_with(Instant::now);
            codes.push((st, p["code"].as_str().map(str::to_owned)));
        }
        let elapsed = started.elapsed();
        assert!(codes[..3].iter().all(|c| c.0 == 200), "the burst is granted: {codes:?}");
        assert!(codes.iter().all(|c| c.0 == 200 || (c.0 == 429 && c.1.as_deref() == Some("rate_limited"))), "{codes:?}");
        // 50 ms for the two processes' clocks to disagree on what a second is.
        let refilled = (elapsed + Duration::from_millis(50)).as_secs() as usize;
        let granted = codes.iter().filter(|c| c.0 == 200).count();
        assert!(granted <= 3 + refilled, "{granted} granted in {elapsed:?}: {codes:?}");
        if refilled > 0 {
            continue;
        }
        // Here exactly three were granted and two refused. One token comes back a second
        // after the first grant, which was no later than its answer.
        let wait = (first_answered.unwrap() + Duration::from_millis(1100)).saturating_duration_since(Instant::now());
        tokio::time::sleep(wait).await;
        let (st, p) = s.post("/v1/presentations", &token, refund("refilled")).await;
        assert_eq!(st, 200, "a second later, one more: {p}");
        return agent;
    }
    panic!("ten attempts each took a second or more for five requests: the machine is too loaded to show a burst limit");
}

#[tokio::test]
async fn rate_limits_and_automatic_suspension() {
    let s = Server::start().await;
    let admin = s.tenant("acme").await;
    let (st, g) = s.call("PUT", "/v1/tenants/acme/guardrails", Some(&admin),
        Some(json!({"rate_per_second": 1, "burst": 3, "denial_threshold": 4, "denial_window_secs": 300, "sensitive_context_keys": ["customer"]}))).await;
    assert_eq!(st, 200, "{g}");
    let agent = burst_then_one_per_second(&s, &admin).await;
    // A second agent: four denials in the window suspend it automatically.
    let (st, _) = s.call("PUT", "/v1/tenants/acme/guardrails", Some(&admin),
        Some(json!({"rate_per_second": 1000, "burst": 1000, "denial_threshold": 4, "denial_window_secs": 300, "sensitive_context_keys": ["customer"]}))).await;
    assert_eq!(st, 200);
    let (agent2, token2) = agent_with(&s, &admin).await;
    let mut ok = refund("ok");
    ok["context"]["customer"] = "jane@example.com".into();
    assert_eq!(s.post("/v1/presentations", &token2, ok).await.0, 200);
    for i in 0..4 {
        let mut b = refund(&format!("d{i}"));
        b["action"] = "invoices:pay".into();
        assert_eq!(s.post("/v1/presentations", &token2, b).await.0, 403);
    }
    let (_, a) = s.get(&format!("/v1/tenants/acme/agents/{agent2}"), &admin).await;
    assert_eq!(a["state"], "suspended");
    let (_, p) = s.post("/v1/presentations", &token2, refund("after")).await;
    assert_eq!(p["code"], "agent_suspended");
    let (_, audit) = s.get(&format!("/v1/tenants/acme/audit?agent={agent2}&limit=500"), &admin).await;
    let items = audit["items"].as_array().unwrap();
    assert!(items.iter().any(|e| e["event"] == "guardrail.auto_suspended" && e["actor"] == "system:guardrail"));
    // The sensitive context value is in the trail only as a keyed hash.
    let granted = items.iter().find(|e| e["event"] == "presentation.granted").unwrap();
    assert!(granted["details"]["context"]["customer"].as_str().unwrap().starts_with("hmac-sha256:"));
    assert!(!audit.to_string().contains("jane@example.com"));
    assert_eq!(granted["details"]["context"]["amount"], "120.00");
    let _ = agent;
    // Metrics: requests, presentations by outcome, triggers, flushes.
    let text = s.metrics().await;
    for m in [
        "sigil_http_requests_total",
        "sigil_http_request_duration_seconds",
        "sigil_presentations_total{outcome=\"denied\",reason=\"action_not_allowed\"}",
        "sigil_guardrail_triggers_total{kind=\"auto_suspend\"}",
        "sigil_guardrail_triggers_total{kind=\"rate_limit\"}",
        "sigil_store_flush_seconds",
        "sigil_store_flush_batch_size",
        "sigil_cache_lookups_total",
    ] {
        assert!(text.contains(m), "{m} missing from /metrics");
    }
    assert!(!text.contains("sgl_"), "no token in metrics");
}

#[tokio::test]
async fn repeated_authentication_failures_are_throttled_and_audited() {
    let mut opts = Opts::default();
    opts.env.push(("SIGIL_AUTH_FAILURE_BURST".into(), "5".into()));
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_in(&dir.path().join("d"), "127.0.0.1:0", &opts).await;
    let admin = s.tenant("acme").await;
    let mut statuses = Vec::new();
    for _ in 0..8 {
        statuses.push(s.get("/v1/tenants/acme/agents", "sgl_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA").await.0);
    }
    assert_eq!(&statuses[..5], &[401; 5], "{statuses:?}");
    assert_eq!(statuses[7], 429, "{statuses:?}");
    // The address is refused for attempts without a valid token; a valid token from it is
    // never refused for what other callers did (behind a proxy, they all share it).
    let (st, p) = s.get("/v1/tenants/acme/agents", "sgl_BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB").await;
    assert_eq!((st, p["code"].as_str()), (429, Some("too_many_auth_failures")));
    let (st, p) = s.get("/v1/tenants/acme/agents", &admin).await;
    assert_eq!(st, 200, "{p}");
    drop(s);
    let s = Server::start_in(&dir.path().join("d"), "127.0.0.1:0", &Opts::default()).await;
    let (_, audit) = s.get("/v1/tenants/acme/audit?event=auth&limit=100", &admin).await;
    let n = audit["items"].as_array().unwrap().len();
    assert!(n >= 5, "auth failures audited: {n}");
    assert!(!audit.to_string().contains("sgl_AAAA"), "no token in the audit trail");
}

/// Behind a TLS-terminating proxy on the same host (`--http` on loopback), every client
/// shares the proxy's address: 21 requests without a token, the default burst plus one,
/// must not lock the operator (or anyone with a valid token) out.
#[tokio::test]
async fn failures_behind_a_shared_address_never_refuse_a_valid_token() {
    let mut opts = Opts::default();
    opts.args.push("--http".into());
    opts.env.push(("SIGIL_AUTH_FAILURE_BURST".into(), "20".into()));
    let s = Server::start_with(opts).await;
    assert!(s.base.starts_with("http://127.0.0.1:"), "{}", s.base);
    let mut statuses = Vec::new();
    for _ in 0..21 {
        statuses.push(s.call("GET", "/v1/tenants", None, None).await.0);
    }
    assert_eq!(statuses[..20], [401; 20], "{statuses:?}");
    assert_eq!(statuses[20], 429, "the throttle still stops token-less attempts: {statuses:?}");
    let (st, v) = s.get("/v1/tenants", OPERATOR).await;
    assert_eq!(st, 200, "the operator token was refused for other callers' failures: {v}");
}

/// A request without a token, from `s`'s own address, naming `xff` as forwarded-for.
async fn anonymous_via(s: &Server, path: &str, xff: &str) -> u16 {
    s.client.get(s.url(path)).header("x-forwarded-for", xff).send().await.unwrap().status().as_u16()
}

/// `X-Forwarded-For` names the client only when it comes from a `--trusted-proxy`; from
/// anyone else it is the client's own claim and ignored.
#[tokio::test]
async fn client_addresses_come_from_trusted_proxies_only() {
    let path = "/v1/tenants/acme/agents";
    let start = |trusted: bool| {
        let mut opts = Opts::default();
        opts.args.push("--http".into());
        if trusted {
            opts.args.extend(["--trusted-proxy".into(), "127.0.0.1/32".into()]);
        }
        opts.env.push(("SIGIL_AUTH_FAILURE_BURST".into(), "3".into()));
        Server::start_with(opts)
    };
    // Not a trusted proxy: four different claims are one address, throttled after three.
    let s = start(false).await;
    let mut statuses = Vec::new();
    for i in 0..4 {
        statuses.push(anonymous_via(&s, path, &format!("203.0.113.{i}")).await);
    }
    assert_eq!(statuses, [401, 401, 401, 429], "a forwarded-for claim from an untrusted peer was believed");
    drop(s);

    // From a trusted proxy, the rightmost address it did not add itself is the client:
    // whatever a client writes further left is its own claim and does not matter.
    let s = start(true).await;
    let admin = s.tenant("acme").await;
    let mut statuses = Vec::new();
    for i in 0..4 {
        statuses.push(anonymous_via(&s, path, &format!("198.51.100.{i}, 203.0.113.7")).await);
    }
    assert_eq!(statuses, [401, 401, 401, 429], "one client behind the proxy");
    assert_eq!(anonymous_via(&s, path, "203.0.113.7, 203.0.113.8").await, 401, "another client has its own allowance");
    assert_eq!(anonymous_via(&s, path, "203.0.113.7").await, 429, "the first is still throttled");
    assert_eq!(s.get(path, &admin).await.0, 200);
    let (_, audit) = s.get("/v1/tenants/acme/audit?event=auth&limit=100", &admin).await;
    let clients: Vec<&str> = audit["items"].as_array().unwrap().iter().filter_map(|e| e["details"]["client"].as_str()).collect();
    assert!(clients.contains(&"203.0.113.7") && clients.contains(&"203.0.113.8"), "{clients:?}");
    assert!(!clients.contains(&"127.0.0.1"), "the proxy's address recorded as the client: {clients:?}");
}

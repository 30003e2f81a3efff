//! The server's logs: captured by the helpers, and free of secrets (the helpers scan them
//! for every token and key the test has seen each time a server stops).

use serde_json::json;

use crate::helpers::{OPERATOR, Server};

#[tokio::test]
async fn logs_are_captured_at_debug_and_hold_no_token() {
    let mut s = Server::start().await;
    let admin = s.tenant("acme").await;
    let (agent, token, _) = s.agent("acme", &admin, "bot").await;
    let (st, _) = s.post(&format!("/v1/tenants/acme/agents/{agent}/delegations"), &admin, crate::credentials::delegation_body()).await;
    assert_eq!(st, 201);
    let (st, rotated) = s.post(&format!("/v1/tenants/acme/agents/{agent}/tokens"), &admin, json!({})).await;
    assert_eq!(st, 201);
    let rotated = rotated["access_token"].as_str().unwrap().to_owned();
    // Wrong tokens are secrets too: they may be real ones mistyped.
    let garbled = format!("{admin}x");
    assert_eq!(s.get("/v1/tenants/acme/agents", &garbled).await.0, 401);
    assert_eq!(s.get("/v1/agent", &token).await.0, 401);
    // Every request is logged (at info), so the scan has lines to look through. A line is
    // written just after its response: give the last ones a moment to arrive.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while s.logs().matches(r#""message":"request""#).count() < 6 && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let logs = s.logs();
    assert!(logs.matches(r#""message":"request""#).count() >= 6, "{logs}");
    assert!(logs.contains("/v1/tenants/{tenant}/agents/{agent}/tokens"), "{logs}");
    // What the scan on stop looks for: every token returned or presented, and the keys.
    for t in [OPERATOR, &admin, &token, &rotated, &garbled] {
        assert!(s.secrets().has(t), "{} not recorded", &t[..6]);
    }
    let root_key = std::fs::read(s.data.join("root.key")).unwrap();
    assert!(s.secrets().has(&root_key) && s.secrets().has(hex::encode(&root_key)));
    assert!(!logs.contains(OPERATOR) && !logs.contains(&admin) && !logs.contains(&token));
    s.stop();
}

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
    assert_eq!(s.post(&format!("/v1/tenants/acme/agents/{agent}/tokens"), &admin, json!({})).await.0, 201);
    // Wrong tokens are secrets too: they may be real ones mistyped.
    assert_eq!(s.get("/v1/tenants/acme/agents", &format!("{admin}x")).await.0, 401);
    assert_eq!(s.get("/v1/agent", &token).await.0, 401);
    let logs = s.logs();
    // Every request is logged (at info), so the scan has lines to look through.
    assert!(logs.matches(r#""message":"request""#).count() >= 6, "{logs}");
    assert!(logs.contains("/v1/tenants/{tenant}/agents/{agent}/tokens"), "{logs}");
    // The operator token, the admin token, the agent's first and rotated tokens, the
    // garbled one, and the root key and TLS key in their forms.
    assert!(s.secrets().len() >= 5 + 7 + 3, "{}", s.secrets().len());
    assert!(!logs.contains(OPERATOR) && !logs.contains(&admin) && !logs.contains(&token));
    s.stop();
}

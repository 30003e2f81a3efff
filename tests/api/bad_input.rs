//! Bad input never yields a 5xx or a panic: always a 4xx problem+json.

use serde_json::json;

use crate::helpers::{OPERATOR, Server};

#[tokio::test]
async fn malformed_requests_get_clear_4xx_problems() {
    let s = Server::start().await;
    let admin = s.tenant("acme").await;
    let raw = |method: &str, path: &str, ct: Option<&str>, body: Vec<u8>, token: &str| {
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut rb = s.client.request(m, s.url(path)).bearer_auth(token).body(body);
        if let Some(ct) = ct {
            rb = rb.header("content-type", ct);
        }
        rb.send()
    };
    type Case<'a> = (&'a str, &'a str, Option<&'a str>, Vec<u8>, u16);
    let cases: Vec<Case> = vec![
        ("POST", "/v1/tenants/acme/agents", Some("application/json"), b"{not json".to_vec(), 400),
        ("POST", "/v1/tenants/acme/agents", Some("application/json"), br#"{"name": 42}"#.to_vec(), 400),
        ("POST", "/v1/tenants/acme/agents", Some("application/json"), br#"{"name": "x", "nmae": "y"}"#.to_vec(), 400),
        ("POST", "/v1/tenants/acme/agents", Some("application/json"), br#"{"name": "x", "metadata": [1]}"#.to_vec(), 400),
        ("POST", "/v1/tenants/acme/agents", Some("application/json"), b"".to_vec(), 400),
        ("POST", "/v1/tenants/acme/agents", Some("text/plain"), br#"{"name": "x"}"#.to_vec(), 415),
        ("POST", "/v1/tenants/acme/agents", Some("application/json"), vec![b' '; 300 * 1024], 413),
        ("POST", "/v1/tenants/acme/agents", Some("application/json"), br#"{"name": ""}"#.to_vec(), 400),
        ("POST", "/v1/tenants/acme/agents", Some("application/json"), format!(r#"{{"name": "{}"}}"#, "n".repeat(500)).into_bytes(), 400),
        ("POST", "/v1/tenants/acme/agents", Some("application/json"), br#"{"name": "a\u0000b"}"#.to_vec(), 400),
        ("POST", "/v1/tenants/acme/tokens", Some("application/json"), br#"{"role": "operator"}"#.to_vec(), 400),
        (
            "POST",
            "/v1/tenants/acme/agents/0123456789abcdef01234567/tokens",
            Some("application/json"),
            br#"{"expires_in": -5}"#.to_vec(),
            400,
        ),
        ("POST", "/v1/tenants/acme/agents/0123456789abcdef01234567/tokens", Some("application/json"), br#"{"expres_in": 5}"#.to_vec(), 400),
        ("GET", "/v1/tenants/acme/agents?limit=abc", None, vec![], 400),
        ("GET", "/v1/tenants/acme/agents?limit=5&bogus=1", None, vec![], 400),
        ("GET", "/v1/tenants/acme/agents?cursor=..%2f", None, vec![], 400),
        ("GET", "/v1/tenants/..%2f/agents", None, vec![], 404),
        ("GET", "/v1/tenants/acme/agents/..%2f..%2fetc", None, vec![], 404),
        ("GET", "/v1/tenants/acme/agents/%00", None, vec![], 404),
        ("GET", "/v1/tenants/ACME/agents", None, vec![], 404),
        ("GET", "/v1/tenants/acme/agents/0123456789abcdef01234567", None, vec![], 404),
        ("GET", "/v1/nonexistent", None, vec![], 404),
        ("PUT", "/v1/tenants", Some("application/json"), b"{}".to_vec(), 405),
    ];
    for (method, path, ct, body, want) in cases {
        let resp = raw(method, path, ct, body, &admin).await.unwrap_or_else(|e| panic!("{method} {path}: {e:?}"));
        let status = resp.status().as_u16();
        let ctype = resp.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned());
        let text = resp.text().await.unwrap();
        assert_eq!(status, want, "{method} {path}: {text}");
        assert_eq!(ctype.as_deref(), Some("application/problem+json"), "{method} {path}");
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["status"], want);
        assert!(v["code"].is_string() && v["detail"].is_string() && v["type"].is_string(), "{v}");
    }
    // Operator routes with bad input too.
    let (st, v) = s.post("/v1/tenants", OPERATOR, json!({"id": "../x", "name": "n"})).await;
    assert_eq!(st, 400, "{v}");
    let (st, _) = s.post("/v1/tenants", OPERATOR, json!({"id": "acme", "name": "dup"})).await;
    assert_eq!(st, 409);
    // The server is still healthy after all of that.
    assert_eq!(s.call("GET", "/healthz", None, None).await.0, 200);
}

#[tokio::test]
async fn request_ids_are_echoed_or_generated() {
    let s = Server::start().await;
    let r = s.client.get(s.url("/healthz")).header("x-request-id", "abc-123").send().await.unwrap();
    assert_eq!(r.headers()["x-request-id"], "abc-123");
    let r = s.client.get(s.url("/healthz")).header("x-request-id", "bad id with spaces").send().await.unwrap();
    let id = r.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert!(id.len() >= 16 && !id.contains(' '));
    let r = s.client.get(s.url("/docs/")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("swagger"));
    let r = s.client.get(s.url("/openapi.json")).send().await.unwrap();
    let doc: serde_json::Value = r.json().await.unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
}

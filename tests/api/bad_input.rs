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

/// One HTTP/1.1 exchange on an open TLS connection: the head, a pause (so the server has
/// the head alone and may answer before the body arrives), then the body. Returns the status.
fn exchange(tls: &mut (impl std::io::Read + std::io::Write), head: &str, body: &[u8]) -> u16 {
    tls.write_all(head.as_bytes()).unwrap();
    tls.flush().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(150));
    tls.write_all(body).unwrap();
    tls.flush().unwrap();
    let mut got = Vec::new();
    let mut byte = [0u8; 1];
    while !got.ends_with(b"\r\n\r\n") {
        let n = tls.read(&mut byte).unwrap_or_else(|e| panic!("reading the answer to {head:?}: {e}"));
        assert_eq!(n, 1, "the server closed the connection instead of answering {head:?}");
        got.push(byte[0]);
    }
    let text = String::from_utf8(got).unwrap();
    let length: usize =
        text.lines().find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap())).unwrap_or(0);
    let mut rest = vec![0u8; length];
    tls.read_exact(&mut rest).unwrap();
    text[9..12].parse().unwrap()
}

/// Answers given before a handler reads the body (405, 415, 401, 413-free 404) still reach
/// a client that sends the body after the head, and the connection stays usable: the server
/// reads what the handler left. (actix-http alone closes the connection, and the client can
/// lose the answer; Schemathesis saw that as "EOF occurred in violation of protocol".)
#[tokio::test]
async fn early_answers_reach_clients_that_send_the_body_late() {
    let s = Server::start().await;
    let admin = s.tenant("acme").await;
    let ca = s.data.join("tls/ca.pem");
    let addr = s.listen().to_owned();
    tokio::task::spawn_blocking(move || {
        use rustls_pki_types::pem::PemObject;
        let mut roots = rustls::RootCertStore::empty();
        roots.add(rustls_pki_types::CertificateDer::from_pem_file(&ca).unwrap()).unwrap();
        let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let name = rustls_pki_types::ServerName::try_from("127.0.0.1").unwrap();
        let mut conn = rustls::ClientConnection::new(std::sync::Arc::new(config), name).unwrap();
        let mut sock = std::net::TcpStream::connect(&addr).unwrap();
        sock.set_read_timeout(Some(std::time::Duration::from_secs(20))).unwrap();
        let mut tls = rustls::Stream::new(&mut conn, &mut sock);
        let body = br#"{"name": "late-body-bot"}"#;
        let head = |method: &str, path: &str, ct: &str, token: &str| {
            format!(
                "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nContent-Type: {ct}\r\nContent-Length: {}\r\n\r\n",
                body.len()
            )
        };
        let cases = [
            ("OPTIONS", "/v1/tenants/acme/agents", "application/json", admin.as_str(), 405),
            ("POST", "/v1/tenants/acme/agents", "text/plain", admin.as_str(), 415),
            ("POST", "/v1/tenants/acme/agents", "application/json", "sgl_not-a-real-token", 401),
            ("POST", "/v1/nonexistent", "application/json", admin.as_str(), 404),
            ("POST", "/v1/tenants/acme/agents", "application/json", admin.as_str(), 201),
        ];
        for (method, path, ct, token, want) in cases {
            assert_eq!(exchange(&mut tls, &head(method, path, ct, token), body), want, "{method} {path} ({ct})");
        }
    })
    .await
    .unwrap();
}

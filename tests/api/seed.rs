//! `sigil seed`, the benchmarks' fast seeding path: what it leaves behind is an ordinary
//! store that a server serves as if every agent had been created through the API.

use serde_json::{Value, json};

use crate::helpers::{Opts, Server, bin};

/// Seeds a store in `dir` for a server at `https://127.0.0.1:{port}` (the port is baked
/// into every DID); returns the data directory and the tokens file's contents.
fn seed(dir: &std::path::Path, port: u16) -> (std::path::PathBuf, Value) {
    let data = dir.join("data");
    let tokens_file = dir.join("tokens.json");
    let out = std::process::Command::new(bin())
        .args(["seed", "--tenant", "seeded", "--agents", "7", "--hot", "3", "--public-url", &format!("https://127.0.0.1:{port}")])
        .arg("--data")
        .arg(&data)
        .arg("--tokens-out")
        .arg(&tokens_file)
        .env("SIGIL_LOG", "warn")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["agents"], 7);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&tokens_file).unwrap().permissions().mode() & 0o777, 0o600, "tokens are secrets");
    }
    let tokens: Value = serde_json::from_slice(&std::fs::read(&tokens_file).unwrap()).unwrap();
    assert_eq!(tokens["tenant"], "seeded");
    assert_eq!(tokens["agents"].as_array().unwrap().len(), 3);
    (data, tokens)
}

#[tokio::test]
async fn a_seeded_store_serves_presentations_and_keeps_an_intact_audit_trail() {
    // The seed needs the server's port before the server can bind it, so the port is only
    // known to be free when the test probes it; another process may take it before the
    // server starts. Then the server refuses to start ("cannot listen"), and the test
    // seeds again for another port.
    let mut attempts = Vec::new();
    let (s, tokens, _dir) = loop {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let (data, tokens) = seed(dir.path(), port);
        let opts = Opts { args: vec!["--public-url".into(), format!("https://127.0.0.1:{port}")], ..Default::default() };
        match Server::try_start_in(&data, &format!("127.0.0.1:{port}"), &opts).await {
            Ok(s) => break (s, tokens, dir),
            Err(e) if e.contains("cannot listen on") && attempts.len() < 4 => attempts.push(e),
            Err(e) => panic!("the seeded store did not start: {e}\nearlier attempts: {attempts:?}"),
        }
    };
    let admin = tokens["admin_token"].as_str().unwrap();
    let (st, page) = s.get("/v1/tenants/seeded/agents?limit=100", admin).await;
    assert_eq!(st, 200);
    assert_eq!(page["items"].as_array().unwrap().len(), 7);

    for (i, a) in tokens["agents"].as_array().unwrap().iter().enumerate() {
        let challenge = format!("seeded-{i}");
        let body = json!({"action": "refunds:create", "resource": "orders/9", "context": {"amount": "499.99", "currency": "EUR"},
                          "challenge": challenge, "domain": "shop.example"});
        let (st, p) = s.post("/v1/presentations", a["token"].as_str().unwrap(), body).await;
        assert_eq!(st, 200, "{p}");
        let check = json!({"presentation": p["presentation"], "challenge": challenge, "domain": "shop.example"});
        let (st, v) = s.call("POST", "/v1/verify", None, Some(check)).await;
        assert_eq!((st, &v["verified"]), (200, &json!(true)), "{v}");
        // The seeded delegation is what the seed says it is: refunds up to 500.00 EUR.
        let over = json!({"action": "refunds:create", "resource": "orders/9", "context": {"amount": "500.01", "currency": "EUR"},
                          "challenge": format!("over-{i}"), "domain": "shop.example"});
        let (st, p) = s.post("/v1/presentations", a["token"].as_str().unwrap(), over).await;
        assert_eq!((st, p["code"].as_str()), (403, Some("amount_exceeds_limit")));
    }
    let (st, v) = s.get("/v1/tenants/seeded/audit/verify", admin).await;
    assert_eq!(st, 200);
    assert_eq!(v["ok"], json!(true), "{v}");
}

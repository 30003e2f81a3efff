//! `sigil seed`, the benchmarks' fast seeding path: what it leaves behind is an ordinary
//! store that a server serves as if every agent had been created through the API.

use serde_json::{Value, json};

use crate::helpers::{Opts, Server, bin};

#[tokio::test]
async fn a_seeded_store_serves_presentations_and_keeps_an_intact_audit_trail() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let tokens_file = dir.path().join("tokens.json");
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("https://127.0.0.1:{port}");
    let out = std::process::Command::new(bin())
        .args(["seed", "--tenant", "seeded", "--agents", "7", "--hot", "3", "--public-url", &url])
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

    let opts = Opts { args: vec!["--public-url".into(), url], ..Default::default() };
    let s = Server::start_in(&data, &format!("127.0.0.1:{port}"), &opts).await;
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

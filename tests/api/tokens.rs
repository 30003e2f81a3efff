//! The operator token: rotation and revocation over the API and on a stopped data
//! directory, and the start-up warning about the generated token file.

use std::path::Path;
use std::process::Output;

use serde_json::Value;

use crate::helpers::{OPERATOR, Opts, Server};

/// `sigil ARGS…` with a clean SIGIL_* environment.
fn sigil(args: &[&str], data: &Path) -> Output {
    let mut cmd = std::process::Command::new(crate::helpers::bin());
    cmd.args(args).arg("--data").arg(data);
    for (k, _) in std::env::vars() {
        if k.starts_with("SIGIL_") {
            cmd.env_remove(k);
        }
    }
    cmd.output().unwrap()
}

async fn rotate(s: &Server, token: &str) -> (u16, Value) {
    s.call("POST", "/v1/system/operator-token/rotate", Some(token), None).await
}

const WARNING: &str = "GENERATED OPERATOR TOKEN FILE IS STILL IN THE DATA DIRECTORY";

/// The WARN lines of the server's logs that say the generated token file is still there.
fn token_file_warnings(s: &Server) -> Vec<String> {
    s.logs().lines().filter(|l| l.contains("\"level\":\"WARN\"") && l.contains(WARNING)).map(str::to_owned).collect()
}

#[tokio::test]
async fn after_operator_token_rotation_the_old_token_gets_401() {
    let s = Server::start().await;
    let admin = s.tenant("acme").await;
    // Used just before, so the server has it cached: the rotation must still end it.
    assert_eq!(s.get("/v1/tenants", OPERATOR).await.0, 200);
    assert_eq!(rotate(&s, &admin).await.0, 403, "a tenant admin is not the operator");
    let (st, v) = rotate(&s, OPERATOR).await;
    assert_eq!((st, v["revoked"].as_u64()), (201, Some(1)), "{v}");
    let new = v["token"].as_str().unwrap().to_owned();
    assert!(new.starts_with("sgl_") && v["token_id"].is_string());
    let (st, p) = s.get("/v1/tenants", OPERATOR).await;
    assert_eq!((st, p["code"].as_str()), (401, Some("not_authenticated")), "the old operator token still works");
    assert_eq!(s.get("/v1/tenants", &new).await.0, 200);
    assert_eq!(s.get("/v1/tenants/acme/agents", &admin).await.0, 200, "tenant tokens are not operator tokens");

    // Revocation: every operator token, the caller's included; tenants carry on.
    assert_eq!(s.call("POST", "/v1/system/operator-token/revoke", Some(&admin), None).await.0, 403);
    assert_eq!(s.call("POST", "/v1/system/operator-token/revoke", Some(&new), None).await.0, 204);
    assert_eq!(s.get("/v1/tenants", &new).await.0, 401);
    assert_eq!(rotate(&s, &new).await.0, 401);
    assert_eq!(s.get("/v1/tenants/acme/agents", &admin).await.0, 200);
}

/// With the server stopped, whoever holds the root key replaces or revokes the operator
/// token; the generated token file goes with the token it held.
#[tokio::test]
async fn the_operator_token_is_rotated_and_revoked_offline() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let generated_opts = Opts { env: vec![], args: vec![] };
    let mut s = Server::start_in(&data, "127.0.0.1:0", &generated_opts).await;
    let generated = std::fs::read_to_string(data.join("operator.token")).unwrap();
    assert_eq!(s.get("/v1/tenants", &generated).await.0, 200);
    assert!(token_file_warnings(&s).is_empty(), "the development default (generated root key) is no warning");
    let out = dir.path().join("operator.token.new");
    let out_s = out.to_str().unwrap();
    // Not while the server holds the store.
    let busy = sigil(&["operator-token", "rotate", "--out", out_s], &data);
    assert!(!busy.status.success() && !out.exists(), "{}", String::from_utf8_lossy(&busy.stderr));
    assert_eq!(s.get("/v1/tenants", &generated).await.0, 200);
    s.stop();

    let done = sigil(&["operator-token", "rotate", "--out", out_s], &data);
    let said = String::from_utf8_lossy(&done.stdout).into_owned();
    assert!(done.status.success(), "{said} {}", String::from_utf8_lossy(&done.stderr));
    assert!(said.contains("1 earlier token(s) revoked"), "{said}");
    let new = std::fs::read_to_string(&out).unwrap();
    assert!(!said.contains(&new) && !String::from_utf8_lossy(&done.stderr).contains(&new), "the token was printed");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&out).unwrap().permissions().mode() & 0o777, 0o600);
    }
    assert!(!data.join("operator.token").exists(), "the generated file still holds a (revoked) token");

    let mut s = Server::start_in(&data, "127.0.0.1:0", &generated_opts).await;
    s.secrets().add(&generated);
    s.secrets().add(&new);
    assert_eq!(s.get("/v1/tenants", &generated).await.0, 401);
    assert_eq!(s.get("/v1/tenants", &new).await.0, 200);
    s.stop();

    let done = sigil(&["operator-token", "revoke"], &data);
    assert!(done.status.success(), "{}", String::from_utf8_lossy(&done.stderr));
    assert!(String::from_utf8_lossy(&done.stdout).contains("1 operator token(s) revoked"));
    let s = Server::start_in(&data, "127.0.0.1:0", &generated_opts).await;
    s.secrets().add(&new);
    assert_eq!(s.get("/v1/tenants", &new).await.0, 401);
    drop(s);
    let empty = tempfile::tempdir().unwrap();
    let refused = sigil(&["operator-token", "revoke"], empty.path());
    assert_eq!(refused.status.code(), Some(2), "{}", String::from_utf8_lossy(&refused.stderr));
}

/// A store whose root key is kept elsewhere has left development: the generated operator
/// token file in its data directory is a working credential in every copy of it.
#[tokio::test]
async fn a_configured_root_key_beside_the_generated_operator_token_warns() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let key = dir.path().join("root.key");
    std::fs::write(&key, rand::random::<[u8; 32]>()).unwrap();
    let opts = Opts { env: vec![], args: vec!["--root-key-file".into(), key.to_str().unwrap().into()] };
    let mut s = Server::start_in(&data, "127.0.0.1:0", &opts).await;
    let warnings = token_file_warnings(&s);
    assert_eq!(warnings.len(), 1, "no loud warning about the generated token file: {}", s.logs());
    assert!(warnings[0].contains("operator.token"), "{}", warnings[0]);
    let generated = std::fs::read_to_string(data.join("operator.token")).unwrap();
    let (st, v) = rotate(&s, &generated).await;
    assert_eq!(st, 201, "{v}");
    assert!(!data.join("operator.token").exists());
    s.stop();
    let s = Server::start_in(&data, "127.0.0.1:0", &opts).await;
    s.secrets().add(&generated);
    assert!(token_file_warnings(&s).is_empty(), "warned although the file is gone");
    assert_eq!(s.get("/v1/tenants", v["token"].as_str().unwrap()).await.0, 200);
}

//! Nothing readable at rest: marker strings in every user-supplied field never appear in
//! any file of the data directory, nor does the root key.

use serde_json::json;

use crate::helpers::{OPERATOR, Opts, Server, snapshot};

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test]
async fn no_marker_or_key_appears_in_the_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("root.key");
    let key_bytes: Vec<u8> = (0..32u8).map(|i| i.wrapping_mul(37).wrapping_add(11)).collect();
    std::fs::write(&key, &key_bytes).unwrap();
    let data = dir.path().join("data");
    let opts = Opts { args: vec!["--root-key-file".into(), key.display().to_string()], ..Default::default() };
    let mut s = Server::start_in(&data, "127.0.0.1:0", &opts).await;
    let (st, t) = s.post("/v1/tenants", OPERATOR, json!({"id": "marker-co", "name": "MARKER_TENANT_NAME_7f3a"})).await;
    assert_eq!(st, 201);
    let admin = t["admin_token"].as_str().unwrap().to_owned();
    let (st, a) = s
        .post(
            "/v1/tenants/marker-co/agents",
            &admin,
            json!({"name": "MARKER_AGENT_NAME_91c2", "operator": "MARKER_OPERATOR_55d0", "software": "MARKER_SOFTWARE_0b1e",
                   "metadata": {"MARKER_META_KEY_aa11": "MARKER_META_VALUE_bb22"}}),
        )
        .await;
    assert_eq!(st, 201);
    let agent_token = a["access_token"].as_str().unwrap().to_owned();
    s.stop();
    let files = snapshot(&data);
    assert!(!files.is_empty());
    let markers = [
        "MARKER_TENANT_NAME_7f3a",
        "MARKER_AGENT_NAME_91c2",
        "MARKER_OPERATOR_55d0",
        "MARKER_SOFTWARE_0b1e",
        "MARKER_META_KEY_aa11",
        "MARKER_META_VALUE_bb22",
    ];
    for (path, bytes) in &files {
        for m in markers {
            assert!(!contains(bytes, m.as_bytes()), "{m} found in {}", path.display());
        }
        assert!(!contains(bytes, &key_bytes), "root key found in {}", path.display());
        for t in [&admin, &agent_token, &OPERATOR.to_owned()] {
            assert!(!contains(bytes, t.as_bytes()), "a token found in {}", path.display());
        }
    }
}

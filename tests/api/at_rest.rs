//! Nothing readable at rest: marker strings in every user-supplied field (tenant, agent,
//! delegation) and the amount a delegation spent today never appear in any file of the
//! data directory, nor do the root key, the tenant data keys, the token pepper, private
//! keys or tokens. On PostgreSQL the same holds for what the database holds: `pg_dump`'s
//! output (where bytea is hex, so each secret is searched for in hex as well) and every
//! row's raw bytes.
//!
//! Records of 200 bytes or more are deflated before they are sealed (`service::sealed`),
//! so a plain search would find nothing even if sealing stored the deflated plaintext.
//! Every file is therefore also inflated from every offset where a raw deflate stream
//! could start (which covers zlib and gzip streams too: their deflate data starts two
//! and ten bytes in), and the output searched again.

use serde_json::json;
use sigil::store::Store;

use crate::helpers::{OPERATOR, Opts, Server, pg, snapshot};

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// The bytes of every deflate stream that could start in `bytes`, each as far as it
/// inflates (up to 1 MiB), with the offset it starts at. Random bytes rarely inflate
/// past a few bytes; streams shorter than `min` are skipped.
fn inflated_regions(bytes: &[u8], min: usize) -> Vec<(usize, Vec<u8>)> {
    use flate2::{Decompress, FlushDecompress, Status};
    let mut d = Decompress::new(false);
    let mut out = Vec::with_capacity(1 << 20);
    let mut found = Vec::new();
    for start in 0..bytes.len() {
        // Block type 3 is reserved: no stream starts with it.
        if (bytes[start] >> 1) & 3 == 3 {
            continue;
        }
        d.reset(false);
        out.clear();
        let input = &bytes[start..];
        loop {
            let (read, written) = (d.total_in() as usize, out.len());
            match d.decompress_vec(&input[read..], &mut out, FlushDecompress::Finish) {
                Ok(Status::Ok) if out.len() < out.capacity() && (d.total_in() as usize, out.len()) != (read, written) => {}
                _ => break,
            }
        }
        if out.len() >= min {
            found.push((start, out.clone()));
        }
    }
    found
}

/// Opens an AES-256-GCM blob (`version | key_version | nonce | ciphertext+tag`) whose AAD
/// is `aad` followed by `/{key_version}`, as `crypto::envelope` lays it out.
fn open_blob(key: &[u8], aad: &str, blob: &[u8]) -> Vec<u8> {
    use aes_gcm::aead::{Aead, KeyInit, Payload};
    let version = sigil::crypto::blob_key_version(blob).unwrap();
    let aad = format!("{aad}/{version}");
    let cipher = aes_gcm::Aes256Gcm::new_from_slice(key).unwrap();
    cipher
        .decrypt(aes_gcm::Nonce::from_slice(&blob[5..17]), Payload { msg: &blob[17..], aad: aad.as_bytes() })
        .unwrap_or_else(|_| panic!("cannot open the blob bound to {aad}"))
}

/// The key material at rest, unwrapped with the root key: the token pepper, each data key
/// of `tenant`, and every private key (issuer, audit, agents) sealed under them.
async fn unwrapped_keys(store: &dyn Store, root: &[u8], tenant: &str) -> Vec<(String, Vec<u8>)> {
    let mut keys = Vec::new();
    for (k, blob) in store.scan(b"meta/pepper/", None, 100).await.unwrap() {
        keys.push((String::from_utf8_lossy(&k).into_owned(), open_blob(root, "sigil/v1/_system/pepper/tokens", &blob)));
    }
    let mut data_keys = Vec::new();
    for (k, blob) in store.scan(format!("dk/{tenant}/").as_bytes(), None, 100).await.unwrap() {
        let v = u32::from_str_radix(std::str::from_utf8(k.rsplit(|b| *b == b'/').next().unwrap()).unwrap(), 16).unwrap();
        let dk = open_blob(root, &format!("sigil/v1/{tenant}/data-key/{v}"), &blob);
        keys.push((format!("data key {v}"), dk.clone()));
        data_keys.push((v, dk));
    }
    for (k, blob) in store.scan(format!("t/{tenant}/k/").as_bytes(), None, 1000).await.unwrap() {
        let name = String::from_utf8(k).unwrap();
        let mut parts = name.rsplitn(3, '/');
        let version = u32::from_str_radix(parts.next().unwrap(), 16).unwrap();
        let owner = parts.next().unwrap();
        let dk = &data_keys.iter().find(|(v, _)| *v == sigil::crypto::blob_key_version(&blob).unwrap()).unwrap().1;
        keys.push((name.clone(), open_blob(dk, &format!("sigil/v1/{tenant}/private-key/{owner}/{version}"), &blob)));
    }
    keys
}

/// What a server leaves at rest after the markers went in: the tokens it handed out.
async fn leave_markers(data: &std::path::Path, opts: &Opts) -> Vec<String> {
    let mut s = Server::start_in(data, "127.0.0.1:0", opts).await;
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
    let agent = a["id"].as_str().unwrap().to_owned();
    let agent_token = a["access_token"].as_str().unwrap().to_owned();
    let (st, d) = s
        .post(
            &format!("/v1/tenants/marker-co/agents/{agent}/delegations"),
            &admin,
            json!({
                "principal": {"id": "marker_principal_c3d4@acme.example", "kind": "person", "name": "MARKER_PRINCIPAL_NAME_e5f6"},
                "actions": ["refunds:create"],
                "resources": ["marker_resource_8a9b/*"],
                "limits": {"amount": {"max": "999.00", "currency": "EUR", "per_day": "5000.00"}},
                "valid_until": "2099-01-01T00:00:00Z"
            }),
        )
        .await;
    assert_eq!(st, 201, "{d}");
    // A spend against the daily limit: the day's counter holds the amount (sealed).
    let (st, p) = s
        .post(
            "/v1/presentations",
            &agent_token,
            json!({"action": "refunds:create", "resource": "marker_resource_8a9b/1", "context": {"amount": "987.65", "currency": "EUR"},
                   "challenge": "c-at-rest", "domain": "at-rest.example"}),
        )
        .await;
    assert_eq!(st, 200, "{p}");
    s.stop();
    vec![admin, agent_token, OPERATOR.to_owned()]
}

/// Every marker, the root key, the tokens, and each key `store` holds (unwrapped).
async fn secrets_at_rest(store: &dyn Store, key_bytes: &[u8], tokens: &[String]) -> Vec<(String, Vec<u8>)> {
    let markers = [
        "MARKER_TENANT_NAME_7f3a",
        "MARKER_AGENT_NAME_91c2",
        "MARKER_OPERATOR_55d0",
        "MARKER_SOFTWARE_0b1e",
        "MARKER_META_KEY_aa11",
        "MARKER_META_VALUE_bb22",
        "marker_principal_c3d4@acme.example",
        "MARKER_PRINCIPAL_NAME_e5f6",
        "marker_resource_8a9b/*",
        // The day's spend under the daily limit (a budget counter).
        "987.65",
    ];
    let mut secrets: Vec<(String, Vec<u8>)> = markers.iter().map(|m| (m.to_string(), m.as_bytes().to_vec())).collect();
    secrets.push(("the root key".into(), key_bytes.to_vec()));
    for t in tokens {
        secrets.push((format!("a token ({}…)", &t[..6]), t.as_bytes().to_vec()));
    }
    let keys = unwrapped_keys(store, key_bytes, "marker-co").await;
    let kinds = |p: &str| keys.iter().filter(|(n, _)| n.contains(p)).count();
    assert_eq!((kinds("meta/pepper/"), kinds("data key"), kinds("/k/")), (1, 1, 3), "pepper, data key, issuer/audit/agent keys");
    for (name, k) in keys {
        assert_eq!(k.len(), 32, "{name}");
        secrets.push((name, k));
    }
    secrets
}

/// Every finding of a secret in `files` (named byte strings), as they are and inflated
/// from every offset, so that a failure shows all that leaked, not just the first.
fn findings(files: &[(String, Vec<u8>)], secrets: &[(String, Vec<u8>)]) -> (std::collections::BTreeSet<String>, usize) {
    let mut found = std::collections::BTreeSet::new();
    let mut inflated = 0;
    for (file, bytes) in files {
        for (what, secret) in secrets {
            if contains(bytes, secret) {
                found.insert(format!("{what} in {file}"));
            }
        }
        for (at, plain) in inflated_regions(bytes, 16) {
            inflated += 1;
            for (what, secret) in secrets {
                if contains(&plain, secret) {
                    found.insert(format!("{what} deflated in {file} (a stream at offset {at})"));
                }
            }
        }
    }
    (found, inflated)
}

fn root_key_file(dir: &std::path::Path) -> (std::path::PathBuf, Vec<u8>) {
    let key = dir.join("root.key");
    let key_bytes: Vec<u8> = (0..32u8).map(|i| i.wrapping_mul(37).wrapping_add(11)).collect();
    std::fs::write(&key, &key_bytes).unwrap();
    (key, key_bytes)
}

#[tokio::test]
async fn no_marker_or_key_appears_in_the_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let (key, key_bytes) = root_key_file(dir.path());
    let data = dir.path().join("data");
    // Always sled: the data directory is what this test reads.
    let opts =
        Opts { args: vec!["--root-key-file".into(), key.display().to_string(), "--store".into(), "sled".into()], ..Default::default() };
    let tokens = leave_markers(&data, &opts).await;
    let files = snapshot(&data);
    assert!(!files.is_empty());
    // Key material is found through the store (after the snapshot: opening it may write).
    let store = sigil::store::SledStore::open(&data.join("store")).unwrap();
    let secrets = secrets_at_rest(&store, &key_bytes, &tokens).await;
    drop(store);
    let files: Vec<(String, Vec<u8>)> = files.into_iter().map(|(p, b)| (p.strip_prefix(&data).unwrap().display().to_string(), b)).collect();
    let (found, inflated) = findings(&files, &secrets);
    assert!(found.is_empty(), "readable at rest ({inflated} regions inflated):\n{}", found.into_iter().collect::<Vec<_>>().join("\n"));
}

/// The same on PostgreSQL: nothing readable in `pg_dump`'s output (searched as it is and
/// with every secret in hex, bytea's text form), in any row's raw bytes, or in the data
/// directory the node keeps beside the database.
#[tokio::test]
async fn no_marker_or_key_appears_in_the_database() {
    let Some(url) = pg::database("no_marker_or_key_appears_in_the_database") else { return };
    let dir = tempfile::tempdir().unwrap();
    let (key, key_bytes) = root_key_file(dir.path());
    let data = dir.path().join("data");
    let opts =
        Opts { args: vec!["--root-key-file".into(), key.display().to_string(), "--store".into(), url.clone()], ..Default::default() };
    let tokens = leave_markers(&data, &opts).await;
    let dump = std::process::Command::new(pg::bin_dir().join("pg_dump")).arg("--dbname").arg(&url).output().unwrap();
    assert!(dump.status.success(), "pg_dump failed: {}", String::from_utf8_lossy(&dump.stderr));
    let dump = dump.stdout;
    assert!(contains(&dump, b"sigil_kv") && contains(&dump, b"sigil_keycheck"), "the dump holds the tables");
    let store = sigil::store::PgStore::open(&sigil::store::PgOptions::new(url)).await.unwrap();
    let secrets = secrets_at_rest(&store, &key_bytes, &tokens).await;
    let rows: Vec<u8> = store.scan(b"", None, usize::MAX).await.unwrap().into_iter().flat_map(|(k, v)| [k, v].concat()).collect();
    let keycheck = store.read_key_check().await.unwrap().expect("the key check is in the database");
    assert!(!rows.is_empty());
    let mut files =
        vec![("pg_dump output".to_owned(), dump.clone()), ("sigil_kv rows".to_owned(), rows), ("sigil_keycheck".to_owned(), keycheck)];
    files.extend(snapshot(&data).into_iter().map(|(p, b)| (format!("data dir {}", p.strip_prefix(&data).unwrap().display()), b)));
    let (mut found, inflated) = findings(&files, &secrets);
    let dump_text = String::from_utf8_lossy(&dump).to_ascii_lowercase();
    for (what, secret) in &secrets {
        if dump_text.contains(&hex::encode(secret)) {
            found.insert(format!("{what} in pg_dump output, in hex"));
        }
    }
    assert!(
        found.is_empty(),
        "readable in the database ({inflated} regions inflated):\n{}",
        found.into_iter().collect::<Vec<_>>().join("\n")
    );
}

/// A record replaced with its older sealed copy is refused. A delegation and its day's
/// spend are copied from the stopped server's store; the delegation is then revoked and
/// more is spent; the copies are written back while the server is stopped again. The
/// restarted server refuses both records instead of opening them: the revocation is not
/// undone (no presentation is signed under the delegation) and the spend is not reset.
#[tokio::test]
async fn a_record_replaced_with_its_older_sealed_copy_is_refused() {
    use std::sync::{Arc, Mutex};

    use sigil::store::{Txn, keys};

    let s = Server::start().await;
    let admin = s.tenant("acme").await;
    let (agent, token, _) = s.agent("acme", &admin, "bot").await;
    let body = json!({"principal": {"id": "alice", "kind": "person"}, "actions": ["refunds:create"], "resources": ["orders/*"],
        "limits": {"amount": {"max": "100.00", "currency": "EUR", "per_day": "100.00"}}, "valid_until": "2099-01-01T00:00:00Z"});
    let (st, d) = s.post(&format!("/v1/tenants/acme/agents/{agent}/delegations"), &admin, body).await;
    assert_eq!(st, 201, "{d}");
    let credential = d["id"].as_str().unwrap().to_owned();
    let spend = |amount: &str, challenge: &str| {
        let mut b = crate::presentations::refund(challenge);
        b["context"]["amount"] = amount.into();
        b
    };
    assert_eq!(s.post("/v1/presentations", &token, spend("60.00", "c1")).await.0, 200);

    let copied = Arc::new(Mutex::new(Vec::new()));
    let (out, key) = (copied.clone(), keys::credential("acme", &credential));
    let s = s
        .edit_at_rest(|store| async move {
            let mut rows = store.scan(b"t/acme/bd/", None, 10).await.unwrap();
            assert_eq!(rows.len(), 1, "one day's spend");
            rows.push((key.clone(), store.get(&key).await.unwrap().unwrap()));
            *out.lock().unwrap() = rows;
        })
        .await;
    assert_eq!(s.post("/v1/presentations", &token, spend("30.00", "c2")).await.0, 200);
    let (st, c) = s.post(&format!("/v1/tenants/acme/credentials/{credential}/revoke"), &admin, json!({})).await;
    assert_eq!((st, c["status"].as_str()), (200, Some("revoked")), "{c}");
    assert_eq!(s.post("/v1/presentations", &token, spend("1.00", "c3")).await.0, 403);

    let rows = copied.lock().unwrap().clone();
    let s = s
        .edit_at_rest(|store| async move {
            let mut txn = Txn::new();
            for (k, v) in rows {
                txn.put(k, v);
            }
            store.commit(txn).await.unwrap();
        })
        .await;
    let (st, v) = s.get(&format!("/v1/tenants/acme/credentials/{credential}"), &admin).await;
    assert_eq!(st, 500, "the revoked delegation's older copy was opened: {v}");
    let (st, v) = s.post("/v1/presentations", &token, spend("1.00", "c4")).await;
    assert_eq!(st, 500, "a presentation was answered over an older copy of its delegation: {v}");
    assert!(s.logs().contains("is not the one its manifest names"), "the refusal is logged");
    // Records nobody wrote back open as before.
    assert_eq!(s.get(&format!("/v1/tenants/acme/agents/{agent}"), &admin).await.0, 200);
}

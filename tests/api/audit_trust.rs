//! The audit trail checked from outside the server: an export re-signed by someone else's
//! key, entries cut from the end of the stored trail, and a store rolled back behind a
//! watcher's back (`sigil audit watch`).

use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};

use sigil::audit::{CHECKPOINT_EVENT, Checkpoint, Entry, GENESIS};
use sigil::crypto::Signer;
use sigil::store::{Store, Txn, keys};

use crate::audit::{export_lines, setup};
use crate::helpers::{Server, bin};
use crate::presentations::refund;

async fn export(s: &Server, auditor: &str) -> Vec<String> {
    let resp = s.client.get(s.url("/v1/tenants/acme/audit/export")).bearer_auth(auditor).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    export_lines(&resp.text().await.unwrap())
}

/// `sigil audit verify` on `lines` with `args`: (exit code, stdout and stderr).
fn cli_verify(dir: &Path, lines: &[String], args: &[&str]) -> (i32, String) {
    let f = dir.join("audit.jsonl");
    std::fs::write(&f, lines.join("\n") + "\n").unwrap();
    let out = Command::new(bin()).args(["audit", "verify"]).arg(&f).args(args).output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.code().unwrap_or(-1), text)
}

/// The export as someone without the tenant's audit key would rewrite it: entry `drop`
/// (0-based) removed, every later entry renumbered and re-linked, every checkpoint re-signed
/// with `forger` naming `key`. Every hash and signature in it is right.
fn forge(lines: &[String], drop: usize, forger: &Signer, key: &str) -> Vec<String> {
    let mut prev = GENESIS.to_owned();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate().filter(|(i, _)| *i != drop) {
        let mut e: Entry = serde_json::from_str(line).unwrap();
        e.seq = out.len() as u64 + 1;
        e.prev = prev.clone();
        if e.event == CHECKPOINT_EVENT {
            let mut cp: Checkpoint = serde_json::from_value(e.details.clone()).unwrap();
            (cp.seq, cp.head, cp.key) = (e.seq - 1, prev.clone(), key.to_owned());
            let input = Checkpoint::signing_input(&cp.tenant, cp.seq, &cp.head, &cp.time, &cp.key);
            cp.signature = multibase::encode(multibase::Base::Base58Btc, forger.sign(&input));
            e.details = serde_json::to_value(cp).unwrap();
        }
        e.hash = e.compute_hash();
        prev = e.hash.clone();
        assert!(i != drop);
        out.push(serde_json::to_string(&e).unwrap());
    }
    out
}

#[tokio::test]
async fn a_forged_export_signed_by_a_foreign_key_fails_the_cli() {
    let s = Server::start().await;
    let (_, auditor, _, token) = setup(&s).await;
    assert_eq!(s.post("/v1/presentations", &token, refund("f1")).await.0, 200);
    let mut denied = refund("f2");
    denied["action"] = "invoices:pay".into();
    assert_eq!(s.post("/v1/presentations", &token, denied).await.0, 403);
    export(&s, &auditor).await;
    let lines = export(&s, &auditor).await;
    // The audit key sits in its own relationship only: it signs no credential or presentation.
    let (_, doc) = s.call("GET", "/tenants/acme/did.json", None, None).await;
    let did = doc["id"].as_str().unwrap().to_owned();
    assert_eq!(doc["auditCheckpoint"], json!([format!("{did}#audit-1")]), "{doc}");
    for rel in ["assertionMethod", "authentication"] {
        assert!(!doc[rel].as_array().unwrap().iter().any(|k| k.as_str().unwrap().contains("#audit-")), "{rel}: {doc}");
    }
    assert_eq!(doc["@context"][2], s.url("/ns/v1"), "the context that defines auditCheckpoint");
    let (_, ctx) = s.call("GET", "/ns/v1", None, None).await;
    assert_eq!(ctx["@context"]["auditCheckpoint"]["@id"], "sigil:auditCheckpoint");

    let dir = tempfile::tempdir().unwrap();
    let pinned = dir.path().join("acme-did.json");
    std::fs::write(&pinned, serde_json::to_vec(&doc).unwrap()).unwrap();
    let ca = s.data.join("tls/ca.pem");
    let trusted: Vec<String> = vec![
        "--trust-tenant".into(),
        s.url("/tenants/acme"),
        "--ca".into(),
        ca.display().to_string(),
        "--resolver-allow".into(),
        s.listen().into(),
    ];
    let trusted: Vec<&str> = trusted.iter().map(String::as_str).collect();
    let pinned_args = ["--did-document", pinned.to_str().unwrap()];
    for args in [&trusted[..], &pinned_args[..]] {
        let (code, out) = cli_verify(dir.path(), &lines, args);
        assert_eq!(code, 0, "the genuine export verifies: {out}");
    }

    // The denial cut out, the rest re-chained, the checkpoints re-signed: with the forger's
    // own did:key, or a look-alike did:web naming the same tenant.
    let forger = Signer::generate();
    let mb = sigil::vc::multikey::encode(&forger.public());
    let denial = lines.iter().position(|l| l.contains("presentation.denied")).unwrap();
    for key in [format!("did:key:{mb}#{mb}"), "did:web:evil.example:tenants:acme#audit-1".to_owned()] {
        let forged = forge(&lines, denial, &forger, &key);
        for args in [&trusted[..], &pinned_args[..]] {
            let (code, out) = cli_verify(dir.path(), &forged, args);
            assert_eq!(code, 1, "{key} {args:?}: {out}");
            assert!(out.contains(&format!("is not an audit key of {did}")), "{key}: {out}");
        }
        // With nothing to anchor the keys, the CLI refuses to judge (a usage error), rather
        // than take the export's own word for them.
        let (code, out) = cli_verify(dir.path(), &forged, &["--ca", ca.to_str().unwrap(), "--resolver-allow", s.listen()]);
        assert!(code == 2 && !out.contains("ok:"), "{out}");
    }

    // A document pinned for another tenant does not vouch for this tenant's export.
    s.tenant("other").await;
    let (_, other) = s.call("GET", "/tenants/other/did.json", None, None).await;
    std::fs::write(&pinned, serde_json::to_vec(&other).unwrap()).unwrap();
    let (code, out) = cli_verify(dir.path(), &lines, &pinned_args);
    assert!(code == 1 && out.contains("not of the tenant of the DID document"), "{out}");
    let mut other_url = trusted.clone();
    let url = s.url("/tenants/other");
    other_url[1] = &url;
    let (code, out) = cli_verify(dir.path(), &lines, &other_url);
    assert!(code == 1 && out.contains("not of the tenant of the DID document"), "{out}");
}

#[tokio::test]
async fn cutting_the_last_entries_and_rewriting_the_head_is_reported() {
    let s = Server::start().await;
    let (_, auditor, _, token) = setup(&s).await;
    for i in 0..4 {
        assert_eq!(s.post("/v1/presentations", &token, refund(&format!("t{i}"))).await.0, 200);
    }
    let (_, v) = s.get("/v1/tenants/acme/audit/verify", &auditor).await;
    assert_eq!(v["ok"], true, "{v}");
    let (_, page) = s.get("/v1/tenants/acme/audit?limit=500", &auditor).await;
    let items = page["items"].as_array().unwrap();
    let n = items.len() as u64;
    let (keep, keep_hash) = (n - 2, items[n as usize - 3]["hash"].as_str().unwrap().to_owned());

    // The last two entries deleted at rest, the head left alone.
    let mut s = s
        .edit_store_in_place(|store| async move {
            let mut txn = Txn::new();
            txn.delete(keys::audit_entry("acme", n)).delete(keys::audit_entry("acme", n - 1));
            store.commit(txn).await.unwrap();
        })
        .await;
    let (_, v) = s.get("/v1/tenants/acme/audit/verify", &auditor).await;
    assert_eq!((v["ok"].as_bool(), v["first_bad"]["seq"].as_u64()), (Some(false), Some(keep + 1)), "{v}");
    assert!(v["first_bad"]["reason"].as_str().unwrap().contains("missing"), "{v}");

    // And the head rewritten to name the new last entry, in the format it had before it
    // was authenticated, or with a made-up keyed hash.
    for head in [format!("{keep}:{keep_hash}"), format!("{keep}:{keep_hash}:{}", "0".repeat(64))] {
        s = s
            .edit_store_in_place(|store| async move {
                let mut txn = Txn::new();
                txn.put(keys::audit_head("acme"), head.into_bytes());
                store.commit(txn).await.unwrap();
            })
            .await;
        let (_, v) = s.get("/v1/tenants/acme/audit/verify", &auditor).await;
        assert_eq!((v["ok"].as_bool(), v["first_bad"]["seq"].as_u64()), (Some(false), Some(keep + 1)), "{v}");
        assert!(v["first_bad"]["reason"].as_str().unwrap().contains("does not authenticate"), "{v}");
        // Nothing extends a cut chain: no entry, so no signature either.
        let (st, p) = s.post("/v1/presentations", &token, refund("after-cut")).await;
        assert_eq!(st, 500, "{p}");
    }
}

/// `sigil audit watch` on tenant `acme` with the state and token in `dir`.
fn watch(s: &Server, dir: &Path) -> (i32, String) {
    let out = Command::new(bin())
        .args(["audit", "watch", &s.url("/tenants/acme")])
        .arg("--state")
        .arg(dir.join("state.json"))
        .arg("--token-file")
        .arg(dir.join("auditor.token"))
        .arg("--ca")
        .arg(s.data.join("tls/ca.pem"))
        .output()
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.code().unwrap_or(-1), text)
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

async fn present(s: &Server, token: &str, tag: &str, n: usize) {
    for i in 0..n {
        assert_eq!(s.post("/v1/presentations", token, refund(&format!("{tag}{i}"))).await.0, 200);
    }
}

async fn published(s: &Server) -> Checkpoint {
    let (st, cp) = s.call("GET", "/tenants/acme/audit/checkpoint", None, None).await;
    assert_eq!(st, 200, "{cp}");
    serde_json::from_value(cp).unwrap()
}

#[tokio::test]
async fn a_watcher_given_a_rolled_back_checkpoint_fails() {
    let s = Server::start().await;
    let (_, auditor, _, token) = setup(&s).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("auditor.token"), &auditor).unwrap();
    let state = dir.path().join("state.json");
    let (st, p) = s.call("GET", "/tenants/acme/audit/checkpoint", None, None).await;
    assert_eq!((st, p["code"].as_str()), (404, Some("checkpoint_not_found")));

    present(&s, &token, "a", 2).await;
    let lines = export(&s, &auditor).await;
    let first = published(&s).await;
    assert_eq!(first.seq as usize, lines.len() - 1, "the export's closing checkpoint is the one published");
    let (code, out) = watch(&s, dir.path());
    assert!(code == 0 && out.contains("first checkpoint seen"), "{out}");
    let (code, out) = watch(&s, dir.path());
    assert!(code == 0 && out.contains("no new checkpoint"), "{out}");

    // A copy of the store as it is now, then more history, seen by the watcher.
    let copy = dir.path().join("store-copy");
    let s = s.edit_files_at_rest(|data| copy_dir(&data.join("store"), &copy)).await;
    present(&s, &token, "b", 2).await;
    export(&s, &auditor).await;
    let second = published(&s).await;
    assert!(second.seq > first.seq);
    let (code, out) = watch(&s, dir.path());
    assert!(code == 0 && out.contains(&format!("extends seq {}", first.seq)), "{out}");
    let seen = std::fs::read(&state).unwrap();

    // The store put back from the copy: the server publishes the older checkpoint again.
    let s = s
        .edit_files_at_rest(|data| {
            std::fs::remove_dir_all(data.join("store")).unwrap();
            copy_dir(&copy, &data.join("store"));
        })
        .await;
    assert_eq!(published(&s).await, first);
    let (code, out) = watch(&s, dir.path());
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("FAIL") && out.contains("rolled back"), "{out}");
    assert_eq!(std::fs::read(&state).unwrap(), seen, "a failed check keeps the state it had");

    // The rolled-back server grows past the seq seen: its chain does not extend the old one.
    present(&s, &token, "c", 4).await;
    export(&s, &auditor).await;
    let third = published(&s).await;
    assert!(third.seq > second.seq, "{third:?} {second:?}");
    let (code, out) = watch(&s, dir.path());
    assert!(code == 1 && out.contains("does not extend"), "{out}");

    // Another head at the seq the watcher saw: a fork.
    let mut forked: Value = serde_json::from_slice(&seen).unwrap();
    forked["checkpoint"]["seq"] = third.seq.into();
    std::fs::write(&state, serde_json::to_vec(&forked).unwrap()).unwrap();
    let (code, out) = watch(&s, dir.path());
    assert!(code == 1 && out.contains("forked"), "{out}");
}

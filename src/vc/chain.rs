//! Delegation chains inside credentials. A sub-delegation's `credentialSubject` names its
//! parent (`parentDelegation: {id, digest}`) and its depth (`delegationDepth`); the digest
//! is SHA-256 over the parent's RFC 8785 form without its `proof` (the same bytes whether
//! the parent travels as a Data Integrity credential or as a `vc+jwt`). The tenant's issuer
//! key signs every link, so an agent can neither forge a child nor splice another parent in.
//!
//! [`check_chains`] is what every verifier runs (`/v1/verify`, the CLI, the library): each
//! enclosed delegation that names a parent must find that very parent (id and digest) in
//! the same presentation, issued by the same issuer, and must narrow it by
//! [`crate::policy::narrows`]. Only the leaves (delegations no other names as parent) grant;
//! ancestors are there to be checked, never to grant the holder their wider authority.
//!
//! Must never: accept a link it cannot parse, or let an ancestor's authority reach the
//! action check.

use std::collections::HashMap;

use jiff::Timestamp;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use super::credential::{issuer_id, types};
use super::verify::{Check, Report};
use crate::codes::ErrorCode;
use crate::policy::{Authority, Link, Principal, narrows};

/// The subject member naming the parent delegation.
pub const PARENT: &str = "parentDelegation";
/// The subject member giving the depth below the root (absent at the root).
pub const DEPTH: &str = "delegationDepth";

/// The parent a sub-delegation names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParentRef {
    /// The parent credential's `id` (`urn:uuid:…`).
    pub id: String,
    /// `sha256:` and the hex SHA-256 of the parent's RFC 8785 form without `proof`.
    pub digest: String,
}

/// The digest a child names for `vc` (see the module docs); `None` for a document JCS
/// cannot canonicalize or that is not an object.
pub fn digest(vc: &Value) -> Option<String> {
    let bytes = super::jcs::canonicalize_object(vc.as_object()?, Some("proof")).ok()?;
    Some(format!("sha256:{}", hex::encode(Sha256::digest(bytes))))
}

/// The parent `vc` names, if any.
pub fn parent_of(vc: &Value) -> Option<ParentRef> {
    let p = vc.get("credentialSubject")?.get(PARENT)?;
    Some(ParentRef { id: p.get("id")?.as_str()?.to_owned(), digest: p.get("digest")?.as_str()?.to_owned() })
}

/// Whether `vc`'s subject has a `parentDelegation` member at all (parsable or not).
fn names_parent(vc: &Value) -> bool {
    vc.get("credentialSubject").is_some_and(|s| s.get(PARENT).is_some())
}

/// The depth `vc` states (0 for a root); `None` when it is not a small integer.
pub fn depth_of(vc: &Value) -> Option<u8> {
    match vc.get("credentialSubject").and_then(|s| s.get(DEPTH)) {
        None => Some(0),
        Some(d) => d.as_u64().and_then(|d| u8::try_from(d).ok()).filter(|d| *d > 0),
    }
}

/// Adds the parent link and depth to an unsigned delegation's subject.
pub fn link_subject(doc: &mut Map<String, Value>, parent: &ParentRef, depth: u8) {
    if let Some(Value::Object(s)) = doc.get_mut("credentialSubject") {
        s.insert(PARENT.into(), json!({"id": parent.id, "digest": parent.digest}));
        s.insert(DEPTH.into(), depth.into());
    }
}

/// The record id inside a Sigil credential id (`urn:uuid:<id>`).
pub fn record_id(vc_id: &str) -> &str {
    vc_id.strip_prefix("urn:uuid:").unwrap_or(vc_id)
}

fn time(vc: &Value, k: &str) -> Option<Timestamp> {
    vc.get(k).and_then(Value::as_str).and_then(|s| super::datamodel::parse_date_time_stamp(s).ok())
}

/// A delegation's link view parsed from its credential.
struct Parsed {
    principal: Principal,
    authority: Authority,
    valid_from: Timestamp,
    valid_until: Option<Timestamp>,
    depth: u8,
}

fn parse(vc: &Value) -> Option<Parsed> {
    let s = vc.get("credentialSubject")?;
    Some(Parsed {
        principal: Principal::deserialize(s.get("principal")?).ok()?,
        authority: Authority::deserialize(s.get("authority")?).ok()?,
        valid_from: time(vc, "validFrom").unwrap_or(Timestamp::MIN),
        valid_until: time(vc, "validUntil"),
        depth: depth_of(vc)?,
    })
}

fn link(p: &Parsed) -> Link<'_> {
    Link { principal: &p.principal, authority: &p.authority, valid_from: p.valid_from, valid_until: p.valid_until, depth: p.depth }
}

/// Checks every delegation chain among `creds` (labelled `labels[i]`), adding a check per
/// link to `report`. Answers, per credential, whether it is an ancestor (named as parent by
/// another enclosed delegation): such a credential is bound to the holder through the
/// chain, not its subject, and never grants.
pub fn check_chains(creds: &[&Value], labels: &[String], report: &mut Report) -> Vec<bool> {
    let mut ancestor = vec![false; creds.len()];
    let is_delegation = |v: &Value| types(v).contains(&"DelegatedAuthorityCredential");
    let by_id: HashMap<&str, usize> = creds
        .iter()
        .enumerate()
        .filter(|(_, c)| is_delegation(c))
        .filter_map(|(i, c)| c.get("id").and_then(Value::as_str).map(|id| (id, i)))
        .collect();
    let invalid = ErrorCode::DelegationChainInvalid.as_str();
    for (i, child) in creds.iter().enumerate() {
        if !is_delegation(child) {
            continue;
        }
        let label = labels.get(i).map_or("", String::as_str);
        let check = format!("{label}chain");
        let Some(parent) = parent_of(child) else {
            if names_parent(child) {
                report.push(Check::fail(check, invalid, "parentDelegation must be {id, digest}"));
            } else if depth_of(child) != Some(0) {
                report.push(Check::fail(check, invalid, "a delegation below the root must name its parent"));
            }
            continue;
        };
        let Some(&j) = by_id.get(parent.id.as_str()) else {
            report.push(Check::fail(check, invalid, format!("the parent delegation {} is not in the presentation", parent.id)));
            continue;
        };
        let Some(p) = creds.get(j) else { continue };
        if digest(p).as_deref() != Some(parent.digest.as_str()) {
            report.push(Check::fail(
                check,
                invalid,
                format!("the enclosed {} is not the parent this delegation was issued under (digest differs)", parent.id),
            ));
            continue;
        }
        if issuer_id(p).is_none() || issuer_id(p) != issuer_id(child) {
            report.push(Check::fail(check, invalid, "every link of a delegation chain has the same issuer"));
            continue;
        }
        let (Some(pp), Some(cp)) = (parse(p), parse(child)) else {
            report.push(Check::fail(check, invalid, "a link's principal, authority or depth is not understood"));
            continue;
        };
        match narrows(&link(&pp), &link(&cp)) {
            Ok(()) => {
                if let Some(a) = ancestor.get_mut(j) {
                    *a = true;
                }
                report.push(Check::pass(check, format!("narrows its parent {} (depth {})", parent.id, cp.depth)));
            }
            Err(e) => {
                report.push(Check::fail(check, ErrorCode::DelegationNotNarrower.as_str(), format!("not narrower than its parent: {e}")))
            }
        }
    }
    ancestor
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delegation(id: &str, issuer: &str, resources: &[&str], delegable: bool) -> Value {
        let mut authority = json!({"actions": ["refunds:create"], "resources": resources});
        if delegable {
            authority["delegable"] = json!({"maxDepth": 2});
        }
        json!({"id": id, "type": ["VerifiableCredential", "DelegatedAuthorityCredential"], "issuer": issuer,
               "validFrom": "2026-01-01T00:00:00Z", "validUntil": "2027-01-01T00:00:00Z",
               "credentialSubject": {"id": "did:example:a", "principal": {"identifier": "alice", "kind": "person"}, "authority": authority},
               "proof": {"type": "DataIntegrityProof", "proofValue": "z1"}})
    }

    fn child_of(parent: &Value, issuer: &str, resources: &[&str]) -> Value {
        let mut c = delegation("urn:uuid:child", issuer, resources, false);
        let link = ParentRef { id: parent["id"].as_str().unwrap().to_owned(), digest: digest(parent).unwrap() };
        link_subject(c.as_object_mut().unwrap(), &link, 1);
        c
    }

    fn run(creds: &[&Value]) -> (Vec<bool>, Vec<&'static str>) {
        let labels: Vec<String> = (0..creds.len()).map(|i| format!("credential[{i}].")).collect();
        let mut r = Report::default();
        let ancestors = check_chains(creds, &labels, &mut r);
        (ancestors, r.codes())
    }

    #[test]
    fn links_are_checked_one_by_one() {
        let root = delegation("urn:uuid:root", "did:web:t", &["orders/**"], true);
        let child = child_of(&root, "did:web:t", &["orders/1"]);
        assert_eq!(run(&[&child, &root]), (vec![false, true], vec![]));
        // The digest leaves the proof out: a parent re-secured (say, as a vc+jwt) still links.
        let mut resecured = root.clone();
        resecured.as_object_mut().unwrap().remove("proof");
        assert_eq!(run(&[&child, &resecured]).1, Vec::<&str>::new());
        // Missing, altered, foreign or wider: refused with the chain's codes.
        let invalid = ErrorCode::DelegationChainInvalid.as_str();
        assert_eq!(run(&[&child]).1, vec![invalid]);
        let mut altered = root.clone();
        altered["validUntil"] = "2028-01-01T00:00:00Z".into();
        assert_eq!(run(&[&child, &altered]).1, vec![invalid]);
        let foreign = child_of(&root, "did:web:other", &["orders/1"]);
        assert_eq!(run(&[&foreign, &root]).1, vec![invalid]);
        let wider = child_of(&root, "did:web:t", &["invoices/1"]);
        assert_eq!(run(&[&wider, &root]), (vec![false, false], vec![ErrorCode::DelegationNotNarrower.as_str()]));
        // A depth below the root without a parent, or an unreadable parent link.
        let mut orphan = delegation("urn:uuid:o", "did:web:t", &["orders/1"], false);
        orphan["credentialSubject"][DEPTH] = 1.into();
        assert_eq!(run(&[&orphan]).1, vec![invalid]);
        let mut garbled = child.clone();
        garbled["credentialSubject"][PARENT] = "urn:uuid:root".into();
        assert_eq!(run(&[&garbled, &root]).1, vec![invalid]);
    }
}

//! Sigil's credentials in the VC Data Model 2.0: `AgentIdentityCredential` and
//! `DelegatedAuthorityCredential`. Unsigned documents are built here and secured with
//! [`super::proof`]; every term is defined in Sigil's JSON-LD context (`contexts/`).

use serde_json::{Map, Value, json};

use crate::policy::{Authority, Principal};

/// The VC 2.0 base context.
pub const VC_V2: &str = "https://www.w3.org/ns/credentials/v2";

/// Sigil's JSON-LD context document, shipped in the binary and served at `/ns/v1`.
pub const SIGIL_CONTEXT: &str = include_str!("contexts/sigil-v1.jsonld");

/// Where a deployment serves Sigil's context.
pub fn context_url(public_base: &str) -> String {
    format!("{public_base}/ns/v1")
}

/// The two status entries every Sigil credential carries.
#[derive(Debug, Clone)]
pub struct StatusEntries {
    pub revocation: Value,
    pub suspension: Value,
}

/// Common envelope fields.
#[derive(Debug, Clone)]
pub struct Envelope<'a> {
    pub id: &'a str,
    pub issuer: &'a str,
    pub context_url: &'a str,
    pub valid_from: &'a str,
    pub valid_until: Option<&'a str>,
    pub status: StatusEntries,
}

fn envelope(e: &Envelope<'_>, kind: &str, subject: Value) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("@context".into(), json!([VC_V2, e.context_url]));
    m.insert("id".into(), e.id.into());
    m.insert("type".into(), json!(["VerifiableCredential", kind]));
    m.insert("issuer".into(), e.issuer.into());
    m.insert("validFrom".into(), e.valid_from.into());
    if let Some(u) = e.valid_until {
        m.insert("validUntil".into(), u.into());
    }
    m.insert("credentialSubject".into(), subject);
    m.insert("credentialStatus".into(), json!([e.status.revocation, e.status.suspension]));
    m
}

/// Identity of an agent, issued by its tenant when the agent is created.
#[derive(Debug, Clone)]
pub struct AgentIdentity<'a> {
    pub agent_did: &'a str,
    pub name: &'a str,
    pub operator: Option<&'a str>,
    pub software: Option<&'a str>,
    pub created: &'a str,
}

/// The unsigned `AgentIdentityCredential`.
pub fn identity(e: &Envelope<'_>, a: &AgentIdentity<'_>) -> Map<String, Value> {
    let mut subject = Map::new();
    subject.insert("id".into(), a.agent_did.into());
    subject.insert("type".into(), "Agent".into());
    subject.insert("name".into(), a.name.into());
    if let Some(o) = a.operator {
        subject.insert("operator".into(), o.into());
    }
    if let Some(s) = a.software {
        subject.insert("software".into(), s.into());
    }
    subject.insert("created".into(), a.created.into());
    envelope(e, "AgentIdentityCredential", Value::Object(subject))
}

/// The unsigned `DelegatedAuthorityCredential`.
pub fn delegation(
    e: &Envelope<'_>,
    agent_did: &str,
    principal: &Principal,
    authority: &Authority,
) -> Result<Map<String, Value>, serde_json::Error> {
    let subject = json!({
        "id": agent_did,
        "principal": serde_json::to_value(principal)?,
        "authority": serde_json::to_value(authority)?,
    });
    Ok(envelope(e, "DelegatedAuthorityCredential", subject))
}

/// The `type` list of a credential or presentation.
pub fn types(doc: &Value) -> Vec<&str> {
    match doc.get("type") {
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

/// The issuer id (string or `{id}` object).
pub fn issuer_id(doc: &Value) -> Option<&str> {
    match doc.get("issuer")? {
        Value::String(s) => Some(s),
        Value::Object(o) => o.get("id").and_then(Value::as_str),
        _ => None,
    }
}

/// Subject ids of a credential (one subject or several).
pub fn subject_ids(doc: &Value) -> Vec<&str> {
    match doc.get("credentialSubject") {
        Some(Value::Object(o)) => o.get("id").and_then(Value::as_str).into_iter().collect(),
        Some(Value::Array(a)) => a.iter().filter_map(|s| s.get("id").and_then(Value::as_str)).collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_ships_and_defines_sigil_terms() {
        let ctx: Value = serde_json::from_str(SIGIL_CONTEXT).unwrap();
        let c = &ctx["@context"];
        for t in [
            "AgentIdentityCredential",
            "DelegatedAuthorityCredential",
            "ActionPresentation",
            "Agent",
            "principal",
            "authority",
            "action",
            "auditCheckpoint",
        ] {
            assert!(c.get(t).is_some(), "{t} undefined");
        }
        assert_eq!(c["@protected"], true);
    }
}

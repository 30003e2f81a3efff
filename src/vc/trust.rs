//! Whom a verifier trusts to issue which credentials: the trust policy behind every
//! "verified". A signature only proves who signed; this module decides whether that signer
//! may vouch for the credential. Pure: no I/O, no resolution, only DIDs compared as strings.
//!
//! Owns: [`TrustPolicy`] (rules scoped by credential type, narrowed by a request, never
//! widened), and the holder binding of tenant rules: a credential from a tenant
//! `did:web:HOST:tenants:{t}` is trusted only when it is about an agent of that same tenant
//! (`did:web:HOST:tenants:{t}:agents:{a}`). An agent DID is never a tenant DID, although
//! it shares the tenant's prefix.
//!
//! Must never: trust by default. An empty policy trusts nobody, so a verifier that forgot
//! to configure one gets `issuer_not_trusted`, never `verified`.

use std::fmt;

/// Which issuer a rule covers.
#[derive(Debug, Clone, PartialEq, Eq)]
enum IssuerMatch {
    /// Exactly this DID (any method). No holder binding: the operator vouches for it.
    Did(String),
    /// Every tenant of the deployment whose `did:web` host is this (`host%3Aport`).
    TenantsOf(String),
    /// One tenant of a deployment: (`did:web` host, tenant id).
    Tenant(String, String),
}

/// One trusted issuer, optionally only for some credential types.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustRule {
    issuer: IssuerMatch,
    /// `None`: any credential type. Otherwise every type of the credential other than
    /// `VerifiableCredential` must be listed.
    types: Option<Vec<String>>,
}

impl TrustRule {
    /// Parses `DID` or `DID=Type1,Type2` (the `--trust-issuer` / `--trust` syntax).
    pub fn parse(s: &str) -> Result<Self, String> {
        let (did, types) = match s.split_once('=') {
            Some((d, t)) => {
                let types: Vec<String> = t.split(',').map(str::trim).filter(|t| !t.is_empty()).map(str::to_owned).collect();
                if types.is_empty() {
                    return Err(format!("{s:?}: no credential type after '='"));
                }
                (d.trim(), Some(types))
            }
            None => (s.trim(), None),
        };
        if !valid_did(did) {
            return Err(format!("{did:?} is not a DID (did:web:… or did:key:…)"));
        }
        Ok(Self { issuer: IssuerMatch::Did(did.to_owned()), types })
    }

    fn covers_types(&self, types: &[&str]) -> bool {
        let mut specific = types.iter().filter(|t| **t != "VerifiableCredential").peekable();
        match &self.types {
            None => true,
            // A type-scoped rule covers only credentials that name one of its types, all of
            // whose specific types it lists (a bare VerifiableCredential names none).
            Some(allowed) => specific.peek().is_some() && specific.all(|t| allowed.iter().any(|a| a == t)),
        }
    }
}

fn valid_did(did: &str) -> bool {
    let ok_chars = did.bytes().all(|b| b.is_ascii_alphanumeric() || b":.-_%".contains(&b));
    (did.starts_with("did:web:") || did.starts_with("did:key:")) && did.len() <= 512 && ok_chars && !did.ends_with(':')
}

/// A tenant DID `did:web:{host}:tenants:{t}` split into (host, tenant); `None` for anything
/// else, agent DIDs included.
fn tenant_of_issuer(did: &str) -> Option<(&str, &str)> {
    let rest = did.strip_prefix("did:web:")?;
    let (host, tenant) = rest.split_once(":tenants:")?;
    (!host.is_empty() && !host.contains(':') && crate::ids::TenantId::parse(tenant).is_ok()).then_some((host, tenant))
}

/// An agent DID `did:web:{host}:tenants:{t}:agents:{a}` split into (host, tenant).
fn tenant_of_agent(did: &str) -> Option<(&str, &str)> {
    let rest = did.strip_prefix("did:web:")?;
    let (host, rest) = rest.split_once(":tenants:")?;
    let (tenant, agent) = rest.split_once(":agents:")?;
    let ok = !host.contains(':') && crate::ids::TenantId::parse(tenant).is_ok() && crate::ids::AgentId::parse(agent).is_ok();
    ok.then_some((host, tenant))
}

/// Why an issuer is not trusted (the detail of an `issuer_not_trusted` check).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Untrusted {
    /// The policy has no rule at all.
    NoPolicy,
    /// No rule covers this issuer.
    Issuer(String),
    /// A rule covers the issuer, but not for this credential type.
    Type(String),
    /// A tenant rule covers the issuer, but the credential is about someone outside it.
    Subject(String),
    /// The request narrowed trust to other issuers.
    NarrowedOut(String),
}

impl fmt::Display for Untrusted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoPolicy => f.write_str("no trusted issuer is configured, so nothing can be verified"),
            Self::Issuer(i) => write!(f, "{i} is not a trusted issuer"),
            Self::Type(i) => write!(f, "{i} is not trusted for this credential type"),
            Self::Subject(i) => write!(f, "{i} is trusted only for agents of its own tenant"),
            Self::NarrowedOut(i) => write!(f, "{i} is not among the issuers this request trusts"),
        }
    }
}

/// The issuers a verifier trusts, each for some or all credential types. Empty by default:
/// nothing is trusted until a rule is added.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustPolicy {
    rules: Vec<TrustRule>,
    /// A request's narrowing: only these issuers, and only as far as `rules` allow.
    only: Option<Vec<String>>,
}

impl TrustPolicy {
    /// A policy that trusts nobody.
    pub fn none() -> Self {
        Self::default()
    }

    /// Trusts `did` for every credential type.
    pub fn trust_issuer(mut self, did: impl Into<String>) -> Self {
        self.rules.push(TrustRule { issuer: IssuerMatch::Did(did.into()), types: None });
        self
    }

    /// Trusts `did` only for the listed credential types.
    pub fn trust_issuer_for(mut self, did: impl Into<String>, types: &[&str]) -> Self {
        let types = types.iter().map(|t| (*t).to_owned()).collect();
        self.rules.push(TrustRule { issuer: IssuerMatch::Did(did.into()), types: Some(types) });
        self
    }

    /// Adds a parsed rule (`--trust-issuer`).
    pub fn with_rule(mut self, rule: TrustRule) -> Self {
        self.rules.push(rule);
        self
    }

    /// Trusts every tenant of the Sigil deployment whose `did:web` host is `did_host`
    /// (`host` or `host%3Aport`), each only for agents of its own tenant.
    pub fn trust_tenants_of(mut self, did_host: impl Into<String>) -> Self {
        self.rules.push(TrustRule { issuer: IssuerMatch::TenantsOf(did_host.into()), types: None });
        self
    }

    /// Trusts one tenant of a Sigil deployment, only for agents of that tenant.
    pub fn trust_tenant(mut self, did_host: impl Into<String>, tenant: impl Into<String>) -> Self {
        self.rules.push(TrustRule { issuer: IssuerMatch::Tenant(did_host.into(), tenant.into()), types: None });
        self
    }

    /// Trusts what a tenant or deployment URL names: `https://host[:port]/tenants/{t}` is
    /// that tenant, `https://host[:port]` every tenant there (`--trust-tenant`).
    pub fn trust_tenant_url(self, url: &str) -> Result<Self, String> {
        match parse_deployment_url(url)? {
            (did_host, None) => Ok(self.trust_tenants_of(did_host)),
            (did_host, Some(t)) => Ok(self.trust_tenant(did_host, t)),
        }
    }

    /// This policy restricted to `issuers`: a request may narrow trust, never widen it.
    pub fn narrowed_to(&self, issuers: &[String]) -> Self {
        let only = match &self.only {
            Some(prev) => prev.iter().filter(|d| issuers.contains(d)).cloned().collect(),
            None => issuers.to_vec(),
        };
        Self { rules: self.rules.clone(), only: Some(only) }
    }

    /// True when no rule exists (nothing can be trusted).
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Whether a credential from `issuer`, of `types`, about `subjects`, is trusted.
    pub fn check(&self, issuer: &str, types: &[&str], subjects: &[&str]) -> Result<(), Untrusted> {
        if self.rules.is_empty() {
            return Err(Untrusted::NoPolicy);
        }
        if self.only.as_ref().is_some_and(|o| !o.iter().any(|d| d == issuer)) {
            return Err(Untrusted::NarrowedOut(issuer.to_owned()));
        }
        let mut best = Untrusted::Issuer(issuer.to_owned());
        for rule in &self.rules {
            let binding = match &rule.issuer {
                IssuerMatch::Did(d) if d == issuer => None,
                IssuerMatch::TenantsOf(h) => match tenant_of_issuer(issuer) {
                    Some((host, t)) if host == h => Some((host, t)),
                    _ => continue,
                },
                IssuerMatch::Tenant(h, t) => match tenant_of_issuer(issuer) {
                    Some((host, tenant)) if host == h && tenant == t => Some((host, tenant)),
                    _ => continue,
                },
                IssuerMatch::Did(_) => continue,
            };
            if !rule.covers_types(types) {
                best = Untrusted::Type(issuer.to_owned());
                continue;
            }
            if let Some(own) = binding {
                // A tenant vouches only for its own agents, and a credential must be about someone.
                if subjects.is_empty() || !subjects.iter().all(|s| tenant_of_agent(s) == Some(own)) {
                    best = Untrusted::Subject(issuer.to_owned());
                    continue;
                }
            }
            return Ok(());
        }
        Err(best)
    }
}

/// What a Sigil URL names: `https://host[:port]` → (`host%3Aport`, `None`), every tenant of
/// that deployment; `https://host[:port]/tenants/{t}` → (`host%3Aport`, `Some(t)`).
pub fn parse_deployment_url(url: &str) -> Result<(String, Option<String>), String> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(|| format!("{url:?} must start with https://"))?
        .trim_end_matches('/');
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let host_ok = !authority.is_empty()
        && authority.bytes().all(|b| b.is_ascii_alphanumeric() || b".-:".contains(&b))
        && authority.matches(':').count() <= 1;
    if !host_ok {
        return Err(format!("{url:?} has no valid host[:port]"));
    }
    let did_host = authority.to_ascii_lowercase().replace(':', "%3A");
    match path.split('/').collect::<Vec<_>>().as_slice() {
        [""] => Ok((did_host, None)),
        ["tenants", t] if crate::ids::TenantId::parse(t).is_ok() => Ok((did_host, Some((*t).to_owned()))),
        _ => Err(format!("{url:?} must be a deployment URL or https://host/tenants/{{tenant}}")),
    }
}

/// The DID of the one tenant a tenant URL (`https://host[:port]/tenants/{t}`) names.
pub fn tenant_did_of_url(url: &str) -> Result<String, String> {
    match parse_deployment_url(url)? {
        (did_host, Some(t)) => Ok(format!("did:web:{did_host}:tenants:{t}")),
        (_, None) => Err(format!("{url:?} names a deployment, not one tenant: use https://host/tenants/{{tenant}}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: &str = "did:web:sigil.example%3A8443:tenants:acme";
    const A: &str = "did:web:sigil.example%3A8443:tenants:acme:agents:0123456789abcdef0123456789abcdef";
    const OTHER_A: &str = "did:web:sigil.example%3A8443:tenants:beta:agents:0123456789abcdef0123456789abcdef";
    const DA: &[&str] = &["VerifiableCredential", "DelegatedAuthorityCredential"];

    #[test]
    fn an_empty_policy_trusts_nobody() {
        assert_eq!(TrustPolicy::none().check(T, DA, &[A]), Err(Untrusted::NoPolicy));
    }

    #[test]
    fn tenants_of_a_deployment_vouch_only_for_their_own_agents() {
        let p = TrustPolicy::none().trust_tenants_of("sigil.example%3A8443");
        assert_eq!(p.check(T, DA, &[A]), Ok(()));
        assert!(matches!(p.check(T, DA, &[OTHER_A]), Err(Untrusted::Subject(_))));
        assert!(matches!(p.check(T, DA, &[]), Err(Untrusted::Subject(_))));
        // An agent DID shares the tenant's prefix but is never a trusted issuer.
        assert!(matches!(p.check(A, DA, &[A]), Err(Untrusted::Issuer(_))));
        // Another deployment, or a host that only starts the same.
        assert!(p.check("did:web:evil.example:tenants:acme", DA, &["did:web:evil.example:tenants:acme:agents:00"]).is_err());
        assert!(p.check("did:web:sigil.example%3A8443x:tenants:acme", DA, &[A]).is_err());
        assert!(p.check("did:web:sigil.example%3A8443:tenants:acme:x", DA, &[A]).is_err());
    }

    #[test]
    fn rules_are_scoped_by_type_and_requests_only_narrow() {
        let k = "did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK";
        let p = TrustPolicy::none().trust_issuer_for(k, &["AgentIdentityCredential"]).trust_tenants_of("h");
        assert_eq!(p.check(k, &["VerifiableCredential", "AgentIdentityCredential"], &["did:key:x"]), Ok(()));
        assert!(matches!(p.check(k, DA, &["did:key:x"]), Err(Untrusted::Type(_))));
        assert!(matches!(p.check(k, &["VerifiableCredential"], &["did:key:x"]), Err(Untrusted::Type(_))));
        let n = p.narrowed_to(&["did:web:h:tenants:a".to_owned()]);
        assert!(matches!(n.check(k, &["VerifiableCredential", "AgentIdentityCredential"], &[]), Err(Untrusted::NarrowedOut(_))));
        // Narrowing to an issuer no rule covers does not trust it.
        let n = TrustPolicy::none().trust_tenants_of("h").narrowed_to(&[k.to_owned()]);
        assert!(matches!(n.check(k, DA, &[]), Err(Untrusted::Issuer(_))));
        // Narrowing twice keeps the intersection.
        let n = p.narrowed_to(&[k.to_owned()]).narrowed_to(&["did:web:h:tenants:a".to_owned()]);
        assert!(n.check(k, &["VerifiableCredential", "AgentIdentityCredential"], &[]).is_err());
    }

    #[test]
    fn rules_and_urls_parse() {
        assert!(TrustRule::parse("did:web:x.example=A,B").is_ok());
        for bad in ["", "x", "did:web:x=", "did:foo:x", "did:web:a b"] {
            assert!(TrustRule::parse(bad).is_err(), "{bad}");
        }
        let p = TrustPolicy::none().trust_tenant_url("https://Sigil.example:8443/tenants/acme").unwrap();
        assert_eq!(p.check(T, DA, &[A]), Ok(()));
        assert!(p.check("did:web:sigil.example%3A8443:tenants:beta", DA, &[OTHER_A]).is_err());
        let p = TrustPolicy::none().trust_tenant_url("https://sigil.example:8443/").unwrap();
        assert_eq!(p.check("did:web:sigil.example%3A8443:tenants:beta", DA, &[OTHER_A]), Ok(()));
        for bad in ["ftp://x", "https://", "https://x/tenants", "https://x/tenants/A", "https://x/y/z", "https://a:b:c"] {
            assert!(TrustPolicy::none().trust_tenant_url(bad).is_err(), "{bad}");
        }
    }
}

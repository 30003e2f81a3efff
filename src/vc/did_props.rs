//! Property tests of DID and DID URL parsing (did:web URLs, `#` fragments, did:key
//! documents, key lookup in a resolved document): no input panics, a did:web URL never
//! leaves its host or climbs a path, and the length cap refuses an over-long DID before it
//! is rewritten or split.
use super::*;
use crate::crypto::Signer;
use proptest::prelude::*;

/// DID-ish text: the separators and escapes that matter, and some that must be refused.
const TEXT: &str = "[a-z0-9:.%3A#/?@\\-_é]";

fn did_text(max: usize) -> impl Strategy<Value = String> {
    let body = proptest::string::string_regex(&format!("{TEXT}{{0,{max}}}")).unwrap();
    (prop_oneof![Just("did:web:"), Just("did:key:"), Just("did:"), Just("")], body).prop_map(|(p, b)| format!("{p}{b}"))
}

/// did:web DIDs built from segments that probe the path rules: dot segments in every
/// spelling, encoded separators, ports, empty segments.
fn did_web_segments() -> impl Strategy<Value = String> {
    let seg = proptest::sample::select(vec![
        "tenants", "acme", "a", "", ".", "..", "%2e", "%2e%2e", "%2E.", ".%2e", "a%2Fb", "%3A8443", "x?y", "a#b",
    ]);
    (proptest::sample::select(vec!["example.com", "example.com%3A8443", "a@b", ""]), proptest::collection::vec(seg, 0..5))
        .prop_map(|(host, segs)| segs.iter().fold(format!("did:web:{host}"), |d, s| format!("{d}:{s}")))
}

/// A DID document as a resolver may return it: Sigil's shape with fields dropped, swapped
/// or replaced.
fn document_like() -> impl Strategy<Value = (Value, String)> {
    let pk = Signer::generate().public();
    (any::<u8>(), any::<u8>(), "[a-z#:\\-0-9]{0,12}").prop_map(move |(drop, swap, junk)| {
        let did = "did:web:example.com:tenants:t";
        let mut doc = document(did, &[Method { fragment: "key-1".into(), public: pk, current: true, purpose: super::Purpose::Sign }], None);
        let fields = ["id", "verificationMethod", "authentication", "assertionMethod", "@context"];
        if let Some(obj) = doc.as_object_mut() {
            if let Some(f) = fields.get(usize::from(drop) % 8) {
                obj.remove(*f);
            }
            if let Some(f) = fields.get(usize::from(swap) % 8) {
                obj.insert((*f).to_owned(), json!(junk));
            }
        }
        (doc, format!("{did}#key-1"))
    })
}

proptest! {
    #![proptest_config(crate::fuzz::config(2000))]

    #[test]
    fn did_web_urls_stay_on_their_host(did in prop_oneof![did_text(40), did_web_segments()]) {
        if let Some(url) = did_web_url(&did) {
            let rest = url.strip_prefix("https://").unwrap();
            let (host, path) = rest.split_once('/').unwrap();
            prop_assert!(!host.is_empty() && !host.contains(['/', '?', '#', '@']), "{:?} -> {:?}", did, url);
            prop_assert!(path.ends_with("did.json"));
            prop_assert!(path.split('/').all(|seg| !seg.is_empty() && seg != "." && seg != ".."), "{:?} -> {:?}", did, url);
            prop_assert!(!path.contains(['?', '#']));
            // What an HTTP client fetches has every segment built here (percent-encoded
            // perhaps): no dot segment in any spelling (`%2e%2e` is one to a WHATWG URL
            // parser) removed one.
            if let Ok(parsed) = reqwest::Url::parse(&url) {
                let fetched: Vec<&str> = parsed.path_segments().map(Iterator::collect).unwrap_or_default();
                prop_assert_eq!(fetched.len(), path.split('/').count(), "{:?} -> {:?} -> {:?}", did, url, parsed.path());
            }
        }
    }

    #[test]
    fn did_urls_split_at_the_first_fragment(url in did_text(40)) {
        if let Some((did, fragment)) = split_did_url(&url) {
            prop_assert!(did.starts_with("did:") && !did.contains('#') && !fragment.is_empty());
            prop_assert_eq!(format!("{did}#{fragment}"), url);
        }
    }

    #[test]
    fn did_key_documents_hold_their_own_key(did in did_text(60)) {
        if let Some((pk, doc)) = did_key_document(&did) {
            let mb = did.strip_prefix("did:key:").unwrap();
            prop_assert_eq!(key_for(&doc, &format!("{did}#{mb}"), "assertionMethod"), Ok(pk));
        }
    }

    #[test]
    fn key_lookup_in_any_document_never_panics((doc, method) in document_like(), other in did_text(30), purpose in prop_oneof![Just("authentication"), Just("assertionMethod"), Just("x")]) {
        let _ = key_for(&doc, &method, purpose);
        let _ = key_for(&doc, &other, purpose);
    }
}

proptest! {
    // A length past a cap: a small input space, so a long run needs few cases.
    #![proptest_config(crate::fuzz::config_bounded(200, 4000))]

    #[test]
    fn an_over_long_did_is_refused_before_it_is_split(extra in 1usize..8192) {
        // Well formed, so only the length can refuse them.
        let host = "did:web:example.com:";
        let did = format!("{host}{}", "a".repeat(MAX_DID_URL - host.len() + extra));
        prop_assert_eq!(did_web_url(&did), None);
        let url = format!("{}#k", &did[..MAX_DID_URL - 1]);
        prop_assert_eq!(split_did_url(&url), None);
    }
}

#[test]
fn dids_at_the_cap_are_read() {
    let host = "did:web:example.com:";
    let did = format!("{host}{}", "a".repeat(MAX_DID_URL - host.len()));
    assert!(did_web_url(&did).is_some());
    assert!(split_did_url(&format!("{}#k", &did[..MAX_DID_URL - 2])).is_some());
}

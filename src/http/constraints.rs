//! The input rules the OpenAPI document states as JSON Schema (`pattern`, lengths, item
//! counts), for the fields whose parsers check more than their type.
//!
//! Why: a field documented only as `string` tells SDK users nothing, and schema-driven
//! fuzzing (`scripts/fuzz-api`) then spends its cases on bodies the server refuses at the
//! first check. The parsers in `policy` and `service` stay the authority; the patterns here
//! restate them in the dialect JSON Schema tools share (ECMA-262, Python `re` and Rust
//! `regex` read them alike: no look-around, no `\p`), and the tests below check each
//! pattern against its parser on generated strings, so the two cannot drift apart. Rules no
//! pattern can say (a glob's syntax, a time zone, `to` after `from`, dates in the future)
//! are in the field descriptions.

use utoipa::openapi::schema::{ArrayBuilder, KnownFormat, ObjectBuilder, SchemaFormat, Type};
use utoipa::openapi::{Array, Object};

/// No control characters (Unicode `Cc`, what `char::is_control` refuses), at least one char.
pub const PRINTABLE: &str = r"^[^\x00-\x1F\x7F-\x9F]+$";
/// A concrete action: 2–8 `:`-separated segments of `a-z 0-9 _ . -`.
pub const ACTION: &str = r"^[a-z0-9_.-]+(:[a-z0-9_.-]+){1,7}$";
/// An action a delegation grants: as [`ACTION`], or a namespace wildcard ending in `:*`.
pub const ACTION_PATTERN: &str = r"^[a-z0-9_.-]+(:[a-z0-9_.-]+){0,6}:([a-z0-9_.-]+|\*)$";
/// A concrete resource: `/`-separated segments, none empty, `.` or `..`.
pub const RESOURCE: &str = concat!(
    r"^([^/.\x00-\x1F\x7F-\x9F][^/\x00-\x1F\x7F-\x9F]*|\.[^/.\x00-\x1F\x7F-\x9F][^/\x00-\x1F\x7F-\x9F]*|\.\.[^/\x00-\x1F\x7F-\x9F]+)",
    r"(/([^/.\x00-\x1F\x7F-\x9F][^/\x00-\x1F\x7F-\x9F]*|\.[^/.\x00-\x1F\x7F-\x9F][^/\x00-\x1F\x7F-\x9F]*|\.\.[^/\x00-\x1F\x7F-\x9F]+))*$"
);
/// A non-negative decimal string, never a number or an exponent: `500.00`.
pub const AMOUNT: &str = r"^[0-9]{1,28}(\.[0-9]+)?$";
/// An ISO 4217 currency code.
pub const CURRENCY: &str = r"^[A-Z]{3}$";
/// 24-hour `HH:MM`, or `24:00` (the end of the day).
pub const HHMM: &str = r"^(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)$";
/// Not blank, no control characters (a principal's id or name).
pub const NOT_BLANK: &str = r"^[^\x00-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x1F\x7F-\x9F]*$";

/// Day names of a schedule.
pub const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

fn string(pattern: &str, max: usize) -> ObjectBuilder {
    ObjectBuilder::new().schema_type(Type::String).pattern(Some(pattern)).min_length(Some(1)).max_length(Some(max))
}

/// `b`, whose values are of type `t`, or null (the form of an `Option` field).
fn or_null(b: ObjectBuilder, t: Type) -> ObjectBuilder {
    b.schema_type(utoipa::openapi::schema::SchemaType::from_iter([t, Type::Null]))
}

/// `actions` of a delegation.
pub fn action_patterns() -> Array {
    ArrayBuilder::new()
        .items(string(ACTION_PATTERN, 128).description(Some("`namespace:verb`, or `namespace:*` for every verb in it")))
        .min_items(Some(1))
        .max_items(Some(64))
        .build()
}

/// `resources` of a delegation.
pub fn resource_patterns() -> Array {
    ArrayBuilder::new()
        .items(
            string(PRINTABLE, 256)
                .description(Some("A glob (`*` within one segment, `**` across segments, `?`, `[...]`); must be a valid glob")),
        )
        .min_items(Some(1))
        .max_items(Some(64))
        .build()
}

/// `days` of a schedule.
pub fn days() -> Array {
    ArrayBuilder::new()
        .items(ObjectBuilder::new().schema_type(Type::String).enum_values(Some(DAYS)))
        .min_items(Some(1))
        .max_items(Some(7))
        .unique_items(true)
        .build()
}

/// `from` / `to` of a schedule.
pub fn hhmm() -> Object {
    ObjectBuilder::new().schema_type(Type::String).pattern(Some(HHMM)).examples([serde_json::json!("09:00")]).build()
}

/// A decimal amount string.
pub fn amount() -> Object {
    string(AMOUNT, 32).examples([serde_json::json!("500.00")]).build()
}

/// An optional decimal amount string.
pub fn amount_opt() -> Object {
    or_null(string(AMOUNT, 32), Type::String).build()
}

/// A currency code.
pub fn currency() -> Object {
    ObjectBuilder::new().schema_type(Type::String).pattern(Some(CURRENCY)).examples([serde_json::json!("EUR")]).build()
}

/// A principal's id.
pub fn principal_id() -> Object {
    string(NOT_BLANK, 200).build()
}

/// A principal's optional display name.
pub fn principal_name() -> Object {
    or_null(string(NOT_BLANK, 200), Type::String).build()
}

/// An RFC 3339 date-time.
pub fn date_time() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
        .examples([serde_json::json!("2027-01-01T00:00:00Z")])
        .build()
}

/// An optional RFC 3339 date-time.
pub fn date_time_opt() -> Object {
    or_null(ObjectBuilder::new().format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime))), Type::String).build()
}

/// The concrete action of a presentation request.
pub fn action() -> Object {
    string(ACTION, 128).examples([serde_json::json!("refunds:create")]).build()
}

/// The concrete resource of a presentation request.
pub fn resource_opt() -> Object {
    or_null(string(RESOURCE, 512), Type::String).examples([serde_json::json!("orders/123")]).build()
}

/// A challenge or domain: printable text.
pub fn printable_256() -> Object {
    string(PRINTABLE, 256).build()
}

/// An optional challenge or domain.
pub fn printable_256_opt() -> Object {
    or_null(string(PRINTABLE, 256), Type::String).build()
}

/// `context` of a presentation request: free-form facts, of which `amount` and `currency`
/// are checked against limits.
pub fn context() -> Object {
    or_null(
        ObjectBuilder::new()
            .property("amount", string(AMOUNT, 32))
            .property("currency", ObjectBuilder::new().schema_type(Type::String).pattern(Some(CURRENCY)))
            .additional_properties(Some(utoipa::openapi::schema::AdditionalProperties::FreeForm(true)))
            .max_properties(Some(32)),
        Type::Object,
    )
    .build()
}

/// The unsigned credential of a VC-API issue request. `issuer` must be the tenant's DID
/// (checked by the server, which knows it), and a `proof` is refused.
pub fn unsigned_credential() -> Object {
    use serde_json::json;
    let mut types = ArrayBuilder::new().items(ObjectBuilder::new().schema_type(Type::String)).min_items(Some(1)).build();
    // `contains` is JSON Schema 2020-12 (OpenAPI 3.1); utoipa has no builder for it.
    types.extensions = Some(utoipa::openapi::extensions::Extensions::from_iter([("contains", json!({"const": "VerifiableCredential"}))]));
    let context = ArrayBuilder::new()
        .prefix_items([ObjectBuilder::new().schema_type(Type::String).enum_values(Some([crate::vc::credential::VC_V2])).build()])
        // Any further entries (URLs or inline contexts); OpenAPI Generator cannot take a
        // multi-type `type` other than "X or null", so this stays unconstrained.
        .items(ObjectBuilder::new().schema_type(utoipa::openapi::schema::SchemaType::AnyValue))
        .min_items(Some(1))
        .description(Some("Starts with the VC 2.0 context"))
        .build();
    let issuer = utoipa::openapi::schema::OneOfBuilder::new()
        .item(ObjectBuilder::new().schema_type(Type::String))
        .item(ObjectBuilder::new().schema_type(Type::Object).property("id", ObjectBuilder::new().schema_type(Type::String)).required("id"))
        .description(Some("The tenant's DID, or an object whose `id` it is"));
    ObjectBuilder::new()
        .schema_type(Type::Object)
        .description(Some("The unsigned credential (VC 2.0 data model, without `proof`)."))
        .property("@context", context)
        .property("type", types)
        .property("issuer", issuer)
        .property(
            "credentialSubject",
            utoipa::openapi::schema::OneOfBuilder::new()
                .item(ObjectBuilder::new().schema_type(Type::Object))
                .item(ArrayBuilder::new().items(ObjectBuilder::new().schema_type(Type::Object)))
                .description(Some("One subject, or several")),
        )
        .property("validFrom", date_time())
        .property("validUntil", date_time())
        .required("@context")
        .required("type")
        .required("issuer")
        .required("credentialSubject")
        .additional_properties(Some(utoipa::openapi::schema::AdditionalProperties::FreeForm(true)))
        .examples([json!({
            "@context": [crate::vc::credential::VC_V2],
            "type": ["VerifiableCredential"],
            "issuer": "did:web:sigil.example:tenants:acme",
            "credentialSubject": {"id": "did:example:123", "memberOf": "Acme"},
        })])
        .build()
}

/// The options of a VC-API issue request: only `credentialId`, a URL.
pub fn issue_options() -> Object {
    or_null(
        ObjectBuilder::new()
            .property("credentialId", ObjectBuilder::new().schema_type(Type::String).format(Some(SchemaFormat::Custom("uri".into()))))
            .property("credentialStatus", utoipa::openapi::Schema::OneOf(status_options()))
            .property(
                "cryptosuite",
                ObjectBuilder::new().schema_type(Type::String).enum_values(Some(["eddsa-jcs-2022", "eddsa-rdfc-2022"])).description(Some(
                    "Sigil's extension: the Data Integrity cryptosuite (default: the tenant's, PUT /v1/tenants/{tenant}/cryptosuite).",
                )),
            )
            .additional_properties(Some(utoipa::openapi::schema::AdditionalProperties::FreeForm(false))),
        Type::Object,
    )
    .build()
}

/// `options.credentialStatus` of the VC-API issue request: the status entries Sigil adds.
fn status_options() -> utoipa::openapi::schema::OneOf {
    let entry = || {
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .property("type", ObjectBuilder::new().schema_type(Type::String).enum_values(Some(["BitstringStatusListEntry"])))
            .property("statusPurpose", ObjectBuilder::new().schema_type(Type::String).enum_values(Some(["revocation", "suspension"])))
            .required("type")
            .required("statusPurpose")
            .additional_properties(Some(utoipa::openapi::schema::AdditionalProperties::FreeForm(false)))
    };
    utoipa::openapi::schema::OneOfBuilder::new()
        .item(entry())
        .item(ArrayBuilder::new().items(entry()).min_items(Some(1)).max_items(Some(2)))
        .description(Some(
            "Sigil's extension: the Bitstring Status List entries to add (at most one per purpose). The credential must then \
             have an id (credential.id or credentialId) and no credentialStatus of its own; it is stored, and its status \
             changes through POST /tenants/{tenant}/vc-api/credentials/status or Sigil's credential routes.",
        ))
        .build()
}

#[cfg(test)]
mod tests {
    //! Each documented pattern against the parser it restates, on generated strings drawn
    //! from an alphabet that hits every rule (separators, wildcards, dots, case, digits,
    //! blanks, C0/C1 controls, non-ASCII), and against the published document.
    use super::*;
    use crate::policy::{self, ActionPattern, Principal, PrincipalKind, ResourcePattern, Schedule};
    use proptest::prelude::*;
    use regex::Regex;

    fn documented(pattern: &str, max: usize, s: &str) -> bool {
        Regex::new(pattern).unwrap().is_match(s) && s.chars().count() <= max
    }

    /// Characters that hit every rule: separators, wildcards, dots, case, digits, signs,
    /// blanks (ASCII and not), C0/C1 controls, non-ASCII.
    const CHARS: &str = "a-z0-9A-Z:*._/ \\-+\u{7f}\u{85}\u{a0}\u{1}\t\n\u{e9}\u{1F600}";

    fn strings(max: usize) -> BoxedStrategy<String> {
        proptest::string::string_regex(&format!("[{CHARS}]{{0,{max}}}")).unwrap().boxed()
    }

    /// Free strings, and strings shaped like the rule (segments of 0–3 characters joined by
    /// `sep`, up to `segs` of them), so that the boundaries of the rule are reached often.
    fn shaped(sep: char, segs: usize) -> BoxedStrategy<String> {
        let seg = format!("[{CHARS}]{{0,3}}");
        let shaped = format!("({seg}{sep}){{0,{segs}}}{seg}");
        let mostly_valid = format!("([a-z0-9.*]{{0,3}}{sep}){{0,{segs}}}[a-z0-9.*]{{0,3}}");
        let valid_segments = format!("([a-z0-9]{{1,2}}{sep}){{0,{segs}}}([a-z0-9]{{1,2}}|\\*)");
        prop_oneof![
            strings(12),
            proptest::string::string_regex(&shaped).unwrap(),
            proptest::string::string_regex(&mostly_valid).unwrap(),
            proptest::string::string_regex(&valid_segments).unwrap(),
        ]
        .boxed()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4000))]

        #[test]
        fn action_patterns_agree_with_the_parser(s in shaped(':', 9)) {
            prop_assert_eq!(documented(ACTION_PATTERN, 128, &s), ActionPattern::parse(&s).is_ok(), "{:?}", s);
        }

        #[test]
        fn concrete_actions_agree_with_the_parser(s in shaped(':', 9)) {
            prop_assert_eq!(documented(ACTION, 128, &s), crate::service::presentations::parse_action(&s).is_ok(), "{:?}", s);
        }

        #[test]
        fn resources_agree_with_the_parser(s in shaped('/', 5)) {
            prop_assert_eq!(documented(RESOURCE, 512, &s), !s.is_empty() && policy::well_formed_resource(&s), "{:?}", s);
        }

        #[test]
        fn printable_agrees_with_the_parser(s in strings(8)) {
            prop_assert_eq!(documented(PRINTABLE, 256, &s), crate::service::presentations::printable("f", &s, 256).is_ok(), "{:?}", s);
        }

        #[test]
        fn resource_globs_are_at_least_printable(s in shaped('/', 4)) {
            // The parser also checks glob syntax, so it may refuse what the pattern allows,
            // never the reverse.
            if ResourcePattern::parse(&s).is_ok() {
                prop_assert!(documented(PRINTABLE, 256, &s), "{:?}", s);
            }
        }

        #[test]
        fn amounts_agree_with_the_parser(s in prop_oneof!["[0-9.a+e\\- ]{0,12}", "[0-9]{0,31}(\\.[0-9]{0,4})?", "[0-9]{0,3}\\.[0-9]{0,31}"]) {
            prop_assert_eq!(documented(AMOUNT, 32, &s), policy::parse_amount("a", &s).is_ok(), "{:?}", s);
        }

        #[test]
        fn currencies_agree_with_the_parser(s in "[A-Za-z0-9\u{c9} ]{0,4}") {
            prop_assert_eq!(documented(CURRENCY, 3, &s), policy::AmountLimit::parse("1", &s, None).is_ok(), "{:?}", s);
        }

        #[test]
        fn times_agree_with_the_parser(s in prop_oneof![strings(6), "[0-9+ \\-]{0,3}:[0-9+ \\-]{0,3}", "[0-2][0-9]:[0-6][0-9]"]) {
            // `from` 00:00 is the earliest time, so `to` = s parses exactly when s is a time after it.
            let parsed = Schedule::parse("UTC", &["mon".into()], "00:00", &s).is_ok();
            prop_assert_eq!(documented(HHMM, 5, &s), parsed || s == "00:00", "{:?}", s);
        }

        #[test]
        fn principal_ids_agree_with_the_parser(s in prop_oneof![strings(6), "[ \t\u{a0}\u{85}\u{2003}a\u{1}]{0,4}"]) {
            prop_assert_eq!(documented(NOT_BLANK, 200, &s), Principal::new(s.clone(), PrincipalKind::Person, None).is_ok(), "{:?}", s);
        }
    }

    #[test]
    fn boundaries_agree_with_the_parsers() {
        let long = |n: usize| "é".repeat(n);
        for (s, ok) in [(long(256), true), (long(257), false)] {
            assert_eq!(crate::service::presentations::printable("f", &s, 256).is_ok(), ok);
            assert_eq!(documented(PRINTABLE, 256, &s), ok);
        }
        for (s, ok) in [(long(512), true), (long(513), false)] {
            assert_eq!(policy::well_formed_resource(&s), ok);
            assert_eq!(documented(RESOURCE, 512, &s), ok);
        }
        for (s, ok) in [(long(256), true), (long(257), false)] {
            assert_eq!(ResourcePattern::parse(&s).is_ok(), ok);
        }
        let digits = |n: usize| "9".repeat(n);
        for s in [digits(28), digits(29), format!("{}.{}", digits(28), digits(3)), format!("0.{}", digits(30))] {
            assert_eq!(documented(AMOUNT, 32, &s), policy::parse_amount("a", &s).is_ok(), "{s}");
        }
        let action = format!("a:{}", "b".repeat(126));
        assert!(documented(ACTION, 128, &action) && ActionPattern::parse(&action).is_ok());
        assert!(!documented(ACTION, 128, &format!("{action}c")) && ActionPattern::parse(&format!("{action}c")).is_err());
        for days in [vec![], vec!["mon", "mon"], DAYS.to_vec()] {
            let days: Vec<String> = days.into_iter().map(String::from).collect();
            let unique = days.iter().collect::<std::collections::HashSet<_>>().len() == days.len();
            assert_eq!(Schedule::parse("UTC", &days, "09:00", "17:00").is_ok(), !days.is_empty() && unique);
        }
    }

    /// The published document carries these patterns where the parsers apply them.
    #[test]
    fn the_document_states_them() {
        let doc: serde_json::Value = serde_json::from_str(&crate::http::openapi::document_json()).unwrap();
        let s = |p: &str| doc.pointer(&format!("/components/schemas{p}")).cloned().unwrap_or_else(|| panic!("no {p}"));
        assert_eq!(s("/CreateDelegationRequest/properties/actions/items/pattern"), ACTION_PATTERN);
        assert_eq!(s("/CreateDelegationRequest/properties/resources/maxItems"), 64);
        assert_eq!(s("/CreateDelegationRequest/properties/valid_until/format"), "date-time");
        assert_eq!(s("/Schedule/properties/days/uniqueItems"), true);
        assert_eq!(s("/Schedule/properties/to/pattern"), HHMM);
        assert_eq!(s("/AmountLimit/properties/max/pattern"), AMOUNT);
        assert_eq!(s("/AmountLimit/properties/currency/pattern"), CURRENCY);
        assert_eq!(s("/Principal/properties/id/pattern"), NOT_BLANK);
        assert_eq!(s("/CreatePresentationRequest/properties/action/pattern"), ACTION);
        assert_eq!(s("/CreatePresentationRequest/properties/resource/pattern"), RESOURCE);
        assert_eq!(s("/CreatePresentationRequest/properties/challenge/pattern"), PRINTABLE);
        assert_eq!(s("/CreatePresentationRequest/properties/context/properties/amount/pattern"), AMOUNT);
        assert_eq!(s("/IssueRequest/properties/credential/required/0"), "@context");
    }
}

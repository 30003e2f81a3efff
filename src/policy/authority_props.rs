//! Property tests of the delegation grammar (actions, resource globs, amounts, schedules,
//! whole authorities from JSON): no input panics, what is accepted is within the grammar,
//! and the length caps refuse an over-long input before it is split, walked or looked up.
//! Case counts: `crate::fuzz::config` (more with `scripts/fuzz-parsers`).
use super::*;
use proptest::prelude::*;
use serde_json::{Value, json};

/// Text that hits every rule of the grammar: separators, wildcards, glob brackets, dots,
/// case, digits, signs, blanks, controls, non-ASCII.
const CHARS: &str = "[a-zA-Z0-9:*?/.\\[\\]!_+\\- \t\u{0}\u{7f}\u{85}é\u{1F600}]";

fn text(max: usize) -> impl Strategy<Value = String> {
    proptest::string::string_regex(&format!("{CHARS}{{0,{max}}}")).unwrap()
}

/// Arbitrary JSON (small): what an untrusted credential may put where an authority goes.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        text(12).prop_map(Value::String),
        prop_oneof![Just("refunds:create"), Just("orders/*"), Just("EUR"), Just("500.00"), Just("09:00"), Just("mon"), Just("UTC")]
            .prop_map(|s| json!(s)),
    ];
    let keys = prop_oneof![
        Just("actions"),
        Just("resources"),
        Just("limits"),
        Just("amount"),
        Just("max"),
        Just("currency"),
        Just("perDay"),
        Just("schedule"),
        Just("timezone"),
        Just("days"),
        Just("from"),
        Just("to"),
        Just("x"),
    ]
    .prop_map(str::to_owned);
    leaf.prop_recursive(4, 40, 5, move |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            proptest::collection::btree_map(keys.clone(), inner, 0..5).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Authorities shaped like Sigil's, each field drawn from valid and invalid values.
fn near_authority() -> impl Strategy<Value = Value> {
    let pick = |xs: &'static [&'static str]| proptest::sample::select(xs).prop_map(|s| json!(s));
    let list = move |xs: &'static [&'static str]| proptest::collection::vec(pick(xs), 0..3).prop_map(Value::Array);
    (
        list(&["refunds:create", "orders:*", "a", "A:b", "x:y:z"]),
        list(&["orders/*", "**", "a/[", "x/**/y", ""]),
        proptest::option::of((pick(&["5", "5.5", "-1", "1e3"]), pick(&["EUR", "eur"]), proptest::option::of(pick(&["10", "1"])))),
        proptest::option::of((
            pick(&["UTC", "Europe/Berlin", "Mars/Base"]),
            list(&["mon", "sun", "xyz"]),
            pick(&["09:00", "24:00", "9:00"]),
            pick(&["17:00", "00:00"]),
        )),
    )
        .prop_map(|(actions, resources, amount, schedule)| {
            let mut a = json!({"actions": actions, "resources": resources});
            if let Some((max, currency, per_day)) = amount {
                a["limits"] = json!({"amount": {"max": max, "currency": currency}});
                if let Some(p) = per_day {
                    a["limits"]["amount"]["perDay"] = p;
                }
            }
            if let Some((timezone, days, from, to)) = schedule {
                a["schedule"] = json!({"timezone": timezone, "days": days, "from": from, "to": to});
            }
            a
        })
}

proptest! {
    #![proptest_config(crate::fuzz::config(2000))]

    #[test]
    fn actions_parse_only_the_grammar(s in prop_oneof![text(24), "([a-z*]{0,3}:){0,9}[a-z*]{0,3}"]) {
        if let Ok(a) = ActionPattern::parse(&s) {
            prop_assert_eq!(a.as_str(), s.as_str());
            prop_assert!(s.len() <= MAX_ACTION);
            let segs: Vec<&str> = s.split(':').collect();
            prop_assert!((2..=8).contains(&segs.len()), "{:?}", s);
            prop_assert!(!a.covers(""));
        }
    }

    #[test]
    fn resource_globs_parse_and_match_without_panicking(p in text(20), r in text(24)) {
        if let Ok(g) = ResourcePattern::parse(&p) {
            prop_assert_eq!(g.as_str(), p.as_str());
            prop_assert!(p.chars().count() <= MAX_RESOURCE_PATTERN && !p.chars().any(char::is_control));
            let _ = g.covers(&r);
            // A glob without metacharacters matches exactly itself.
            if !p.contains(['*', '?', '[', ']']) {
                prop_assert!(g.covers(&p));
                prop_assert_eq!(g.covers(&r), r == p);
            }
        }
    }

    #[test]
    fn amounts_are_non_negative_decimals_within_their_cap(s in prop_oneof![text(12), "[0-9.]{0,40}", "[0-9]{0,30}\\.[0-9]{0,30}"]) {
        if let Ok(d) = parse_amount("a", &s) {
            prop_assert!(s.len() <= 32 && !d.is_sign_negative(), "{:?}", s);
            prop_assert!(s.bytes().all(|b| b.is_ascii_digit() || b == b'.'));
        }
    }

    #[test]
    fn amount_limits_and_schedules_never_panic(
        max in text(8), cur in text(4), per_day in proptest::option::of(text(8)),
        tz in prop_oneof![text(16), Just("Europe/Berlin".to_owned()), Just("UTC".to_owned())],
        days in proptest::collection::vec(prop_oneof![text(4), Just("mon".to_owned()), Just("sun".to_owned())], 0..9),
        from in prop_oneof![text(6), "[0-2][0-9]:[0-6][0-9]"], to in prop_oneof![text(6), "[0-2][0-9]:[0-6][0-9]"],
    ) {
        if let Ok(l) = AmountLimit::parse(&max, &cur, per_day.as_deref()) {
            prop_assert!(l.per_day.is_none_or(|p| p >= l.max));
        }
        if let Ok(s) = Schedule::parse(&tz, &days, &from, &to) {
            prop_assert!(s.from < s.to && !s.days.is_empty() && s.days.len() <= 7);
            // What serializes parses back to the same schedule.
            let again: Schedule = serde_json::from_value(serde_json::to_value(&s).unwrap()).unwrap();
            prop_assert_eq!(again, s);
        }
    }

    #[test]
    fn authorities_from_any_json_round_trip_or_are_refused(v in prop_oneof![json_value(), near_authority()]) {
        // An authority inside a credential is untrusted input to a verifier.
        if let Ok(a) = serde_json::from_value::<Authority>(v) {
            prop_assert!((1..=64).contains(&a.actions.len()) && (1..=64).contains(&a.resources.len()));
            let again: Authority = serde_json::from_value(serde_json::to_value(&a).unwrap()).unwrap();
            prop_assert_eq!(again, a);
        }
    }

    #[test]
    fn principals_never_panic(id in text(12), name in proptest::option::of(text(12))) {
        if let Ok(p) = Principal::new(id, PrincipalKind::Person, name) {
            prop_assert!(!p.identifier.trim().is_empty() && p.identifier.chars().count() <= 200);
        }
    }
}

proptest! {
    // A length past a cap: a small input space, so a long run needs few cases.
    #![proptest_config(crate::fuzz::config_bounded(200, 4000))]

    #[test]
    fn an_over_long_action_is_refused_by_its_length(extra in 1usize..4096, filler in "[a-z:*]") {
        // Any text past the cap, even a valid-looking one, gets the cap's error: the length
        // is checked before the text is split into segments (and the error does not echo it).
        let s = format!("a:{}", filler.repeat(MAX_ACTION - 2 + extra));
        let e = ActionPattern::parse(&s).unwrap_err();
        prop_assert_eq!(e.0, format!("action must be at most {MAX_ACTION} bytes"));
    }

    #[test]
    fn an_over_long_resource_glob_is_refused_by_its_length(extra in 1usize..2048, c in "[a*/é\u{1}\\[]") {
        // Control characters and brackets too: the cap's error comes first.
        let s = c.repeat(MAX_RESOURCE_PATTERN + extra);
        let e = ResourcePattern::parse(&s).unwrap_err();
        prop_assert_eq!(e.0, format!("a resource pattern must be at most {MAX_RESOURCE_PATTERN} characters"));
    }

    #[test]
    fn an_over_long_time_zone_is_refused_before_the_lookup(extra in 1usize..4096) {
        let tz = format!("Europe/{}", "x".repeat(MAX_TIMEZONE - 7 + extra));
        let e = Schedule::parse(&tz, &["mon".to_owned()], "09:00", "17:00").unwrap_err();
        prop_assert_eq!(e.0, format!("schedule.timezone must be at most {MAX_TIMEZONE} bytes"));
    }
}

#[test]
fn inputs_at_the_caps_are_still_accepted() {
    // The caps are exactly where the grammar says: one byte less parses.
    let action = format!("a:{}", "b".repeat(MAX_ACTION - 2));
    assert!(ActionPattern::parse(&action).is_ok());
    assert!(ResourcePattern::parse(&"é".repeat(MAX_RESOURCE_PATTERN)).is_ok());
    assert!(ResourcePattern::parse(&"é".repeat(MAX_RESOURCE_PATTERN + 1)).is_err());
    let tz = format!("Europe/{}", "x".repeat(MAX_TIMEZONE - 7));
    assert_ne!(
        Schedule::parse(&tz, &["mon".to_owned()], "09:00", "17:00").unwrap_err().0,
        format!("schedule.timezone must be at most {MAX_TIMEZONE} bytes")
    );
    assert!(Schedule::parse("America/Argentina/ComodRivadavia", &["mon".to_owned()], "09:00", "17:00").is_ok());
}

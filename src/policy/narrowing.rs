//! Sub-delegation that can only narrow: the pure decision whether a child delegation grants
//! nothing its parent does not. The same function decides when Sigil issues a child
//! (`POST /v1/agent/delegations`) and when a verifier checks each link of a presented
//! chain (`/v1/verify`, the CLI, the library).
//!
//! Every rule is a *sufficient* condition, proven from the two authorities alone: what
//! cannot be proven narrower (a resource glob whose containment these rules cannot show,
//! schedules in two different time zones) is refused. The property the tests hold: if
//! [`narrows`] accepts a child, every request the child's evaluation grants at any instant
//! is granted by the parent's evaluation at that instant.
//!
//! Must never: do I/O, read the clock, or accept a child by default (a rule that does not
//! understand an input refuses it).

use jiff::Timestamp;
use serde::{Deserialize, Deserializer, Serialize};

use super::{ActionPattern, Authority, Principal};

/// The deepest chain below a root delegation: a root may allow at most this many levels
/// of re-delegation beneath it.
pub const MAX_DELEGATION_DEPTH: u8 = 5;

/// `delegable: {maxDepth}`: how many further levels of re-delegation the holder may create
/// below this delegation (1 = its children may not re-delegate).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Delegable {
    pub max_depth: u8,
}

impl Delegable {
    /// Validates `1 ≤ max_depth ≤ MAX_DELEGATION_DEPTH`.
    pub fn new(max_depth: u8) -> Result<Self, String> {
        if (1..=MAX_DELEGATION_DEPTH).contains(&max_depth) {
            Ok(Self { max_depth })
        } else {
            Err(format!("delegable.max_depth must be between 1 and {MAX_DELEGATION_DEPTH}"))
        }
    }
}

impl<'de> Deserialize<'de> for Delegable {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase", deny_unknown_fields)]
        struct Wire {
            max_depth: u8,
        }
        let w = Wire::deserialize(d)?;
        Delegable::new(w.max_depth).map_err(serde::de::Error::custom)
    }
}

/// Which rule a child broke (the API names it: `delegation_not_narrower` + rule).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    Action,
    Resource,
    Amount,
    Budget,
    Schedule,
    Validity,
    Principal,
    Depth,
    Approval,
}

impl Rule {
    /// The rule's name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Rule::Action => "action",
            Rule::Resource => "resource",
            Rule::Amount => "amount",
            Rule::Budget => "budget",
            Rule::Schedule => "schedule",
            Rule::Validity => "validity",
            Rule::Principal => "principal",
            Rule::Depth => "depth",
            Rule::Approval => "approval",
        }
    }
}

/// Why a child is not (provably) narrower than its parent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {detail}", rule.as_str())]
pub struct NotNarrower {
    pub rule: Rule,
    pub detail: String,
}

fn no(rule: Rule, detail: impl Into<String>) -> Result<(), NotNarrower> {
    Err(NotNarrower { rule, detail: detail.into() })
}

/// One delegation of a chain as the rules see it.
#[derive(Debug, Clone, Copy)]
pub struct Link<'a> {
    pub principal: &'a Principal,
    pub authority: &'a Authority,
    pub valid_from: Timestamp,
    pub valid_until: Option<Timestamp>,
    /// 0 for a root delegation (issued by an admin), parent's + 1 below it.
    pub depth: u8,
}

/// Whether action pattern `child` covers only actions `parent` covers.
fn action_within(child: &ActionPattern, parent: &ActionPattern) -> bool {
    match (child.as_str().strip_suffix(":*"), parent.as_str().strip_suffix(":*")) {
        // An exact action: the parent's own decision.
        (None, _) => parent.covers(child.as_str()),
        // `a:b:*` is inside `a:*` and `a:b:*`; never inside an exact action.
        (Some(c), Some(p)) => c == p || c.strip_prefix(p).is_some_and(|rest| rest.starts_with(':')),
        (Some(_), None) => false,
    }
}

/// Whether approval rule `child` requires a decision for every request `parent` does:
/// each action the parent names is within one the child names (or the child names none,
/// meaning every action), and the child's threshold is absent or in the same currency and
/// no higher.
fn approval_at_least_as_strict(parent: &super::ApprovalRule, child: &super::ApprovalRule) -> bool {
    let actions = child.actions.is_empty()
        || (!parent.actions.is_empty() && parent.actions.iter().all(|p| child.actions.iter().any(|c| action_within(p, c))));
    let threshold = match (&parent.above, &child.above) {
        (_, None) => true,
        (None, Some(_)) => false,
        (Some(p), Some(c)) => c.currency == p.currency && c.amount <= p.amount,
    };
    actions && threshold
}

/// Whether `child`'s authority is within `parent`'s (actions, resources, amounts, daily
/// budget, schedule, and how deep it may re-delegate).
pub fn authority_narrows(parent: &Authority, child: &Authority) -> Result<(), NotNarrower> {
    for a in &child.actions {
        if !parent.actions.iter().any(|p| action_within(a, p)) {
            return no(Rule::Action, format!("action {:?} is not within the parent's actions", a.as_str()));
        }
    }
    for r in &child.resources {
        if !parent.resources.iter().any(|p| r.within(p)) {
            return no(Rule::Resource, format!("resource pattern {:?} is not provably within one of the parent's patterns", r.as_str()));
        }
    }
    if let Some(pl) = &parent.limits.amount {
        let Some(cl) = &child.limits.amount else {
            return no(Rule::Amount, format!("the parent limits amounts ({} {}); the child must too", pl.max, pl.currency));
        };
        if cl.currency != pl.currency {
            return no(Rule::Amount, format!("the child's currency {} is not the parent's {}", cl.currency, pl.currency));
        }
        if cl.max > pl.max {
            return no(Rule::Amount, format!("the child's limits.amount.max {} is above the parent's {}", cl.max, pl.max));
        }
        if let Some(pd) = pl.per_day {
            match cl.per_day {
                None => return no(Rule::Budget, format!("the parent has a daily budget ({pd}); the child must have one too")),
                Some(cd) if cd > pd => {
                    return no(Rule::Budget, format!("the child's limits.amount.per_day {cd} is above the parent's {pd}"));
                }
                Some(_) => {}
            }
        }
    }
    if let Some(ps) = &parent.schedule {
        let Some(cs) = &child.schedule else {
            return no(Rule::Schedule, "the parent has a schedule; the child must have one within it");
        };
        if cs.timezone != ps.timezone {
            return no(Rule::Schedule, format!("the child's schedule must be in the parent's time zone {}", ps.timezone));
        }
        if !cs.days.iter().all(|d| ps.days.contains(d)) {
            return no(Rule::Schedule, "the child's schedule has days the parent's does not");
        }
        if cs.from < ps.from || cs.to > ps.to {
            return no(Rule::Schedule, "the child's daily window is not within the parent's");
        }
    }
    // Human approval: whatever needs a decision under the parent needs one under the child
    // too, or a sub-agent would be a way around the approver.
    if let Some(pa) = &parent.approval {
        let Some(ca) = &child.approval else {
            return no(Rule::Approval, "the parent requires approval for some requests; the child must too");
        };
        if !approval_at_least_as_strict(pa, ca) {
            return no(Rule::Approval, "the child's approval rule must cover every action and amount the parent's does");
        }
    }
    match (parent.delegable, child.delegable) {
        (None, _) => no(Rule::Depth, "the parent delegation does not allow re-delegation"),
        (Some(p), Some(c)) if c.max_depth >= p.max_depth => {
            no(Rule::Depth, format!("the child may re-delegate at most {} more level(s), not {}", p.max_depth - 1, c.max_depth))
        }
        _ => Ok(()),
    }
}

/// Whether `child` narrows `parent`: the authority rules, the same principal, validity
/// within the parent's, and the depth one below the parent's within
/// [`MAX_DELEGATION_DEPTH`].
pub fn narrows(parent: &Link<'_>, child: &Link<'_>) -> Result<(), NotNarrower> {
    if child.principal != parent.principal {
        return no(Rule::Principal, "a sub-delegation acts for the same principal as its parent");
    }
    if child.depth != parent.depth.saturating_add(1) || child.depth > MAX_DELEGATION_DEPTH {
        return no(Rule::Depth, format!("the child's depth must be {} (at most {MAX_DELEGATION_DEPTH})", parent.depth.saturating_add(1)));
    }
    if child.valid_from < parent.valid_from {
        return no(Rule::Validity, "the child may not be valid before its parent");
    }
    match (parent.valid_until, child.valid_until) {
        (Some(_), None) => return no(Rule::Validity, "the child must expire no later than its parent"),
        (Some(p), Some(c)) if c > p => return no(Rule::Validity, "the child must expire no later than its parent"),
        _ => {}
    }
    authority_narrows(parent.authority, child.authority)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{ActionRequest, AmountLimit, Grant, Limits, PrincipalKind, Schedule, check};
    use proptest::prelude::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn authority(
        actions: &[&str],
        resources: &[&str],
        amount: Option<(&str, &str, Option<&str>)>,
        schedule: Option<Schedule>,
    ) -> Authority {
        let amount = amount.map(|(m, c, d)| AmountLimit::parse(m, c, d).unwrap());
        Authority::new(
            &actions.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>(),
            &resources.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>(),
            Limits { amount },
            schedule,
        )
        .unwrap()
    }

    fn sched(tz: &str, days: &[&str], from: &str, to: &str) -> Schedule {
        Schedule::parse(tz, &days.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>(), from, to).unwrap()
    }

    fn alice() -> Principal {
        Principal::new("alice".into(), PrincipalKind::Person, None).unwrap()
    }

    fn rule(parent: &Authority, child: &Authority) -> Option<Rule> {
        authority_narrows(parent, child).err().map(|e| e.rule)
    }

    #[test]
    fn each_rule_refuses_a_widening() {
        let d = |n| Some(Delegable::new(n).unwrap());
        let parent = authority(
            &["orders:read", "refunds:*"],
            &["orders/*"],
            Some(("100", "EUR", Some("500"))),
            Some(sched("Europe/Berlin", &["mon", "tue"], "09:00", "17:00")),
        )
        .with_delegable(d(2));
        let ok = authority(
            &["orders:read", "refunds:create"],
            &["orders/1"],
            Some(("50", "EUR", Some("200"))),
            Some(sched("Europe/Berlin", &["mon"], "10:00", "12:00")),
        );
        assert_eq!(rule(&parent, &ok), None);
        assert_eq!(rule(&parent, &ok.clone().with_delegable(d(1))), None);
        let s = || Some(sched("Europe/Berlin", &["mon"], "10:00", "12:00"));
        let amt = Some(("50", "EUR", Some("200")));
        for (child, want) in [
            (authority(&["orders:*"], &["orders/1"], amt, s()), Rule::Action),
            (authority(&["invoices:read"], &["orders/1"], amt, s()), Rule::Action),
            (authority(&["orders:read"], &["orders/**"], amt, s()), Rule::Resource),
            (authority(&["orders:read"], &["orders/1"], None, s()), Rule::Amount),
            (authority(&["orders:read"], &["orders/1"], Some(("101", "EUR", Some("200"))), s()), Rule::Amount),
            (authority(&["orders:read"], &["orders/1"], Some(("50", "USD", Some("200"))), s()), Rule::Amount),
            (authority(&["orders:read"], &["orders/1"], Some(("50", "EUR", None)), s()), Rule::Budget),
            (authority(&["orders:read"], &["orders/1"], Some(("50", "EUR", Some("501"))), s()), Rule::Budget),
            (authority(&["orders:read"], &["orders/1"], amt, None), Rule::Schedule),
            (authority(&["orders:read"], &["orders/1"], amt, Some(sched("UTC", &["mon"], "10:00", "12:00"))), Rule::Schedule),
            (authority(&["orders:read"], &["orders/1"], amt, Some(sched("Europe/Berlin", &["sun"], "10:00", "12:00"))), Rule::Schedule),
            (authority(&["orders:read"], &["orders/1"], amt, Some(sched("Europe/Berlin", &["mon"], "08:00", "12:00"))), Rule::Schedule),
            (authority(&["orders:read"], &["orders/1"], amt, s()).with_delegable(d(2)), Rule::Depth),
        ] {
            assert_eq!(rule(&parent, &child), Some(want), "{child:?}");
        }
        // Approval: the child needs a decision wherever the parent does.
        let needs = |actions: &[&str], above: Option<(&str, &str)>| {
            let actions: Vec<String> = actions.iter().map(|a| (*a).to_owned()).collect();
            Some(crate::policy::ApprovalRule::new(&actions, above).unwrap())
        };
        let strict = parent.clone().with_approval(needs(&["refunds:*"], Some(("200", "EUR"))));
        for (child_rule, want) in [
            (needs(&["refunds:*"], Some(("200", "EUR"))), None),
            (needs(&[], Some(("100", "EUR"))), None),
            (needs(&["refunds:*", "orders:read"], None), None),
            (None, Some(Rule::Approval)),
            (needs(&["refunds:create"], Some(("200", "EUR"))), Some(Rule::Approval)),
            (needs(&["refunds:*"], Some(("201", "EUR"))), Some(Rule::Approval)),
            (needs(&["refunds:*"], Some(("100", "USD"))), Some(Rule::Approval)),
        ] {
            assert_eq!(rule(&strict, &ok.clone().with_approval(child_rule.clone())), want, "{child_rule:?}");
        }
        // A parent that does not allow re-delegation has no children at all.
        assert_eq!(rule(&parent.clone().with_delegable(None), &ok), Some(Rule::Depth));
        // `refunds:*` holds `refunds:x:*`, `refunds:*` itself, but not `refundsx:*`.
        let wide = authority(&["refunds:x:*", "refunds:*"], &["orders/1"], amt, s());
        assert_eq!(rule(&parent, &wide), None);
        assert_eq!(rule(&parent, &authority(&["refundsx:*"], &["orders/1"], amt, s())), Some(Rule::Action));
    }

    #[test]
    fn links_check_principal_validity_and_depth() {
        let p_auth = authority(&["orders:read"], &["orders/*"], None, None).with_delegable(Some(Delegable::new(1).unwrap()));
        let c_auth = authority(&["orders:read"], &["orders/1"], None, None);
        let (alice, bob) = (alice(), Principal::new("bob".into(), PrincipalKind::Person, None).unwrap());
        let parent = Link {
            principal: &alice,
            authority: &p_auth,
            valid_from: ts("2026-01-01T00:00:00Z"),
            valid_until: Some(ts("2027-01-01T00:00:00Z")),
            depth: 0,
        };
        let child = Link { depth: 1, authority: &c_auth, ..parent };
        assert_eq!(narrows(&parent, &child), Ok(()));
        let r = |c: Link<'_>| narrows(&parent, &c).err().map(|e| e.rule);
        assert_eq!(r(Link { principal: &bob, ..child }), Some(Rule::Principal));
        assert_eq!(r(Link { depth: 2, ..child }), Some(Rule::Depth));
        assert_eq!(r(Link { depth: 0, ..child }), Some(Rule::Depth));
        assert_eq!(r(Link { valid_from: ts("2025-12-31T00:00:00Z"), ..child }), Some(Rule::Validity));
        assert_eq!(r(Link { valid_until: Some(ts("2027-01-01T00:00:01Z")), ..child }), Some(Rule::Validity));
        assert_eq!(r(Link { valid_until: None, ..child }), Some(Rule::Validity));
        assert!(Delegable::new(0).is_err() && Delegable::new(MAX_DELEGATION_DEPTH + 1).is_err());
        assert!(serde_json::from_value::<Delegable>(serde_json::json!({"maxDepth": 9})).is_err());
    }

    /// Small pools so that accepted children and granted requests are both common.
    fn arb_authority() -> impl Strategy<Value = Authority> {
        let actions = proptest::collection::vec(
            proptest::sample::select(vec!["orders:read", "orders:*", "orders:x:*", "orders:x:y", "refunds:create", "refunds:*"]),
            1..3,
        );
        let resources = proptest::collection::vec(
            proptest::sample::select(vec![
                "orders/*",
                "orders/**",
                "orders/1",
                "orders/1*",
                "orders/[0-5]",
                "*",
                "**",
                "a/**/b",
                "a/*/b",
                "orders/?",
            ]),
            1..3,
        );
        let amount = proptest::option::of((
            proptest::sample::select(vec!["10", "50", "100"]),
            proptest::sample::select(vec!["EUR", "EUR", "EUR", "USD"]),
            proptest::option::weighted(0.3, proptest::sample::select(vec!["100", "500"])),
        ));
        let schedule = proptest::option::weighted(
            0.6,
            (
                proptest::sample::select(vec!["Europe/Berlin", "Europe/Berlin", "Europe/Berlin", "UTC"]),
                proptest::sample::subsequence(vec!["mon", "tue", "wed", "thu", "fri", "sat", "sun"], 5..8),
                proptest::sample::select(vec!["00:00", "08:00", "10:00"]),
                proptest::sample::select(vec!["12:00", "18:00", "24:00"]),
            ),
        );
        let delegable = proptest::option::of(1u8..=3);
        (actions, resources, amount, schedule, delegable).prop_map(|(a, r, amt, s, d)| {
            let amt = amt.map(|(m, c, pd)| (m, c, pd.filter(|pd| pd.parse::<u32>().unwrap() >= m.parse::<u32>().unwrap())));
            authority(&a, &r, amt, s.map(|(tz, days, f, t)| sched(tz, &days, f, t))).with_delegable(d.map(|n| Delegable::new(n).unwrap()))
        })
    }

    /// A child drawn from its parent: each field the parent's own, or random (so that
    /// accepted children are common, and so are children that widen one field).
    fn arb_pair() -> impl Strategy<Value = (Authority, Authority)> {
        (arb_authority(), arb_authority(), proptest::collection::vec(proptest::bool::weighted(0.7), 5), proptest::option::of(1u8..=3))
            .prop_map(|(parent, random, keep, d)| {
                let parent = parent.with_delegable(Some(Delegable::new(d.unwrap_or(2).max(1)).unwrap()));
                let pick = |i: usize| keep.get(i).copied().unwrap_or(false);
                let child = Authority {
                    actions: if pick(0) { parent.actions.clone() } else { random.actions.clone() },
                    resources: if pick(1) { parent.resources.clone() } else { random.resources.clone() },
                    limits: if pick(2) { parent.limits.clone() } else { random.limits.clone() },
                    // Not kept: the parent's window with the random one's hours (and, a
                    // third of the time, its days or zone), so widenings are common.
                    schedule: match (pick(3), &parent.schedule, &random.schedule) {
                        (true, p, _) => p.clone(),
                        (false, Some(p), Some(r)) => Some(Schedule {
                            from: r.from,
                            to: r.to,
                            days: if d == Some(1) { r.days.clone() } else { p.days.clone() },
                            ..if d == Some(2) { r.clone() } else { p.clone() }
                        }),
                        (false, _, r) => r.clone(),
                    },
                    delegable: if pick(4) { None } else { random.delegable },
                    approval: None,
                };
                (parent, child)
            })
    }

    fn arb_rule() -> impl Strategy<Value = Option<crate::policy::ApprovalRule>> {
        let actions = proptest::sample::subsequence(vec!["refunds:create", "refunds:*", "orders:read", "orders:x:*"], 0..=3);
        let above =
            proptest::option::of((proptest::sample::select(vec!["50", "100", "200"]), proptest::sample::select(vec!["EUR", "USD"])));
        proptest::option::of((actions, above)).prop_map(|r| {
            r.map(|(actions, above)| {
                let actions: Vec<String> = actions.into_iter().map(str::to_owned).collect();
                crate::policy::ApprovalRule::new(&actions, above).unwrap()
            })
        })
    }

    proptest! {
        #![proptest_config(crate::fuzz::config(4000))]

        /// A sub-agent is never a way around the approver: when a child is accepted as
        /// narrower, every request the parent's rule sends to an approver, the child's does.
        /// The child's rule is mostly the parent's with one change (a threshold moved, the
        /// currency swapped, an action dropped, the rule dropped) and the request mostly
        /// sits just above the parent's threshold, so the boundaries are what is asked.
        #[test]
        fn no_child_needs_approval_for_less_than_its_parent(
            parent_rule in arb_rule(),
            random_child in arb_rule(),
            change in 0usize..6,
            moved in proptest::sample::select(vec!["50", "99", "100", "150", "199", "200", "250"]),
            action in proptest::sample::select(vec!["refunds:create", "refunds:void", "orders:read", "orders:x:y", "invoices:pay"]),
            amount in proptest::option::of((proptest::sample::select(vec!["10", "50", "100", "150", "200", "500"]), proptest::sample::select(vec!["EUR", "USD"]))),
            near in any::<bool>(),
        ) {
            use crate::policy::{ApprovalRule, Threshold};
            let child_rule = match (change, &parent_rule) {
                (0, _) | (_, None) => random_child,
                (1, Some(p)) => Some(ApprovalRule { above: p.above.clone().map(|t| Threshold { amount: moved.parse().unwrap(), ..t }), ..p.clone() }),
                (2, Some(p)) => Some(ApprovalRule {
                    above: p.above.clone().map(|t| Threshold { currency: if t.currency == "EUR" { "USD".into() } else { "EUR".into() }, ..t }),
                    ..p.clone()
                }),
                (3, Some(p)) => Some(ApprovalRule { actions: p.actions.iter().skip(1).cloned().collect(), ..p.clone() }),
                (4, Some(p)) => Some(p.clone()),
                _ => None,
            };
            let base = authority(&["refunds:*", "orders:*", "invoices:*"], &["**"], None, None);
            let parent = base.clone().with_delegable(Some(Delegable::new(2).unwrap())).with_approval(parent_rule.clone());
            let child = base.with_approval(child_rule.clone());
            // Just above the parent's threshold, for an action it names, half the time.
            let named = parent_rule.as_ref().and_then(|r| r.actions.first()).map(|a| a.as_str().replace(":*", ":y"));
            let action = match (&named, near) {
                (Some(a), true) => a.as_str(),
                _ => action,
            };
            let amount: Option<(rust_decimal::Decimal, String)> = match (parent_rule.as_ref().and_then(|r| r.above.as_ref()), near) {
                (Some(t), true) => Some((t.amount + rust_decimal::Decimal::ONE, t.currency.clone())),
                _ => amount.map(|(a, c)| (a.parse().unwrap(), c.to_owned())),
            };
            if authority_narrows(&parent, &child).is_ok() {
                let req = ActionRequest { action, resource: None, amount: amount.as_ref().map(|a| a.0), currency: amount.as_ref().map(|a| a.1.as_str()) };
                if parent_rule.as_ref().is_some_and(|r| r.requires(&req)) {
                    prop_assert!(child_rule.as_ref().is_some_and(|r| r.requires(&req)), "{parent_rule:?} needs approval for {req:?}, {child_rule:?} does not");
                }
            }
        }
    }

    proptest! {
        #![proptest_config(crate::fuzz::config(4000))]

        /// The property: no child delegation ever covers a request its parent does
        /// not. Random parent, child, request and instant; when the child is accepted as
        /// narrower and its evaluation grants the request, the parent's grants it too.
        #[test]
        fn no_child_covers_what_its_parent_does_not(
            (parent, child) in arb_pair(),
            action in proptest::sample::select(vec!["orders:read", "orders:write", "orders:x:y", "orders:x:z", "refunds:create", "refunds:void"]),
            resource in proptest::sample::select(vec!["orders/1", "orders/12", "orders/7", "orders/1/2", "orders/a", "a/b", "a/x/b", "a/x/y/b", "x", ""]),
            amount in proptest::option::of((proptest::sample::select(vec!["5", "10", "60", "100", "200"]), proptest::sample::select(vec!["EUR", "USD"]))),
            p_window in (0i64..200, 1i64..200),
            shrink in (-20i64..100, -20i64..100),
            at in -10i64..110,
            derive in (any::<bool>(), any::<bool>(), any::<bool>(), 0usize..4),
        ) {
            // Times in hours: parent [from, from+len), child the parent's moved inwards (or
            // outwards, sometimes).
            let base = ts("2026-06-01T00:00:00Z").as_second();
            let t = |h: i64| Timestamp::from_second(base + h * 3_600).unwrap();
            let (pf, pu) = (p_window.0, p_window.0 + p_window.1);
            let (cf, cu) = (pf + shrink.0, (pu - shrink.1).max(pf + shrink.0 + 1));
            let alice = alice();
            let p = Link { principal: &alice, authority: &parent, valid_from: t(pf), valid_until: Some(t(pu)), depth: 0 };
            let c = Link { principal: &alice, authority: &child, valid_from: t(cf), valid_until: Some(t(cu)), depth: 1 };
            // Mostly inside the child's window (a percentage of it), sometimes just outside.
            let now = Timestamp::from_second(base + cf * 3_600 + (cu - cf) * 36 * at + 1_234).unwrap();
            // Half the time, the request is one the child covers (else random), so that the
            // parent's answer is asked about the requests that matter.
            let pick = |n: usize| derive.3 % n;
            let action = if derive.0 {
                let a = child.actions[pick(child.actions.len())].as_str();
                a.strip_suffix(":*").map_or_else(|| a.to_owned(), |p| format!("{p}:y"))
            } else {
                action.to_owned()
            };
            let resource = if derive.1 {
                match child.resources[pick(child.resources.len())].as_str() {
                    "orders/*" | "orders/1*" => "orders/12",
                    "orders/**" => "orders/1/2",
                    "orders/[0-5]" => "orders/3",
                    "orders/?" => "orders/7",
                    "*" => "x",
                    "**" | "a/**/b" => "a/x/y/b",
                    "a/*/b" => "a/x/b",
                    other => other,
                }
            } else {
                resource
            };
            // At the child's own limit: the boundary a widened limit would cross.
            let amount = match (&child.limits.amount, derive.2) {
                (Some(l), true) => Some((l.max, l.currency.as_str())),
                _ => amount.map(|(a, c)| (a.parse().unwrap(), c)),
            };
            let req = ActionRequest {
                action: &action,
                resource: (!resource.is_empty()).then_some(resource),
                amount: amount.map(|(a, _)| a),
                currency: amount.map(|(_, c)| c),
            };
            fn grant<'a>(l: &Link<'a>) -> Grant<'a> {
                Grant { authority: l.authority, valid_from: l.valid_from, valid_until: l.valid_until, revoked: false, suspended: false }
            }
            if narrows(&p, &c).is_ok() && check(&grant(&c), &req, now).is_ok() {
                prop_assert!(check(&grant(&p), &req, now).is_ok(), "child {:?} grants {:?} at {} but parent {:?} does not", child, req, now, parent);
            }
        }
    }
}

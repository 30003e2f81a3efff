//! The decision: does one of the agent's delegations cover this action right now?
//!
//! Each delegation is checked in a fixed order (action, resource, revoked, suspended,
//! validity window, currency, amount, schedule). When none covers the request, the denial
//! reported is the one from the delegation that got furthest, so the agent is told the
//! most specific reason ("amount_exceeds_limit" rather than "action_not_allowed").

use crate::codes::ErrorCode;
use jiff::Timestamp;
use rust_decimal::Decimal;

use super::Authority;

/// The action an agent wants to perform.
#[derive(Debug, Clone)]
pub struct ActionRequest<'a> {
    pub action: &'a str,
    pub resource: Option<&'a str>,
    pub amount: Option<Decimal>,
    pub currency: Option<&'a str>,
}

/// One delegation as the policy sees it.
#[derive(Debug, Clone, Copy)]
pub struct Grant<'a> {
    pub authority: &'a Authority,
    pub valid_from: Timestamp,
    pub valid_until: Option<Timestamp>,
    pub revoked: bool,
    pub suspended: bool,
}

/// Why nothing covers the request. The codes are part of the API contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Denial {
    NoDelegation,
    ActionNotAllowed,
    ResourceNotAllowed,
    CredentialRevoked,
    CredentialSuspended,
    CredentialNotYetValid,
    CredentialExpired,
    CurrencyMismatch,
    AmountExceedsLimit,
    OutsideSchedule,
    AgentSuspended,
}

impl Denial {
    /// The stable machine code of this denial.
    pub fn error_code(self) -> ErrorCode {
        match self {
            Denial::NoDelegation => ErrorCode::NoDelegation,
            Denial::ActionNotAllowed => ErrorCode::ActionNotAllowed,
            Denial::ResourceNotAllowed => ErrorCode::ResourceNotAllowed,
            Denial::CredentialRevoked => ErrorCode::CredentialRevoked,
            Denial::CredentialSuspended => ErrorCode::CredentialSuspended,
            Denial::CredentialNotYetValid => ErrorCode::CredentialNotYetValid,
            Denial::CredentialExpired => ErrorCode::CredentialExpired,
            Denial::CurrencyMismatch => ErrorCode::CurrencyMismatch,
            Denial::AmountExceedsLimit => ErrorCode::AmountExceedsLimit,
            Denial::OutsideSchedule => ErrorCode::OutsideSchedule,
            Denial::AgentSuspended => ErrorCode::AgentSuspended,
        }
    }

    /// The code as it appears on the wire (audit entries, metrics, problem `code`).
    pub fn code(self) -> &'static str {
        self.error_code().as_str()
    }

    /// Human-readable explanation.
    pub fn detail(self) -> &'static str {
        match self {
            Denial::NoDelegation => "the agent holds no delegation",
            Denial::ActionNotAllowed => "no delegation allows this action",
            Denial::ResourceNotAllowed => "no delegation for this action covers this resource",
            Denial::CredentialRevoked => "the delegation covering this action is revoked",
            Denial::CredentialSuspended => "the delegation covering this action is suspended",
            Denial::CredentialNotYetValid => "the delegation covering this action is not valid yet",
            Denial::CredentialExpired => "the delegation covering this action has expired",
            Denial::CurrencyMismatch => "the delegation limits amounts in another currency",
            Denial::AmountExceedsLimit => "the amount exceeds the delegated limit (or is missing where a limit applies)",
            Denial::OutsideSchedule => "the delegation does not allow this action at this time",
            Denial::AgentSuspended => "the agent is suspended",
        }
    }
}

/// Resource names are `/`-separated paths without empty, `.` or `..` segments, so a glob
/// such as `orders/*` can never be satisfied by `orders/` or escape with `orders/../x`.
pub fn well_formed_resource(r: &str) -> bool {
    r.is_empty()
        || (r.chars().count() <= 512
            && !r.chars().any(char::is_control)
            && r.split('/').all(|seg| !seg.is_empty() && seg != "." && seg != ".."))
}

/// Checks one delegation; `Ok(())` when it covers the request.
pub fn check(g: &Grant<'_>, req: &ActionRequest<'_>, now: Timestamp) -> Result<(), Denial> {
    let a = g.authority;
    if !a.actions.iter().any(|p| p.covers(req.action)) {
        return Err(Denial::ActionNotAllowed);
    }
    let resource = req.resource.unwrap_or("");
    if !well_formed_resource(resource) || !a.resources.iter().any(|p| p.covers(resource)) {
        return Err(Denial::ResourceNotAllowed);
    }
    if g.revoked {
        return Err(Denial::CredentialRevoked);
    }
    if g.suspended {
        return Err(Denial::CredentialSuspended);
    }
    if now < g.valid_from {
        return Err(Denial::CredentialNotYetValid);
    }
    if g.valid_until.is_some_and(|u| now >= u) {
        return Err(Denial::CredentialExpired);
    }
    if let Some(limit) = &a.limits.amount {
        // A limited delegation only covers requests that state their amount.
        let (Some(amount), Some(currency)) = (req.amount, req.currency) else {
            return Err(Denial::AmountExceedsLimit);
        };
        if currency != limit.currency {
            return Err(Denial::CurrencyMismatch);
        }
        if amount > limit.max {
            return Err(Denial::AmountExceedsLimit);
        }
    }
    if let Some(s) = &a.schedule {
        if !s.contains(now) {
            return Err(Denial::OutsideSchedule);
        }
    }
    Ok(())
}

/// Picks the first delegation covering the request, or the most specific denial.
pub fn decide(agent_active: bool, grants: &[Grant<'_>], req: &ActionRequest<'_>, now: Timestamp) -> Result<usize, Denial> {
    if !agent_active {
        return Err(Denial::AgentSuspended);
    }
    let mut best = Denial::NoDelegation;
    for (i, g) in grants.iter().enumerate() {
        match check(g, req, now) {
            Ok(()) => return Ok(i),
            Err(d) => best = best.max(d),
        }
    }
    Err(best)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{AmountLimit, Limits, Schedule};
    use proptest::prelude::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn auth(actions: &[&str], resources: &[&str], limit: Option<(&str, &str)>, schedule: Option<Schedule>) -> Authority {
        let amount = limit.map(|(m, c)| AmountLimit::parse(m, c, None).unwrap());
        Authority::new(
            &actions.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>(),
            &resources.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>(),
            Limits { amount },
            schedule,
        )
        .unwrap()
    }

    fn grant(a: &Authority) -> Grant<'_> {
        Grant {
            authority: a,
            valid_from: ts("2026-01-01T00:00:00Z"),
            valid_until: Some(ts("2027-01-01T00:00:00Z")),
            revoked: false,
            suspended: false,
        }
    }

    fn req<'a>(action: &'a str, resource: Option<&'a str>, amount: Option<&str>, currency: Option<&'a str>) -> ActionRequest<'a> {
        ActionRequest { action, resource, amount: amount.map(|a| a.parse().unwrap()), currency }
    }

    const NOW: &str = "2026-06-10T10:00:00Z";

    #[test]
    fn amounts_at_and_around_the_limit() {
        let a = auth(&["refunds:create"], &["orders/*"], Some(("500.00", "EUR")), None);
        let g = [grant(&a)];
        let now = ts(NOW);
        let d = |amt: Option<&str>, cur: Option<&str>| decide(true, &g, &req("refunds:create", Some("orders/1"), amt, cur), now);
        assert_eq!(d(Some("500.00"), Some("EUR")), Ok(0));
        assert_eq!(d(Some("500"), Some("EUR")), Ok(0));
        assert_eq!(d(Some("499.999"), Some("EUR")), Ok(0));
        assert_eq!(d(Some("500.001"), Some("EUR")), Err(Denial::AmountExceedsLimit));
        assert_eq!(d(Some("500.01"), Some("EUR")), Err(Denial::AmountExceedsLimit));
        assert_eq!(d(Some("100.00"), Some("USD")), Err(Denial::CurrencyMismatch));
        assert_eq!(d(None, None), Err(Denial::AmountExceedsLimit));
    }

    #[test]
    fn every_denial_reason() {
        let now = ts(NOW);
        let a = auth(&["refunds:create", "orders:*"], &["orders/*"], None, None);
        let mut g = grant(&a);
        assert_eq!(decide(true, &[], &req("refunds:create", None, None, None), now), Err(Denial::NoDelegation));
        assert_eq!(decide(false, &[g], &req("refunds:create", Some("orders/1"), None, None), now), Err(Denial::AgentSuspended));
        assert_eq!(decide(true, &[g], &req("invoices:pay", Some("orders/1"), None, None), now), Err(Denial::ActionNotAllowed));
        assert_eq!(decide(true, &[g], &req("orders:read", Some("invoices/1"), None, None), now), Err(Denial::ResourceNotAllowed));
        assert_eq!(decide(true, &[g], &req("orders:read", None, None, None), now), Err(Denial::ResourceNotAllowed));
        assert_eq!(decide(true, &[g], &req("orders:read", Some("orders/7"), None, None), now), Ok(0));
        g.revoked = true;
        assert_eq!(decide(true, &[g], &req("orders:read", Some("orders/7"), None, None), now), Err(Denial::CredentialRevoked));
        g.revoked = false;
        g.suspended = true;
        assert_eq!(decide(true, &[g], &req("orders:read", Some("orders/7"), None, None), now), Err(Denial::CredentialSuspended));
        g.suspended = false;
        assert_eq!(
            decide(true, &[g], &req("orders:read", Some("orders/7"), None, None), ts("2027-01-01T00:00:00Z")),
            Err(Denial::CredentialExpired)
        );
        assert_eq!(
            decide(true, &[g], &req("orders:read", Some("orders/7"), None, None), ts("2025-12-31T23:59:59Z")),
            Err(Denial::CredentialNotYetValid)
        );
    }

    #[test]
    fn most_specific_denial_wins_and_any_covering_grant_allows() {
        let now = ts(NOW);
        let small = auth(&["refunds:create"], &["orders/*"], Some(("50.00", "EUR")), None);
        let other = auth(&["invoices:pay"], &["*"], None, None);
        let big = auth(&["refunds:create"], &["orders/*"], Some(("500.00", "EUR")), None);
        let r = req("refunds:create", Some("orders/1"), Some("120.00"), Some("EUR"));
        assert_eq!(decide(true, &[grant(&other), grant(&small)], &r, now), Err(Denial::AmountExceedsLimit));
        assert_eq!(decide(true, &[grant(&small), grant(&other), grant(&big)], &r, now), Ok(2));
    }

    #[test]
    fn business_hours_follow_daylight_saving_time() {
        let days: Vec<String> = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"].iter().map(|s| (*s).to_owned()).collect();
        let s = Schedule::parse("Europe/Berlin", &days, "09:00", "17:00").unwrap();
        let a = auth(&["refunds:create"], &["*"], None, Some(s));
        let g = [grant(&a)];
        let at = |t: &str| decide(true, &g, &req("refunds:create", None, None, None), ts(t));
        // Winter (CET, UTC+1): 09:00 local = 08:00Z.
        assert_eq!(at("2026-03-27T07:59:59Z"), Err(Denial::OutsideSchedule));
        assert_eq!(at("2026-03-27T08:00:00Z"), Ok(0));
        assert_eq!(at("2026-03-27T15:59:59Z"), Ok(0));
        assert_eq!(at("2026-03-27T16:00:00Z"), Err(Denial::OutsideSchedule));
        // DST starts 2026-03-29 02:00 local. Summer (CEST, UTC+2): 09:00 local = 07:00Z.
        assert_eq!(at("2026-03-30T07:00:00Z"), Ok(0));
        assert_eq!(at("2026-03-30T06:59:59Z"), Err(Denial::OutsideSchedule));
        assert_eq!(at("2026-03-30T15:00:00Z"), Err(Denial::OutsideSchedule));
        // DST ends 2026-10-25 03:00 local; back to UTC+1.
        assert_eq!(at("2026-10-26T07:30:00Z"), Err(Denial::OutsideSchedule));
        assert_eq!(at("2026-10-26T08:00:00Z"), Ok(0));
    }

    #[test]
    fn weekdays_are_local_days() {
        let s = Schedule::parse("Pacific/Auckland", &["mon".to_owned()], "00:00", "24:00").unwrap();
        let a = auth(&["x:y"], &["*"], None, Some(s));
        let g = [grant(&a)];
        // Sunday 2026-06-07 13:00Z is Monday 01:00 in Auckland (UTC+12 in June).
        assert_eq!(decide(true, &g, &req("x:y", None, None, None), ts("2026-06-07T13:00:00Z")), Ok(0));
        assert_eq!(decide(true, &g, &req("x:y", None, None, None), ts("2026-06-08T13:00:00Z")), Err(Denial::OutsideSchedule));
    }

    /// An independent, deliberately naive statement of what "covered" means.
    fn oracle(actions: &[String], resources: &[String], max: Option<i64>, action: &str, resource: &str, amount: Option<i64>) -> bool {
        let act = actions.iter().any(|p| match p.strip_suffix(":*") {
            Some(ns) => action.len() > ns.len() + 1 && action.starts_with(&format!("{ns}:")),
            None => p == action,
        });
        let res = resources.iter().any(|p| match p.strip_suffix("/*") {
            Some(dir) => resource
                .strip_prefix(&format!("{dir}/"))
                .is_some_and(|rest| !rest.is_empty() && !rest.contains('/') && rest != "." && rest != ".."),
            None => p == resource,
        });
        let amt = match max {
            Some(m) => amount.is_some_and(|a| a <= m),
            None => true,
        };
        act && res && amt
    }

    proptest! {
        #[test]
        fn never_allows_what_the_authority_does_not_cover(
            ns in proptest::sample::select(vec!["orders", "refunds", "invoices"]),
            wildcard in any::<bool>(),
            verb in proptest::sample::select(vec!["read", "create", "delete"]),
            req_ns in proptest::sample::select(vec!["orders", "refunds", "invoices", "ordersx"]),
            req_verb in proptest::sample::select(vec!["read", "create", "delete", ""]),
            dir in proptest::sample::select(vec!["orders", "customers"]),
            req_res in proptest::sample::select(vec!["orders/1", "orders/1/x", "customers/9", "orders", "", "orders/", "orders/..", "orders//1"]),

            max in proptest::option::of(0i64..1000),
            amount in proptest::option::of(0i64..2000),
        ) {
            let actions = vec![if wildcard { format!("{ns}:*") } else { format!("{ns}:{verb}") }];
            let resources = vec![format!("{dir}/*")];
            let limit = max.map(|m| AmountLimit::parse(&m.to_string(), "EUR", None).unwrap());
            let a = Authority::new(&actions, &resources, Limits { amount: limit }, None).unwrap();
            let action = if req_verb.is_empty() { req_ns.to_owned() } else { format!("{req_ns}:{req_verb}") };
            let r = ActionRequest { action: &action, resource: Some(req_res), amount: amount.map(Decimal::from), currency: Some("EUR") };
            let allowed = decide(true, &[grant(&a)], &r, ts(NOW)).is_ok();
            prop_assert_eq!(allowed, oracle(&actions, &resources, max, &action, req_res, amount));
        }
    }
}

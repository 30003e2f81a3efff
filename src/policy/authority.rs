//! The authority a delegation grants, parsed once from untrusted input ("parse, don't
//! validate"): action patterns, resource globs, amount limits and a weekly schedule in an
//! IANA time zone. The serde form is the one inside credentials (camelCase).

use jiff::civil::{Time, Weekday};
use jiff::tz::TimeZone;
use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::glob_match::Glob;
use super::narrowing::Delegable;

/// Why an authority was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct AuthorityError(pub String);

fn err(s: impl Into<String>) -> AuthorityError {
    AuthorityError(s.into())
}

/// Who delegated: a person or a role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PrincipalKind {
    Person,
    Role,
}

/// The principal on whose behalf a delegation is issued.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Principal {
    /// Stable identifier chosen by the tenant (an e-mail, employee number, role name).
    pub identifier: String,
    pub kind: PrincipalKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

impl Principal {
    /// Validates the fields.
    pub fn new(identifier: String, kind: PrincipalKind, name: Option<String>) -> Result<Self, AuthorityError> {
        let ok = |s: &str| !s.trim().is_empty() && s.chars().count() <= 200 && !s.chars().any(char::is_control);
        if !ok(&identifier) {
            return Err(err("principal.id must be 1–200 characters without control characters"));
        }
        if name.as_deref().is_some_and(|n| !ok(n)) {
            return Err(err("principal.name must be 1–200 characters without control characters"));
        }
        Ok(Self { identifier, kind, name })
    }
}

/// The longest action (pattern) accepted, in bytes. Checked before the text is split into
/// segments, so an over-long input (a body of colons) costs no allocation, and the error
/// does not echo it.
pub const MAX_ACTION: usize = 128;

/// An action name (`refunds:create`) or a namespace wildcard (`orders:*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionPattern(String);

impl ActionPattern {
    /// Parses `seg(:seg)*` where segments are `[a-z0-9_.-]+` and only the last may be `*`.
    pub fn parse(s: &str) -> Result<Self, AuthorityError> {
        if s.len() > MAX_ACTION {
            return Err(err(format!("action must be at most {MAX_ACTION} bytes")));
        }
        let segs: Vec<&str> = s.split(':').collect();
        let n = segs.len();
        let valid = (2..=8).contains(&n)
            && segs.iter().enumerate().all(|(i, seg)| {
                (*seg == "*" && i + 1 == n && i > 0)
                    || (!seg.is_empty() && seg.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_.-".contains(&b)))
            });
        if !valid {
            return Err(err(format!("action {s:?} must look like 'namespace:verb' (lowercase, digits, _ . -), optionally ending in ':*'")));
        }
        Ok(Self(s.to_owned()))
    }

    /// The pattern text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether this pattern covers the concrete action `action`.
    pub fn covers(&self, action: &str) -> bool {
        match self.0.strip_suffix(":*") {
            Some(prefix) => action.strip_prefix(prefix).is_some_and(|rest| rest.starts_with(':') && rest.len() > 1),
            None => self.0 == action,
        }
    }
}

/// The longest resource pattern accepted, in characters.
pub const MAX_RESOURCE_PATTERN: usize = 256;

/// A resource glob (`orders/*`, `customers/**`); `*` stays within one path segment.
#[derive(Debug, Clone)]
pub struct ResourcePattern {
    raw: String,
    glob: Glob,
}

impl PartialEq for ResourcePattern {
    fn eq(&self, other: &Self) -> bool {
        self.raw == other.raw
    }
}
impl Eq for ResourcePattern {}

impl ResourcePattern {
    /// Parses a glob; refuses empty, over-long, control characters and malformed patterns.
    /// The `glob` crate validates the syntax; matching is [`Glob`]'s (bounded work).
    pub fn parse(s: &str) -> Result<Self, AuthorityError> {
        // Bytes first (no character takes more than 4), so an over-long input is not walked.
        if s.len() > 4 * MAX_RESOURCE_PATTERN || s.chars().count() > MAX_RESOURCE_PATTERN {
            return Err(err(format!("a resource pattern must be at most {MAX_RESOURCE_PATTERN} characters")));
        }
        if s.is_empty() || s.chars().any(char::is_control) {
            return Err(err(format!("resource pattern {s:?} must be 1–{MAX_RESOURCE_PATTERN} printable characters")));
        }
        glob::Pattern::new(s).map_err(|e| err(format!("resource pattern {s:?} is not a valid glob: {}", e.msg)))?;
        Ok(Self { raw: s.to_owned(), glob: Glob::new(s) })
    }

    /// The pattern text.
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// Whether `resource` matches (a request without a resource is matched as "").
    pub fn covers(&self, resource: &str) -> bool {
        self.glob.matches(resource)
    }

    /// Whether every resource `self` matches is provably matched by `parent` (sound, not
    /// complete: see `Glob::within`).
    pub fn within(&self, parent: &ResourcePattern) -> bool {
        self.glob.within(&parent.glob)
    }
}

/// An amount limit: per request `max`, optional cumulative `perDay`, one currency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AmountLimit {
    #[serde(with = "rust_decimal::serde::str")]
    pub max: Decimal,
    pub currency: String,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "rust_decimal::serde::str_option")]
    pub per_day: Option<Decimal>,
}

impl AmountLimit {
    /// Validates a limit given as decimal strings.
    pub fn parse(max: &str, currency: &str, per_day: Option<&str>) -> Result<Self, AuthorityError> {
        let max = parse_amount("limits.amount.max", max)?;
        let per_day = per_day.map(|p| parse_amount("limits.amount.per_day", p)).transpose()?;
        if per_day.is_some_and(|p| p < max) {
            return Err(err("limits.amount.per_day must be at least limits.amount.max"));
        }
        if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(err(format!("currency {currency:?} must be an ISO 4217 code like EUR")));
        }
        Ok(Self { max, currency: currency.to_owned(), per_day })
    }
}

/// Parses a non-negative decimal amount string (`"500.00"`), never a float.
pub fn parse_amount(field: &str, s: &str) -> Result<Decimal, AuthorityError> {
    let shape_ok = !s.is_empty()
        && s.len() <= 32
        && s.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && s.bytes().filter(|b| *b == b'.').count() <= 1
        && !s.starts_with('.')
        && !s.ends_with('.')
        // 28 integer digits is what a 96-bit decimal always holds (zeros included).
        && s.split('.').next().is_some_and(|int| int.len() <= 28);
    if !shape_ok {
        return Err(err(format!("{field} must be a non-negative decimal string like \"500.00\"")));
    }
    s.parse::<Decimal>().map_err(|_| err(format!("{field} is out of range")))
}

/// Limits of a delegation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount: Option<AmountLimit>,
}

/// A weekly window in a time zone: on `days`, from `from` (inclusive) to `to` (exclusive),
/// wall-clock time in `timezone` (so DST shifts move the window with local time).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    pub timezone: String,
    pub tz: TimeZone,
    pub days: Vec<Weekday>,
    pub from: Time,
    pub to: Time,
}

const DAY_NAMES: [(&str, Weekday); 7] = [
    ("mon", Weekday::Monday),
    ("tue", Weekday::Tuesday),
    ("wed", Weekday::Wednesday),
    ("thu", Weekday::Thursday),
    ("fri", Weekday::Friday),
    ("sat", Weekday::Saturday),
    ("sun", Weekday::Sunday),
];

/// The longest time zone name looked up, in bytes: the longest IANA name is 32
/// (`America/Argentina/ComodRivadavia`). Checked before the lookup, and so that the error
/// (which names the zone) never echoes a whole request body.
pub const MAX_TIMEZONE: usize = 64;

fn parse_hhmm(field: &str, s: &str) -> Result<Time, AuthorityError> {
    let bad = || err(format!("schedule.{field} must be HH:MM (24-hour)"));
    let (h, m) = s.split_once(':').ok_or_else(bad)?;
    // Digits only: `i8::from_str` would also take a sign (`+9`).
    if h.len() != 2 || m.len() != 2 || !h.bytes().chain(m.bytes()).all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let h: i8 = h.parse().map_err(|_| bad())?;
    let m: i8 = m.parse().map_err(|_| bad())?;
    if h == 24 && m == 0 {
        return Ok(Time::MAX);
    }
    Time::new(h, m, 0, 0).map_err(|_| bad())
}

fn fmt_hhmm(t: Time) -> String {
    if t == Time::MAX { "24:00".into() } else { format!("{:02}:{:02}", t.hour(), t.minute()) }
}

impl Schedule {
    /// Validates a schedule; `to` must be after `from` (overnight windows are two
    /// delegations, so a window never silently spans two days).
    pub fn parse(timezone: &str, days: &[String], from: &str, to: &str) -> Result<Self, AuthorityError> {
        if timezone.len() > MAX_TIMEZONE {
            return Err(err(format!("schedule.timezone must be at most {MAX_TIMEZONE} bytes")));
        }
        let tz = TimeZone::get(timezone).map_err(|_| err(format!("schedule.timezone {timezone:?} is not an IANA time zone")))?;
        if days.is_empty() || days.len() > 7 {
            return Err(err("schedule.days must list 1–7 days"));
        }
        let mut parsed = Vec::new();
        for d in days {
            let wd = DAY_NAMES
                .iter()
                .find(|(n, _)| n == d)
                .map(|(_, w)| *w)
                .ok_or_else(|| err(format!("schedule.days: {d:?} is not one of mon tue wed thu fri sat sun")))?;
            if parsed.contains(&wd) {
                return Err(err(format!("schedule.days lists {d:?} twice")));
            }
            parsed.push(wd);
        }
        let (f, t) = (parse_hhmm("from", from)?, parse_hhmm("to", to)?);
        if f >= t {
            return Err(err("schedule.to must be later than schedule.from"));
        }
        Ok(Self { timezone: timezone.to_owned(), tz, days: parsed, from: f, to: t })
    }

    /// Whether `at` falls inside the window (local wall-clock time in the zone).
    pub fn contains(&self, at: jiff::Timestamp) -> bool {
        let local = at.to_zoned(self.tz.clone());
        let time = local.time();
        self.days.contains(&local.weekday()) && time >= self.from && (time < self.to || self.to == Time::MAX)
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScheduleWire {
    timezone: String,
    days: Vec<String>,
    from: String,
    to: String,
}

impl Serialize for Schedule {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let days = self.days.iter().filter_map(|d| DAY_NAMES.iter().find(|(_, w)| w == d).map(|(n, _)| (*n).to_owned())).collect();
        ScheduleWire { timezone: self.timezone.clone(), days, from: fmt_hhmm(self.from), to: fmt_hhmm(self.to) }.serialize(s)
    }
}

impl<'de> Deserialize<'de> for Schedule {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let w = ScheduleWire::deserialize(d)?;
        Schedule::parse(&w.timezone, &w.days, &w.from, &w.to).map_err(serde::de::Error::custom)
    }
}

/// Everything a delegation grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authority {
    pub actions: Vec<ActionPattern>,
    pub resources: Vec<ResourcePattern>,
    pub limits: Limits,
    pub schedule: Option<Schedule>,
    /// Requests that need a human's approval first (`policy::approval`).
    pub approval: Option<super::approval::ApprovalRule>,
    /// Whether (and how deep) the holder may re-delegate a subset (`delegable.maxDepth`).
    pub delegable: Option<Delegable>,
}

impl Authority {
    /// The same authority, requiring approval as `rule` says.
    pub fn with_approval(mut self, rule: Option<super::approval::ApprovalRule>) -> Self {
        self.approval = rule;
        self
    }

    /// The same authority, re-delegable down `delegable`.
    pub fn with_delegable(mut self, delegable: Option<Delegable>) -> Self {
        self.delegable = delegable;
        self
    }

    /// Validates list sizes and contents.
    pub fn new(actions: &[String], resources: &[String], limits: Limits, schedule: Option<Schedule>) -> Result<Self, AuthorityError> {
        if actions.is_empty() || actions.len() > 64 {
            return Err(err("actions must list 1–64 actions"));
        }
        if resources.is_empty() || resources.len() > 64 {
            return Err(err("resources must list 1–64 patterns"));
        }
        Ok(Self {
            actions: actions.iter().map(|a| ActionPattern::parse(a)).collect::<Result<_, _>>()?,
            resources: resources.iter().map(|r| ResourcePattern::parse(r)).collect::<Result<_, _>>()?,
            limits,
            schedule,
            approval: None,
            delegable: None,
        })
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct AuthorityWire {
    actions: Vec<String>,
    resources: Vec<String>,
    #[serde(default, skip_serializing_if = "limits_empty")]
    limits: Limits,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    schedule: Option<Schedule>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    approval: Option<super::approval::ApprovalRule>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    delegable: Option<Delegable>,
}

fn limits_empty(l: &Limits) -> bool {
    l.amount.is_none()
}

impl Serialize for Authority {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        AuthorityWire {
            actions: self.actions.iter().map(|a| a.0.clone()).collect(),
            resources: self.resources.iter().map(|r| r.raw.clone()).collect(),
            limits: self.limits.clone(),
            schedule: self.schedule.clone(),
            approval: self.approval.clone(),
            delegable: self.delegable,
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for Authority {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let w = AuthorityWire::deserialize(d)?;
        Ok(Authority::new(&w.actions, &w.resources, w.limits, w.schedule)
            .map_err(serde::de::Error::custom)?
            .with_approval(w.approval)
            .with_delegable(w.delegable))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn action_patterns() {
        let exact = ActionPattern::parse("refunds:create").unwrap();
        assert!(exact.covers("refunds:create"));
        assert!(!exact.covers("refunds:created"));
        let wild = ActionPattern::parse("orders:*").unwrap();
        assert!(wild.covers("orders:read") && wild.covers("orders:line:add"));
        assert!(!wild.covers("orders") && !wild.covers("ordersx:read") && !wild.covers("orders:"));
        for bad in ["*", "refunds", "Refunds:create", "a:*:b", "a::b", ":a", "a:b c", ""] {
            assert!(ActionPattern::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn resource_globs_stay_in_their_segment() {
        let p = ResourcePattern::parse("orders/*").unwrap();
        assert!(p.covers("orders/123"));
        assert!(!p.covers("orders/123/lines") && !p.covers("invoices/1") && !p.covers(""));
        assert!(ResourcePattern::parse("orders/**").unwrap().covers("orders/1/lines/2"));
        assert!(ResourcePattern::parse("*").unwrap().covers(""));
        assert!(ResourcePattern::parse("orders/[").is_err());
        assert!(ResourcePattern::parse("").is_err());
    }

    #[test]
    fn amounts_are_strict_decimals() {
        let l = AmountLimit::parse("500.00", "EUR", Some("1000.00")).unwrap();
        assert_eq!(l.max.to_string(), "500.00");
        for bad in ["-1", "1e3", "", "1.2.3", ".5", "5.", "abc", " 5", "NaN"] {
            assert!(AmountLimit::parse(bad, "EUR", None).is_err(), "{bad}");
        }
        assert!(AmountLimit::parse("5", "eur", None).is_err());
        assert!(AmountLimit::parse("500", "EUR", Some("100")).is_err());
        let json = serde_json::to_value(&l).unwrap();
        assert_eq!(json, serde_json::json!({"max": "500.00", "currency": "EUR", "perDay": "1000.00"}));
    }

    #[test]
    fn schedules_validate_and_round_trip() {
        let days: Vec<String> = ["mon", "tue"].iter().map(|s| (*s).to_owned()).collect();
        let s = Schedule::parse("Europe/Berlin", &days, "09:00", "17:30").unwrap();
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(v["from"], "09:00");
        assert_eq!(serde_json::from_value::<Schedule>(v).unwrap(), s);
        assert!(Schedule::parse("Mars/Olympus", &days, "09:00", "17:00").is_err());
        assert!(Schedule::parse("UTC", &["mon".into(), "mon".into()], "09:00", "17:00").is_err());
        assert!(Schedule::parse("UTC", &["funday".into()], "09:00", "17:00").is_err());
        assert!(Schedule::parse("UTC", &days, "17:00", "09:00").is_err());
        assert!(Schedule::parse("UTC", &days, "9:00", "17:00").is_err());
        assert!(Schedule::parse("UTC", &days, "09:00", "24:00").is_ok());
    }

    #[test]
    fn authority_serde_rejects_unknown_fields() {
        let ok = serde_json::json!({"actions": ["refunds:create"], "resources": ["orders/*"], "limits": {"amount": {"max": "5", "currency": "EUR"}}});
        let a: Authority = serde_json::from_value(ok.clone()).unwrap();
        assert_eq!(serde_json::to_value(&a).unwrap(), ok);
        let typo = serde_json::json!({"actions": ["refunds:create"], "resources": ["orders/*"], "limts": {}});
        assert!(serde_json::from_value::<Authority>(typo).is_err());
    }
}

#[cfg(test)]
#[path = "authority_props.rs"]
mod fuzz;

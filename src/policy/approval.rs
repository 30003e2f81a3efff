//! Human approval (step-up) a delegation may require: for named actions, above an amount,
//! or both. Part of the authority, so it is inside the signed delegation credential and a
//! verifier applies the same rule ([`ApprovalRule::requires`]) as the service that signed.
//!
//! Must never: say "not required" for a request it cannot place under the threshold (no
//! amount, another currency): those fail closed and need approval.

use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::authority::{ActionPattern, AuthorityError, parse_amount};
use super::evaluate::ActionRequest;

/// An amount above which approval is needed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Threshold {
    #[serde(with = "rust_decimal::serde::str")]
    pub amount: Decimal,
    pub currency: String,
}

/// When a delegation's requests need a human's approval.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalRule {
    /// Actions (or namespace wildcards) that need approval; empty: every action the
    /// delegation grants.
    pub actions: Vec<ActionPattern>,
    /// Only above this amount (strictly); absent: whatever the amount.
    pub above: Option<Threshold>,
}

impl ApprovalRule {
    /// Validates the rule (at most 64 actions, a strict decimal and an ISO 4217 code).
    pub fn new(actions: &[String], above: Option<(&str, &str)>) -> Result<Self, AuthorityError> {
        if actions.len() > 64 {
            return Err(AuthorityError("approval.actions must list at most 64 actions".into()));
        }
        let actions = actions.iter().map(|a| ActionPattern::parse(a)).collect::<Result<Vec<_>, _>>()?;
        let above = match above {
            None => None,
            Some((amount, currency)) => {
                let amount = parse_amount("approval.above.amount", amount)?;
                if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_uppercase()) {
                    return Err(AuthorityError(format!("approval.above.currency {currency:?} must be an ISO 4217 code like EUR")));
                }
                Some(Threshold { amount, currency: currency.to_owned() })
            }
        };
        Ok(Self { actions, above })
    }

    /// Whether `req` needs approval under this rule. A threshold is passed by an amount
    /// strictly above it in its currency; a request without an amount, or in another
    /// currency, cannot be shown to be below it and needs approval too.
    pub fn requires(&self, req: &ActionRequest<'_>) -> bool {
        let action_named = self.actions.is_empty() || self.actions.iter().any(|p| p.covers(req.action));
        if !action_named {
            return false;
        }
        match &self.above {
            None => true,
            Some(t) => match (req.amount, req.currency) {
                (Some(a), Some(c)) if c == t.currency => a > t.amount,
                _ => true,
            },
        }
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Wire {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    actions: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    above: Option<ThresholdWire>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ThresholdWire {
    amount: String,
    currency: String,
}

impl Serialize for ApprovalRule {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        Wire {
            actions: self.actions.iter().map(|a| a.as_str().to_owned()).collect(),
            above: self.above.as_ref().map(|t| ThresholdWire { amount: t.amount.to_string(), currency: t.currency.clone() }),
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for ApprovalRule {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let w = Wire::deserialize(d)?;
        ApprovalRule::new(&w.actions, w.above.as_ref().map(|t| (t.amount.as_str(), t.currency.as_str()))).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req<'a>(action: &'a str, amount: Option<&str>, currency: Option<&'a str>) -> ActionRequest<'a> {
        ActionRequest { action, resource: None, amount: amount.map(|a| a.parse().unwrap()), currency }
    }

    #[test]
    fn thresholds_are_strict_and_fail_closed() {
        let r = ApprovalRule::new(&["refunds:create".into()], Some(("200.00", "EUR"))).unwrap();
        assert!(!r.requires(&req("refunds:create", Some("200.00"), Some("EUR"))));
        assert!(r.requires(&req("refunds:create", Some("200.01"), Some("EUR"))));
        assert!(r.requires(&req("refunds:create", Some("10"), Some("USD"))), "another currency cannot be placed under it");
        assert!(r.requires(&req("refunds:create", None, None)), "no amount cannot be placed under it");
        assert!(!r.requires(&req("orders:read", Some("900"), Some("EUR"))), "an action it does not name");
        let every = ApprovalRule::new(&[], None).unwrap();
        assert!(every.requires(&req("orders:read", None, None)));
        let wire = serde_json::to_value(&r).unwrap();
        assert_eq!(wire, serde_json::json!({"actions": ["refunds:create"], "above": {"amount": "200.00", "currency": "EUR"}}));
        assert_eq!(serde_json::from_value::<ApprovalRule>(wire).unwrap(), r);
        assert!(ApprovalRule::new(&["Refunds".into()], None).is_err());
        assert!(ApprovalRule::new(&[], Some(("-1", "EUR"))).is_err());
        assert!(ApprovalRule::new(&[], Some(("1", "eur"))).is_err());
    }
}

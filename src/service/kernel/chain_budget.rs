//! Daily budgets shared down a delegation chain: a spend under a sub-delegation counts
//! against its own `limits.amount.per_day` and that of every ancestor that has one (each on
//! its own day, in its own time zone), all checked and written in one transaction. A chain
//! of five delegations each allowed 1,000.00 a day can spend 1,000.00 a day in total, not
//! 5,000.00: the budget is shared, never multiplied.
//!
//! Must never: write one line of a spend without the others, or compare amounts instead of
//! stored bytes (each line is a compare-and-set on the bytes read, as in [`super::budget`]).

use jiff::Timestamp;
use rust_decimal::Decimal;

use crate::ids::TenantId;
use crate::service::kernel::keyring::TenantKeys;
use crate::service::kernel::wallet::Held;
use crate::service::{ServiceError, Sigil};
use crate::store::{Txn, keys};

/// One daily limit a spend counts against.
#[derive(Debug, Clone)]
pub(crate) struct BudgetLine {
    /// The delegation whose counter this is.
    pub id: String,
    pub limit: Decimal,
    /// The amount spent now.
    pub amount: Decimal,
    /// `YYYY-MM-DD` in the delegation's time zone.
    pub day: String,
}

/// The daily limits a spend of `amount` under `delegation` counts against: its own and
/// each ancestor's that has one. Empty without an amount.
pub(crate) fn budget_lines(delegation: &Held, amount: Option<Decimal>, now: Timestamp) -> Vec<BudgetLine> {
    let Some(amount) = amount else { return Vec::new() };
    std::iter::once(delegation)
        .chain(delegation.chain.iter().map(AsRef::as_ref))
        .filter_map(|h| {
            let a = h.authority.as_ref()?;
            let limit = a.limits.amount.as_ref()?.per_day?;
            let tz = a.schedule.as_ref().map(|s| s.tz.clone()).unwrap_or(jiff::tz::TimeZone::UTC);
            Some(BudgetLine { id: h.id.clone(), limit, amount, day: now.to_zoned(tz).date().to_string() })
        })
        .collect()
}

/// The name of the lock spends under `delegation` take: its chain's root, so that every
/// spend that shares a counter takes the same lock (one lock, so never a lock order).
pub(crate) fn budget_lock_name(delegation: &Held) -> &str {
    delegation.chain.last().map_or(delegation.id.as_str(), |root| root.id.as_str())
}

impl Sigil {
    /// Whether any line would go over its limit (a read, for the early answer).
    pub(crate) async fn over_budget(&self, tk: &TenantKeys, t: &TenantId, lines: &[BudgetLine]) -> Result<bool, ServiceError> {
        for l in lines {
            if self.budget_spent(tk, t, &l.id, &l.day).await?.amount + l.amount > l.limit {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Stages every line's new total, each conditional on the stored bytes read; refuses
    /// (`daily_limit_exceeded`) if any would go over.
    pub(crate) async fn stage_spends(
        &self,
        tk: &TenantKeys,
        t: &TenantId,
        lines: &[BudgetLine],
        txn: &mut Txn,
    ) -> Result<(), ServiceError> {
        for l in lines {
            let spent = self.budget_spent(tk, t, &l.id, &l.day).await?;
            if spent.stale_keys {
                // Sealing the new total with the stale set could leave it under a key the
                // rotation destroys: the mutation retries with the reloaded keys.
                return Err(ServiceError::conflict(
                    crate::codes::ErrorCode::WriteConflict,
                    "the tenant's data key changed on another node; retry",
                ));
            }
            crate::service::kernel::cache::pause::point("budget.read", t.as_str()).await;
            let total = spent.amount + l.amount;
            if total > l.limit {
                return Err(ServiceError::forbidden(
                    crate::codes::ErrorCode::DailyLimitExceeded,
                    "the delegation's daily amount limit would be exceeded",
                ));
            }
            let key = keys::budget(t, &l.id, &l.day);
            match spent.stored {
                Some(b) => txn.require_equals(key.clone(), b),
                None => txn.require_absent(key.clone()),
            };
            txn.put(key, self.seal_budget(tk, t, &l.id, &l.day, total)?);
        }
        Ok(())
    }
}

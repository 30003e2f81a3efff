//! Daily budgets: what a delegation spent on one day of its time zone, sealed at rest (a
//! `budget` record) and written compare-and-set on the exact stored bytes. A random nonce
//! makes two seals of the same amount differ, which is what a compare-and-set wants: the
//! bytes a writer read are the bytes it requires.
//!
//! Must never: write a counter in clear, or compare amounts instead of stored bytes.

use rust_decimal::Decimal;

use crate::crypto::BLOB_VERSION;
use crate::ids::TenantId;
use crate::service::kernel::keyring::TenantKeys;
use crate::service::model::records::{BudgetRecord, kind};
use crate::service::{ServiceError, Sigil};
use crate::store::keys;

/// A day's spend as read: the amount and the stored bytes (for the compare-and-set).
#[derive(Debug, Clone)]
pub(crate) struct Spent {
    pub amount: Decimal,
    pub stored: Option<Vec<u8>>,
    /// The counter was sealed under a data key the key set in hand lacks (another node
    /// rotated the tenant's data key and spent since): read with the reloaded keys, but a
    /// new total must not be sealed with the stale set ([`Sigil::stage_spends`] retries).
    pub stale_keys: bool,
}

fn id(credential: &str, day: &str) -> String {
    format!("{credential}/{day}")
}

impl Sigil {
    /// What `credential` spent on `day` (its time zone's date, `YYYY-MM-DD`).
    pub(crate) async fn budget_spent(
        &self,
        tk: &TenantKeys,
        tenant: &TenantId,
        credential: &str,
        day: &str,
    ) -> Result<Spent, ServiceError> {
        let key = keys::budget(tenant, credential, day);
        let Some(stored) = self.fresh_blob(tenant, &key).await? else {
            return Ok(Spent { amount: Decimal::ZERO, stored: None, stale_keys: false });
        };
        let mut stale_keys = false;
        let amount = if stored.first() == Some(&BLOB_VERSION) {
            // Another node may have rotated the data key and spent under the new one:
            // read with the keys loaded once more (a 503 here failed a request mid-rotation).
            stale_keys = !tk.versions.contains_key(&crate::crypto::blob_key_version(&stored)?);
            let rec: BudgetRecord = self.open_reloading(tk, tenant, kind::BUDGET, &id(credential, day), &stored).await?;
            rec.spent.parse::<Decimal>().ok()
        } else {
            // Written before budgets were sealed: a decimal in clear, never starting with
            // the blob version byte. Sealed on the next spend.
            std::str::from_utf8(&stored).ok().and_then(|s| s.parse::<Decimal>().ok())
        };
        let amount = amount.ok_or_else(|| ServiceError::Internal("bad budget counter".into()))?;
        Ok(Spent { amount, stored: Some(stored), stale_keys })
    }

    /// The sealed record of `amount` spent by `credential` on `day`.
    pub(crate) fn seal_budget(
        &self,
        tk: &TenantKeys,
        tenant: &TenantId,
        credential: &str,
        day: &str,
        amount: Decimal,
    ) -> Result<Vec<u8>, ServiceError> {
        self.seal_record(tk, tenant, kind::BUDGET, &id(credential, day), &BudgetRecord { v: 1, spent: amount.to_string() })
    }
}

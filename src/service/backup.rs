//! Online backup: a consistent copy of the encrypted store (writers pause while it is
//! taken) plus the key-check file, for `GET /v1/system/backup` and `sigil backup`.

use super::{Caller, ServiceError, Sigil};
use crate::store::backup;
use crate::store::keycheck::KEYCHECK_FILE;

impl Sigil {
    /// The backup file contents (operator only).
    pub async fn backup(&self, caller: &Caller) -> Result<Vec<u8>, ServiceError> {
        caller.require_operator()?;
        let data = self.settings.data_dir.clone().ok_or_else(|| ServiceError::Internal("no data directory".into()))?;
        let store = self.store.clone();
        let bytes = tokio::task::spawn_blocking(move || -> Result<Vec<u8>, ServiceError> {
            let entries = store.export()?;
            let keycheck =
                std::fs::read(data.join(KEYCHECK_FILE)).map_err(|e| ServiceError::Unavailable(format!("cannot read key check: {e}")))?;
            Ok(backup::encode(&keycheck, &entries))
        })
        .await
        .map_err(|e| ServiceError::Internal(e.to_string()))??;
        Ok(bytes)
    }
}

//! Online backup: a consistent copy of the encrypted store (writers pause while it is
//! taken) plus the key-check file, for `GET /v1/system/backup` and `sigil backup`.

use crate::service::{Caller, ServiceError, Sigil};
use crate::store::backup;

impl Sigil {
    /// The backup file contents (operator only).
    pub async fn backup(&self, caller: &Caller) -> Result<Vec<u8>, ServiceError> {
        caller.require_operator()?;
        let data = self.settings.data_dir.clone().ok_or_else(|| ServiceError::Internal("no data directory".into()))?;
        // No root rotation while the copy is taken: the key-check file and the wraps in the
        // store must belong to the same root key.
        let _no_rotation = self.keys.wrapping.read().await;
        // That lock is this process's: on a database several nodes share, another node
        // may rotate meanwhile, so the store reads its key check in the export's snapshot.
        let keeps = self.store.keeps_key_check();
        let file = if keeps {
            None
        } else {
            Some(crate::datadir::read_key_check_bytes(self.store.as_ref(), data).await.map_err(ServiceError::Unavailable)?)
        };
        let store = self.store.clone();
        let bytes = tokio::task::spawn_blocking(move || -> Result<Vec<u8>, ServiceError> {
            let (in_snapshot, rows) = store.export_with_key_check()?;
            let keycheck = file.or(in_snapshot).ok_or_else(|| ServiceError::Unavailable("the store holds no key check".into()))?;
            Ok(backup::encode(&keycheck, &rows))
        })
        .await
        .map_err(|e| ServiceError::Internal(e.to_string()))??;
        Ok(bytes)
    }
}

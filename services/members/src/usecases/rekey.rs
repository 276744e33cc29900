//! Rewriting personal data under the current key after a key rotation (`jifen-members
//! rekey-pii`, docs/operations.md "Rotating the personal-data key").

use super::{AppError, Members};
use crate::crypto::PiiField;
use crate::store::{self, audit::AuditEntry, members::SealedPii};
use sea_orm::TransactionTrait as _;
use uuid::Uuid;

/// What [`Members::rekey_pii`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RekeySummary {
    /// Members whose phone or ID card was rewritten under the current key.
    pub rewritten: u64,
    /// Members still holding a value under another key after the pass: rows locked by a
    /// concurrent change, or written by an instance still running with an old key. Run again.
    pub remaining: u64,
}

impl Members {
    /// Rewrites every phone and ID card stored under a previous key under the current one,
    /// with its hash, `batch` members per transaction; the members' data, versions and events
    /// do not change. Resumable: a second run finds only what the first left. Ends with one
    /// audit row (`pii.rekey`) naming the current key's id and the count.
    pub async fn rekey_pii(&self, batch: u64) -> Result<RekeySummary, AppError> {
        let prefix = self.pii.current_prefix();
        let mut after: Option<Uuid> = None;
        let mut rewritten = 0u64;
        loop {
            let txn = self.db.begin().await?;
            let rows = store::members::stale_pii(&txn, &prefix, after, batch.max(1)).await?;
            let Some(last) = rows.last() else {
                txn.commit().await?;
                break;
            };
            after = Some(last.id);
            for row in &rows {
                let phone = self.rewrite(PiiField::Phone, row.id, row.phone_cipher.as_deref())?;
                let id_card =
                    self.rewrite(PiiField::IdCard, row.id, row.id_card_cipher.as_deref())?;
                store::members::rewrite_pii(&txn, row.id, phone, id_card).await?;
            }
            txn.commit().await?;
            rewritten += rows.len() as u64;
        }
        let remaining = store::members::count_stale_pii(&self.db, &prefix).await?;
        let key_id: String = prefix[1..].iter().map(|b| format!("{b:02x}")).collect();
        store::audit::record(
            &self.db,
            AuditEntry {
                actor: "system:rekey-pii".into(),
                action: "pii.rekey",
                subject_type: "member",
                subject_id: "*".into(),
                before: None,
                after: None,
                detail: Some(serde_json::json!({
                    "key_id": key_id,
                    "rewritten": rewritten,
                    "remaining": remaining,
                })),
                reason: None,
            },
        )
        .await?;
        Ok(RekeySummary {
            rewritten,
            remaining,
        })
    }

    /// `stored` (of `field` of member `owner`) decrypted and encrypted again under the current
    /// key, with its hash; `None` stays `None`.
    fn rewrite(
        &self,
        field: PiiField,
        owner: Uuid,
        stored: Option<&[u8]>,
    ) -> Result<Option<SealedPii>, AppError> {
        let Some(stored) = stored else {
            return Ok(None);
        };
        let corrupt = |e: crate::crypto::CryptoError| {
            AppError::Corrupt(format!("member {owner}: {}: {e}", field.label()))
        };
        let clear = self.pii.decrypt(field, owner, stored).map_err(corrupt)?;
        let cipher = self.pii.encrypt(field, owner, &clear).map_err(corrupt)?;
        Ok(Some(SealedPii {
            cipher,
            hash: self.pii.lookup_hash(field, &clear),
        }))
    }
}

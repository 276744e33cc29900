//! Evidence files (证明材料): images and PDFs stored once under their SHA-256 in a configured
//! directory (`<dir>/<first two hex digits>/<hex>`), written to a temporary file and renamed
//! into place so a crash never leaves half a file under a reference.
//!
//! A file may be read by whoever uploaded it, by managers of an uploader's organization, and by
//! managers of an organization where a declaration line carries it.

use super::{AppError, Declarations, authorize};
use crate::domain::authz;
use crate::domain::declaration::is_evidence_reference;
use crate::store::{
    self,
    entities::{evidence, evidence_upload},
};
use jifen_platform::auth::{Principal, RoleName};
use sha2::{Digest as _, Sha256};
use std::path::PathBuf;

/// Where evidence files live, and how large one may be.
#[derive(Debug, Clone)]
pub struct EvidenceStore {
    pub dir: PathBuf,
    pub max_bytes: usize,
}

/// A stored file's description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvidenceView {
    pub reference: String,
    pub content_type: String,
    pub size: i64,
}

/// Accepted content types and the first bytes each must start with.
const KINDS: &[(&str, &[&[u8]])] = &[
    ("image/jpeg", &[b"\xFF\xD8\xFF"]),
    ("image/png", &[b"\x89PNG\r\n\x1a\n"]),
    ("image/gif", &[b"GIF87a", b"GIF89a"]),
    ("image/webp", &[b"RIFF"]),
    ("application/pdf", &[b"%PDF-"]),
];

fn check_content(content_type: &str, data: &[u8]) -> Result<(), AppError> {
    let Some((_, magics)) = KINDS.iter().find(|(t, _)| *t == content_type) else {
        return Err(AppError::invalid(
            "content_type",
            format!(
                "must be one of {}",
                KINDS.iter().map(|(t, _)| *t).collect::<Vec<_>>().join(", ")
            ),
        ));
    };
    let webp_ok = content_type != "image/webp" || data.get(8..12) == Some(b"WEBP".as_slice());
    if !magics.iter().any(|m| data.starts_with(m)) || !webp_ok {
        return Err(AppError::invalid(
            "file",
            format!("the file's content is not {content_type}"),
        ));
    }
    Ok(())
}

impl EvidenceStore {
    fn path_of(&self, hex: &str) -> PathBuf {
        self.dir.join(&hex[..2]).join(hex)
    }
}

impl Declarations {
    /// `POST /evidence`: stores the file (once per content) and answers its reference.
    pub async fn upload_evidence(
        &self,
        actor: &Principal,
        content_type: &str,
        data: Vec<u8>,
    ) -> Result<EvidenceView, AppError> {
        authorize(authz::upload_evidence(actor), "file", "evidence")?;
        if data.is_empty() {
            return Err(AppError::invalid("file", "the file is empty"));
        }
        if data.len() > self.evidence.max_bytes {
            return Err(AppError::invalid(
                "file",
                format!("at most {} bytes", self.evidence.max_bytes),
            ));
        }
        let content_type = content_type
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        check_content(&content_type, &data)?;
        let hex = hex::encode(Sha256::digest(&data));
        let reference = format!("sha256:{hex}");
        let path = self.evidence.path_of(&hex);
        let size = i64::try_from(data.len()).unwrap_or(i64::MAX);
        if !tokio::fs::try_exists(&path).await? {
            let dir = path
                .parent()
                .map(PathBuf::from)
                .unwrap_or_else(|| self.evidence.dir.clone());
            tokio::fs::create_dir_all(&dir).await?;
            let tmp = dir.join(format!(".{hex}.{}.tmp", uuid::Uuid::now_v7().simple()));
            tokio::fs::write(&tmp, &data).await?;
            let file = tokio::fs::File::open(&tmp).await?;
            file.sync_all().await?;
            tokio::fs::rename(&tmp, &path).await?;
        }
        let own_path = match actor.member_id {
            Some(id) => store::find_member(&self.db, id).await?.map(|m| m.org_path),
            None => None,
        }
        .or_else(|| actor.roles.first().map(|r| r.org_path.clone()))
        .unwrap_or_default();
        let now = self.clock.now();
        store::record_evidence(
            &self.db,
            evidence::Model {
                reference: reference.clone(),
                content_type: content_type.clone(),
                size,
                stored_at: now,
            },
            evidence_upload::Model {
                reference: reference.clone(),
                uploaded_by: actor.subject.clone(),
                org_path: own_path,
                uploaded_at: now,
            },
        )
        .await?;
        Ok(EvidenceView {
            reference,
            content_type,
            size,
        })
    }

    /// `GET /evidence/{reference}`: the file, to those allowed to see it.
    pub async fn get_evidence(
        &self,
        actor: &Principal,
        reference: &str,
    ) -> Result<(EvidenceView, Vec<u8>), AppError> {
        if !is_evidence_reference(reference) {
            return Err(AppError::invalid(
                "reference",
                "must be sha256:<64 hex digits>",
            ));
        }
        let hidden = AppError::NotFound {
            field: "reference",
            what: "evidence",
        };
        let Some(file) = store::find_evidence(&self.db, reference).await? else {
            return Err(hidden);
        };
        let uploads = store::evidence_uploads(&self.db, reference).await?;
        let allowed = authz::read_evidence(
            actor,
            uploads
                .iter()
                .map(|u| (u.uploaded_by.as_str(), u.org_path.as_str())),
        ) == authz::Decision::Allow
            || store::evidence_in_declarations_under(
                &self.db,
                reference,
                &actor.scope_paths(&[RoleName::Admin, RoleName::Secretary]),
            )
            .await?;
        if !allowed {
            return Err(hidden);
        }
        let data = tokio::fs::read(self.evidence.path_of(&reference["sha256:".len()..])).await?;
        Ok((
            EvidenceView {
                reference: file.reference,
                content_type: file.content_type,
                size: file.size,
            },
            data,
        ))
    }
}

//! The use-cases of the members service. Each one that changes something opens a transaction,
//! checks authorization and rules, writes through [`crate::store`], stages its event through
//! the outbox ([`jifen_eventbus::stage`]), writes its audit row, and commits — all or nothing.
//!
//! Authorization runs here on every call (defense in depth, docs/authorization.md), from the
//! caller's verified [`Principal`]; the rules themselves are the pure functions of
//! [`crate::domain::authz`].

mod accounts;
mod import;
mod members;
mod orgs;
mod rekey;

pub use accounts::{PrincipalView, RoleView};
pub use import::{ImportError, ImportOutcome};
pub use members::{MemberView, NewAccount, NewMember};
pub use orgs::{NewOrganization, OrgView};
pub use rekey::RekeySummary;

use crate::crypto::{CryptoError, Pii, PiiField};
use crate::domain::authz::Decision;
use crate::domain::violations::FieldViolation;
use crate::domain::{
    Category, Flag, Gender, IdCard, Member, OrgKind, OrgName, Organization, PersonName, Phone,
    RuleError, SanctionKind, SanctionRecord, Status, TransferRecord, UnitType,
};
use crate::store::entities::{member, organization, sanction, transfer};
use jifen_platform::auth::Principal;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr};
use uuid::Uuid;

/// Why a use-case failed. Mapped to a gRPC status in exactly one place (`grpc.rs`).
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// Bad input: every bad field.
    #[error("invalid request")]
    Invalid(Vec<FieldViolation>),
    /// Unknown username or wrong password (never says which).
    #[error("wrong username or password")]
    BadCredentials,
    /// The caller sees the target but may not do this.
    #[error("permission denied")]
    Denied,
    /// No such `what` (or the caller may not know it exists); `field` names the id.
    #[error("{what} not found")]
    NotFound {
        field: &'static str,
        what: &'static str,
    },
    /// A domain rule; `field` names the request field it concerns.
    #[error("{rule}")]
    Rule {
        rule: RuleError,
        field: Option<&'static str>,
    },
    /// A unique value already in use (`id_card_taken`, `username_taken`).
    #[error("{message}")]
    Taken {
        code: &'static str,
        field: &'static str,
        message: &'static str,
    },
    /// A state conflict with a machine code (`member_has_no_account`, `account_disabled`).
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    #[error("database error")]
    Db(#[from] DbErr),
    #[error("personal data protection failed")]
    Crypto(#[from] CryptoError),
    #[error("staging an event failed")]
    Bus(#[from] jifen_eventbus::BusError),
    #[error("stored data is inconsistent: {0}")]
    Corrupt(String),
    #[error("{0}")]
    Internal(String),
}

impl AppError {
    fn invalid(field: &str, message: impl Into<String>) -> Self {
        Self::Invalid(vec![FieldViolation {
            field: field.to_owned(),
            message: message.into(),
        }])
    }
}

fn rule(field: &'static str) -> impl Fn(RuleError) -> AppError {
    move |rule| AppError::Rule {
        rule,
        field: Some(field),
    }
}

/// Turns an authorization decision into the error the caller may see.
fn authorize(decision: Decision, field: &'static str, what: &'static str) -> Result<(), AppError> {
    match decision {
        Decision::Allow => Ok(()),
        Decision::Deny => Err(AppError::Denied),
        Decision::Hide => Err(AppError::NotFound { field, what }),
    }
}

/// The members service's use-cases over one database.
#[derive(Clone)]
pub struct Members {
    db: DatabaseConnection,
    pii: Pii,
    /// An argon2id hash verified when a username is unknown, so both failures cost the same.
    dummy_hash: std::sync::Arc<str>,
}

impl Members {
    /// Use-cases over `db`; hashes the dummy password once (a blocking computation).
    pub async fn new(db: DatabaseConnection, pii: Pii) -> Result<Self, AppError> {
        let dummy = uuid::Uuid::new_v4().to_string();
        let dummy_hash = blocking(move || crate::crypto::hash_password(&dummy)).await??;
        Ok(Self {
            db,
            pii,
            dummy_hash: dummy_hash.into(),
        })
    }

    pub fn db(&self) -> &DatabaseConnection {
        &self.db
    }

    /// The organization of the member the caller is, if any (for "their own organization").
    async fn own_org(
        &self,
        conn: &impl ConnectionTrait,
        actor: &Principal,
    ) -> Result<Option<Uuid>, AppError> {
        match actor.member_id {
            Some(id) => Ok(crate::store::members::org_of(conn, id).await?),
            None => Ok(None),
        }
    }

    /// A member row as a domain member (personal data decrypted).
    fn member_from_row(&self, r: &member::Model) -> Result<Member, AppError> {
        let corrupt = |what: &str| AppError::Corrupt(format!("member {}: {what}", r.id));
        let flags: Vec<String> =
            serde_json::from_value(r.flags.clone()).map_err(|_| corrupt("flags"))?;
        let flags = flags
            .iter()
            .map(|f| Flag::parse(f))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| corrupt("flags"))?;
        let phone = match &r.phone_cipher {
            None => None,
            Some(ct) => {
                let clear = self.pii.decrypt(PiiField::Phone, r.id, ct)?;
                Some(Phone::parse(&clear).map_err(|_| corrupt("phone"))?)
            }
        };
        let id_card = match &r.id_card_cipher {
            None => None,
            Some(ct) => {
                let clear = self.pii.decrypt(PiiField::IdCard, r.id, ct)?;
                Some(IdCard::parse(&clear).map_err(|_| corrupt("id_card"))?)
            }
        };
        Ok(Member {
            id: r.id,
            org_id: r.org_id,
            org_path: r.org_path.clone(),
            name: PersonName::parse(&r.name).map_err(|_| corrupt("name"))?,
            gender: Gender::parse(&r.gender).map_err(|_| corrupt("gender"))?,
            category: Category::parse(&r.category).map_err(|_| corrupt("category"))?,
            status: Status::parse(&r.status).map_err(|_| corrupt("status"))?,
            joined_on: r.joined_on,
            flags,
            phone,
            id_card,
            version: r.version,
        })
    }

    /// The row of a domain member: personal data encrypted (fresh nonces) and hashed.
    fn member_to_row(
        &self,
        m: &Member,
        created_at: chrono::DateTime<chrono::Utc>,
        updated_at: chrono::DateTime<chrono::Utc>,
    ) -> Result<member::Model, AppError> {
        let (phone_cipher, phone_hash) = match &m.phone {
            None => (None, None),
            Some(p) => (
                Some(self.pii.encrypt(PiiField::Phone, m.id, p.as_str())?),
                Some(self.pii.lookup_hash(PiiField::Phone, p.as_str())),
            ),
        };
        let (id_card_cipher, id_card_hash) = match &m.id_card {
            None => (None, None),
            Some(c) => (
                Some(self.pii.encrypt(PiiField::IdCard, m.id, c.as_str())?),
                Some(self.id_card_hash(c)),
            ),
        };
        Ok(member::Model {
            id: m.id,
            org_id: m.org_id,
            org_path: m.org_path.clone(),
            name: m.name.as_str().to_owned(),
            gender: m.gender.as_str().to_owned(),
            category: m.category.as_str().to_owned(),
            status: m.status.as_str().to_owned(),
            joined_on: m.joined_on,
            flags: serde_json::Value::from(m.flags.iter().map(|f| f.as_str()).collect::<Vec<_>>()),
            phone_cipher,
            phone_hash,
            id_card_cipher,
            id_card_hash,
            version: m.version,
            created_at,
            updated_at,
        })
    }

    fn id_card_hash(&self, c: &IdCard) -> Vec<u8> {
        self.pii.lookup_hash(PiiField::IdCard, c.as_str())
    }

    /// The ID card's hashes under every key, the current one first: what the uniqueness check
    /// searches for while a key rotation is under way.
    fn id_card_hashes(&self, c: &IdCard) -> Vec<Vec<u8>> {
        self.pii.lookup_hashes(PiiField::IdCard, c.as_str())
    }
}

/// An organization row as a domain organization.
fn org_from_row(r: &organization::Model) -> Result<Organization, AppError> {
    let corrupt = |what: &str| AppError::Corrupt(format!("organization {}: {what}", r.id));
    Ok(Organization {
        id: r.id,
        parent_id: r.parent_id,
        name: OrgName::parse(&r.name).map_err(|_| corrupt("name"))?,
        kind: OrgKind::parse(&r.kind).map_err(|_| corrupt("kind"))?,
        unit_type: UnitType::parse(&r.unit_type).map_err(|_| corrupt("unit_type"))?,
        path: r.path.clone(),
        version: r.version,
    })
}

fn org_to_row(o: &Organization, now: chrono::DateTime<chrono::Utc>) -> organization::Model {
    organization::Model {
        id: o.id,
        parent_id: o.parent_id,
        name: o.name.as_str().to_owned(),
        kind: o.kind.as_str().to_owned(),
        unit_type: o.unit_type.as_str().to_owned(),
        path: o.path.clone(),
        version: o.version,
        created_at: now,
        updated_at: now,
    }
}

fn sanction_from_row(r: &sanction::Model) -> Result<SanctionRecord, AppError> {
    Ok(SanctionRecord {
        id: r.id,
        member_id: r.member_id,
        kind: SanctionKind::parse(&r.kind)
            .map_err(|_| AppError::Corrupt(format!("sanction {}: kind", r.id)))?,
        decided_on: r.decided_on,
        reason: r.reason.clone(),
        recorded_at: r.recorded_at,
        actor: r.actor.clone(),
    })
}

fn transfer_from_row(r: &transfer::Model) -> TransferRecord {
    TransferRecord {
        id: r.id,
        member_id: r.member_id,
        from_org_id: r.from_org_id,
        to_org_id: r.to_org_id,
        reason: r.reason.clone(),
        transferred_at: r.transferred_at,
        actor: r.actor.clone(),
    }
}

/// An organization for the audit trail.
fn org_json(o: &Organization) -> serde_json::Value {
    serde_json::json!({
        "id": o.id,
        "parent_id": o.parent_id,
        "name": o.name.as_str(),
        "kind": o.kind.as_str(),
        "unit_type": o.unit_type.as_str(),
        "path": o.path,
        "version": o.version,
    })
}

/// A member for the audit trail: personal data masked, never in clear.
fn member_json(m: &Member) -> serde_json::Value {
    serde_json::json!({
        "id": m.id,
        "org_id": m.org_id,
        "org_path": m.org_path,
        "name": m.name.as_str(),
        "gender": m.gender.as_str(),
        "category": m.category.as_str(),
        "status": m.status.as_str(),
        "joined_on": m.joined_on.format("%Y-%m-%d").to_string(),
        "flags": m.flags.iter().map(|f| f.as_str()).collect::<Vec<_>>(),
        "phone_masked": m.phone.as_ref().map(Phone::masked),
        "id_card_masked": m.id_card.as_ref().map(IdCard::masked),
        "version": m.version,
    })
}

/// Runs CPU-heavy work (argon2) off the async threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, AppError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| AppError::Internal(format!("blocking task failed: {e}")))
}

/// Today in the business calendar (Asia/Shanghai).
pub fn today() -> chrono::NaiveDate {
    crate::domain::business_today(chrono::Utc::now())
}

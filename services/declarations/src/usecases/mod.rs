//! The use-cases of the declarations service. Each one that changes something opens a
//! transaction, checks authorization and rules, writes through [`crate::store`], stages its event
//! through the outbox, records the transition or audit row, and commits — all or nothing.
//!
//! Authorization runs here on every call (defense in depth), from the caller's verified
//! [`Principal`], with the pure decisions of [`crate::domain::authz`].

mod branch;
mod declarations;
mod evidence;
mod reminders;
mod standards;

pub use branch::{NewEntry, RecordView, ReopeningView};
pub use declarations::{BatchEntry, BatchError, DeclarationView, EntryError, TransitionView};
pub use evidence::{EvidenceStore, EvidenceView};
pub use standards::StandardView;

use crate::domain::Violation;
use crate::domain::authz::Decision;
use jifen_platform::auth::Principal;
use jifen_platform::clock::Clock;
use jifen_standard::{Item, Standard};
use sea_orm::{DatabaseConnection, DbErr};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

/// Why a use-case failed. Mapped to a gRPC status in exactly one place (`grpc.rs`).
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// Bad input: every bad field.
    #[error("invalid request")]
    Invalid(Vec<Violation>),
    /// The caller sees the target but may not do this.
    #[error("permission denied")]
    Denied,
    /// The caller may act on the organization but not on this one thing, named by `field`:
    /// their own points (a manager records and reviews others', never their own).
    #[error("{message}")]
    DeniedOwn { field: String, message: String },
    /// No such `what` (or the caller may not know it exists); `field` names the id.
    #[error("{what} not found")]
    NotFound {
        field: &'static str,
        what: &'static str,
    },
    /// The target's state forbids this now (409): `period_closed`, `not_submitted`, …
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    /// A rule of the standard refuses it (422): `monthly_cap_exceeded`.
    #[error("{message}")]
    Rule {
        code: &'static str,
        message: String,
        field: Option<String>,
    },
    #[error("database error")]
    Db(#[from] DbErr),
    #[error("staging an event failed")]
    Bus(#[from] jifen_eventbus::BusError),
    #[error("evidence storage failed")]
    Io(#[from] std::io::Error),
    #[error("stored data is inconsistent: {0}")]
    Corrupt(String),
}

impl AppError {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid(vec![Violation::new(field, message)])
    }

    fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::Conflict {
            code,
            message: message.into(),
        }
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

/// The name shown in a declaration's history for `actor`.
fn actor_name(actor: &Principal) -> String {
    actor
        .username
        .clone()
        .unwrap_or_else(|| actor.subject.clone())
}

/// Parsed standards by year: `(version, standard)`.
type StandardCache = HashMap<i32, (i64, Arc<Standard>)>;
/// A standard's items with a unit type's overlay applied, by `(year, version, unit type)`.
type ItemsCache = HashMap<(i32, i64, String), Arc<[Item]>>;

/// The declarations service's use-cases over one database.
#[derive(Clone)]
pub struct Declarations {
    db: DatabaseConnection,
    clock: Clock,
    evidence: EvidenceStore,
    /// Parsed standards by year: `(version, standard)`; version 0 is the shipped default.
    standards: Arc<RwLock<StandardCache>>,
    /// Items by unit type of the cached standards (the hot paths check every line against them).
    items: Arc<RwLock<ItemsCache>>,
}

impl Declarations {
    pub fn new(db: DatabaseConnection, clock: Clock, evidence: EvidenceStore) -> Self {
        Self {
            db,
            clock,
            evidence,
            standards: Arc::default(),
            items: Arc::default(),
        }
    }

    pub fn db(&self) -> &DatabaseConnection {
        &self.db
    }

    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// 409 `grading_final` when `member_id`'s grade of `year` is final (定档): RULES.md §3 writes
    /// branch records only for a year whose grading is not final, and nothing else may change
    /// the points of such a year either (docs/decisions/0005-final-years.md).
    async fn ensure_year_not_final(
        &self,
        conn: &impl sea_orm::ConnectionTrait,
        member_id: uuid::Uuid,
        year: i32,
        what: &str,
    ) -> Result<(), AppError> {
        if year_is_final(conn, member_id, year).await? {
            Err(AppError::conflict(
                GRADING_FINAL,
                format!("the member's grade of {year} is final; {what}"),
            ))
        } else {
            Ok(())
        }
    }
}

/// Whether `member_id`'s grade of `year` is final.
async fn year_is_final(
    conn: &impl sea_orm::ConnectionTrait,
    member_id: uuid::Uuid,
    year: i32,
) -> Result<bool, DbErr> {
    Ok(!crate::store::final_members(conn, &[member_id], year)
        .await?
        .is_empty())
}

/// The 409 code of a change to a year whose grade is final.
const GRADING_FINAL: &str = "grading_final";

//! The use-cases of the evaluations service. Each one that changes something opens a
//! transaction, checks authorization and rules, writes through [`crate::store`], stages its
//! event through the outbox ([`jifen_eventbus::stage`]) and commits — all or nothing.
//!
//! Authorization runs here on every call (defense in depth), from the caller's verified
//! [`Principal`]; the rules themselves are the pure functions of [`crate::domain::authz`].

mod republish;
mod rounds;
mod voting;

pub use rounds::{ResultView, RoundView};
pub use voting::{BallotView, BatchBallot, BatchError, Redemption};

use crate::crypto::CodeHasher;
use crate::domain::authz::Decision;
use crate::domain::{
    EvaluatorKind, FieldViolation, Quarter, Round, RoundStatus, RuleError, ScoringSettings,
};
use crate::store::rounds::RoundRow;
use sea_orm::{DatabaseConnection, DbErr};

/// Why a use-case failed. Mapped to a gRPC status in exactly one place (`grpc.rs`).
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// Bad input: every bad field.
    #[error("invalid request")]
    Invalid(Vec<FieldViolation>),
    /// The caller sees the target but may not do this.
    #[error("permission denied")]
    Denied,
    /// No such `what` (or the caller may not know it exists); `field` names the id.
    #[error("{what} not found")]
    NotFound {
        field: &'static str,
        what: &'static str,
    },
    /// An unknown invitation code (never says more).
    #[error("unknown invitation code")]
    InvalidCode,
    /// A domain rule; `field` names the request field it concerns.
    #[error("{rule}")]
    Rule {
        rule: RuleError,
        field: Option<&'static str>,
    },
    #[error("database error")]
    Db(#[from] DbErr),
    #[error("staging an event failed")]
    Bus(#[from] jifen_eventbus::BusError),
    #[error("stored data is inconsistent: {0}")]
    Corrupt(String),
}

impl AppError {
    fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid(vec![FieldViolation {
            field: field.into(),
            message: message.into(),
        }])
    }

    fn rule(rule: RuleError, field: Option<&'static str>) -> Self {
        Self::Rule { rule, field }
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

/// The evaluations use-cases over one database.
#[derive(Clone)]
pub struct Evaluations {
    db: DatabaseConnection,
    hasher: CodeHasher,
}

impl Evaluations {
    pub fn new(db: DatabaseConnection, hasher: CodeHasher) -> Self {
        Self { db, hasher }
    }

    pub fn db(&self) -> &DatabaseConnection {
        &self.db
    }
}

fn corrupt(id: uuid::Uuid, what: &str) -> AppError {
    AppError::Corrupt(format!("round {id}: {what}"))
}

/// A round row as a domain round.
fn round_from_row(r: &RoundRow) -> Result<Round, AppError> {
    let settings = match (
        r.min_ballots,
        r.score_excellent,
        r.score_good,
        r.score_fair,
        r.score_poor,
    ) {
        (Some(min), Some(excellent), Some(good), Some(fair), Some(poor)) => Some(ScoringSettings {
            min_ballots: u32::try_from(min).map_err(|_| corrupt(r.id, "min_ballots"))?,
            excellent,
            good,
            fair,
            poor,
        }),
        _ => None,
    };
    Ok(Round {
        id: r.id,
        org_id: r.org_id,
        org_path: r.org_path.clone(),
        quarter: Quarter::parse(&r.quarter).map_err(|_| corrupt(r.id, "quarter"))?,
        status: RoundStatus::parse(&r.status).map_err(|_| corrupt(r.id, "status"))?,
        opened_at: r.opened_at,
        opened_by: r.opened_by.clone(),
        closes_at: r.closes_at,
        closed_at: r.closed_at,
        closed_by: r.closed_by.clone(),
        settings,
        version: r.version,
    })
}

fn round_to_row(r: &Round) -> RoundRow {
    let s = r.settings;
    RoundRow {
        id: r.id,
        org_id: r.org_id,
        org_path: r.org_path.clone(),
        quarter: r.quarter.to_string(),
        status: r.status.as_str().to_owned(),
        opened_at: r.opened_at,
        opened_by: r.opened_by.clone(),
        closes_at: r.closes_at,
        closed_at: r.closed_at,
        closed_by: r.closed_by.clone(),
        min_ballots: s.map(|s| i32::try_from(s.min_ballots).unwrap_or(i32::MAX)),
        score_excellent: s.map(|s| s.excellent),
        score_good: s.map(|s| s.good),
        score_fair: s.map(|s| s.fair),
        score_poor: s.map(|s| s.poor),
        version: r.version,
    }
}

fn kind_from_row(id: uuid::Uuid, text: &str) -> Result<EvaluatorKind, AppError> {
    EvaluatorKind::parse(text)
        .map_err(|_| AppError::Corrupt(format!("invitation of round {id}: kind")))
}

//! The use-cases of the grading service. Each one that changes something opens a transaction,
//! checks authorization and rules, writes through [`crate::store`], stages its events through the
//! outbox ([`jifen_eventbus::stage`]), writes the audit trail and commits — all or nothing.
//!
//! Authorization runs here on every call (defense in depth), from the caller's verified
//! [`Principal`]; the rules themselves are the pure functions of [`crate::authz`], and the
//! grading rules those of [`crate::domain`].

mod dashboard;
mod drift;
mod export;
mod gradings;
mod inputs;
mod ledger;
mod ranking;

pub use dashboard::{
    BranchLine, BranchesView, DashboardView, Figures, GradeCounts, TrendView, parse_month,
};
pub use drift::{DriftReport, FinalDrift};
pub use export::{EXPORT_BUFFER, EXPORT_CHUNK, ExportItem, ExportedMember, LedgerExport};
pub use gradings::{BranchOutcome, GradingView, reasons_of};
pub use ledger::LedgerView;
pub use ranking::{
    DEFAULT_RANKING, HistogramView, MAX_RANKING, Ranked, RankingView, check_bins, check_limit,
};

use crate::authz::Decision;
use jifen_platform::clock::Clock;
use jifen_standard::Standard;
use sea_orm::{DatabaseConnection, DbErr};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// One bad request field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldViolation {
    pub field: String,
    pub message: String,
}

/// How a broken rule answers: a state conflict (409) or a request the rules refuse (422).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleKind {
    Conflict,
    Unprocessable,
}

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
    /// A grading rule, with its machine code (e.g. `quota_exceeded`).
    #[error("{message}")]
    Rule {
        kind: RuleKind,
        code: &'static str,
        message: String,
        field: Option<String>,
    },
    #[error("database error")]
    Db(#[from] DbErr),
    #[error("staging an event failed")]
    Bus(#[from] jifen_eventbus::BusError),
    #[error("stored data is inconsistent: {0}")]
    Corrupt(String),
}

impl AppError {
    pub(crate) fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid(vec![FieldViolation {
            field: field.into(),
            message: message.into(),
        }])
    }

    pub(crate) fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::Rule {
            kind: RuleKind::Conflict,
            code,
            message: message.into(),
            field: None,
        }
    }

    pub(crate) fn unprocessable(
        code: &'static str,
        message: impl Into<String>,
        field: Option<String>,
    ) -> Self {
        Self::Rule {
            kind: RuleKind::Unprocessable,
            code,
            message: message.into(),
            field,
        }
    }
}

/// Turns an authorization decision into the error the caller may see.
pub(crate) fn authorize(
    decision: Decision,
    field: &'static str,
    what: &'static str,
) -> Result<(), AppError> {
    match decision {
        Decision::Allow => Ok(()),
        Decision::Deny => Err(AppError::Denied),
        Decision::Hide => Err(AppError::NotFound { field, what }),
    }
}

/// Parsed standards by year: `(version, standard)`; a document is parsed once.
type StandardCache = Arc<Mutex<HashMap<i32, (i64, Arc<Standard>)>>>;

/// The grading use-cases over one database.
#[derive(Clone)]
pub struct Grading {
    db: DatabaseConnection,
    clock: Clock,
    standards: StandardCache,
}

impl Grading {
    pub fn new(db: DatabaseConnection, clock: Clock) -> Self {
        Self {
            db,
            clock,
            standards: Arc::default(),
        }
    }

    pub fn db(&self) -> &DatabaseConnection {
        &self.db
    }

    /// The standard of `year`: the newest published one, else the shipped default of that year.
    pub async fn standard_for(&self, year: i32) -> Result<Arc<Standard>, AppError> {
        let stored = crate::store::projection::standard_document(&self.db, year).await?;
        let version = stored.as_ref().map_or(0, |(v, _)| *v);
        if let Some((v, s)) = self
            .standards
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&year)
            && *v == version
        {
            return Ok(s.clone());
        }
        let standard = match stored {
            Some((_, document)) => Standard::parse_json(&document)
                .map_err(|p| AppError::Corrupt(format!("stored standard {year}: {p:?}")))?,
            None => {
                let default = jifen_standard::default_2026()
                    .map_err(|p| AppError::Corrupt(format!("shipped standard: {p:?}")))?;
                if default.year() != year {
                    return Err(AppError::unprocessable(
                        "no_standard",
                        format!("no standard is published for {year}"),
                        Some("year".into()),
                    ));
                }
                default
            }
        };
        let standard = Arc::new(standard);
        self.standards
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(year, (version, standard.clone()));
        Ok(standard)
    }

    /// The last month of `year` the grading covers: 12 for a past year, the current month
    /// (Asia/Shanghai) for the current one; an error for a year not yet begun.
    pub(crate) fn through_month(&self, year: i32) -> Result<u32, AppError> {
        use chrono::Datelike as _;
        let shanghai = chrono::FixedOffset::east_opt(8 * 3600)
            .ok_or_else(|| AppError::Corrupt("UTC+8 offset".into()))?;
        let today = self.clock.now().with_timezone(&shanghai).date_naive();
        match year.cmp(&today.year()) {
            std::cmp::Ordering::Less => Ok(12),
            std::cmp::Ordering::Equal => Ok(today.month()),
            std::cmp::Ordering::Greater => Err(AppError::unprocessable(
                "year_not_started",
                format!("{year} has not begun"),
                Some("year".into()),
            )),
        }
    }

    pub fn clock(&self) -> &Clock {
        &self.clock
    }
}

/// Checks a year request field.
pub(crate) fn check_year(year: i32) -> Result<i32, AppError> {
    if (2000..=2100).contains(&year) {
        Ok(year)
    } else {
        Err(AppError::invalid(
            "year",
            "must be a year between 2000 and 2100",
        ))
    }
}

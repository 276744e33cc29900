//! The evaluations domain: pure values and rules, no I/O (no sea-orm, tonic, lapin or tokio).
//!
//! * [`values`]: the closed vocabularies and validated values of the API — quarter (`YYYY-Qn`),
//!   rating 好/较好/一般/差, evaluator kind 群众/党员, round status, invitation count.
//! * [`code`]: invitation codes (邀请码): generation from an unambiguous alphabet, parsing what a
//!   person typed.
//! * [`round`]: the round aggregate (评议轮次) and the rules of opening, voting and closing.
//! * [`scoring`]: the per-member tally computed at closing (ballots, mean score, poor share,
//!   validity).
//! * [`authz`]: who may do what, as pure functions of the caller's principal.
//! * [`violations`]: collecting every bad field of a request at once.
//!
//! Invariant: a value inside one of these types is valid; every check happens in a `parse`.

pub mod authz;
pub mod code;
pub mod round;
pub mod scoring;
pub mod values;
pub mod violations;

pub use code::Code;
pub use round::{Round, RuleError};
pub use scoring::{MemberResult, ScoringSettings};
pub use values::{EvaluatorKind, InvitationCount, Quarter, Rating, RoundStatus, ValueError};
pub use violations::{FieldViolation, Violations};

/// Offset of the business calendar (Asia/Shanghai, UTC+8, no daylight saving time).
pub const BUSINESS_UTC_OFFSET_HOURS: i64 = 8;

/// Today's date in the business calendar, given the current instant.
pub fn business_today(now: chrono::DateTime<chrono::Utc>) -> chrono::NaiveDate {
    (now + chrono::TimeDelta::hours(BUSINESS_UTC_OFFSET_HOURS)).date_naive()
}

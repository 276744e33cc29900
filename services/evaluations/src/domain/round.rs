//! The round aggregate (评议轮次): one per branch and quarter.
//!
//! States: `open → closed`, nothing after. A round is opened by hand with an optional closing
//! instant; it accepts ballots while open and before that instant; it is closed by hand or,
//! once past its closing instant, by itself. Closing fixes the standard's evaluation settings
//! applied to the tally, and the version goes from 1 (opened) to 2 (closed).

use super::scoring::ScoringSettings;
use super::values::{Quarter, RoundStatus};
use chrono::{DateTime, NaiveDate, Utc};
use uuid::Uuid;

/// A domain rule a request broke; mapped to 409 (state) or 422 (rule) in `grpc.rs`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    /// Rounds are held by branches (党支部) only.
    #[error("evaluation rounds are held by branches only")]
    NotABranch,
    /// The quarter has not begun (business calendar).
    #[error("quarter {0} has not started yet")]
    QuarterNotStarted(Quarter),
    #[error("closes_at must be in the future")]
    ClosesAtNotInFuture,
    /// The branch has no active member to evaluate.
    #[error("the branch has no active members to evaluate")]
    EmptyRoster,
    #[error("the branch already has a round for {0}")]
    RoundExists(Quarter),
    /// A grade of the year is final (定档) in the branch: a round of a quarter of that year
    /// could never count (docs/decisions/0006-final-years-evaluations.md).
    #[error("grades of {0} are final in this branch; a round of that year could no longer count")]
    GradingFinal(i32),
    #[error("the round is closed")]
    RoundClosed,
    /// The code was used for a ballot already.
    #[error("this invitation code has been used")]
    CodeUsed,
    /// A member code must be redeemed with the member's own login.
    #[error("a member invitation code must be redeemed while logged in as a member of the branch")]
    MemberLoginRequired,
    /// The member redeeming a member code is not on the round's roster.
    #[error("only members of the branch may use member invitation codes")]
    NotOnRoster,
    /// A member of the round's roster redeeming a masses (群众) code: their ballot would rate
    /// themself. Members of the branch rate with member codes, which leave them off their ballot.
    #[error(
        "a member of the branch cannot use a masses invitation code; use a member invitation code"
    )]
    MassesCodeForRosterMember,
}

/// A quarterly evaluation round.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Round {
    pub id: Uuid,
    pub org_id: Uuid,
    pub org_path: String,
    pub quarter: Quarter,
    pub status: RoundStatus,
    pub opened_at: DateTime<Utc>,
    pub opened_by: String,
    pub closes_at: Option<DateTime<Utc>>,
    pub closed_at: Option<DateTime<Utc>>,
    pub closed_by: Option<String>,
    /// The settings applied at closing; `None` while open.
    pub settings: Option<ScoringSettings>,
    pub version: i64,
}

/// Who closes a round that passed its closing instant.
pub const SYSTEM_ACTOR: &str = "system:closing-instant";

impl Round {
    /// Opens a round of `quarter` for the branch at `org_path`, checking that the quarter has
    /// begun on `today` (business calendar) and that `closes_at`, if any, is after `now`.
    #[allow(clippy::too_many_arguments)]
    pub fn open(
        id: Uuid,
        org_id: Uuid,
        org_path: String,
        quarter: Quarter,
        closes_at: Option<DateTime<Utc>>,
        opened_by: String,
        now: DateTime<Utc>,
        today: NaiveDate,
    ) -> Result<Self, RuleError> {
        if quarter.first_day() > today {
            return Err(RuleError::QuarterNotStarted(quarter));
        }
        if closes_at.is_some_and(|c| c <= now) {
            return Err(RuleError::ClosesAtNotInFuture);
        }
        Ok(Self {
            id,
            org_id,
            org_path,
            quarter,
            status: RoundStatus::Open,
            opened_at: now,
            opened_by,
            closes_at,
            closed_at: None,
            closed_by: None,
            settings: None,
            version: 1,
        })
    }

    /// Open, but past its closing instant: it must close itself.
    pub fn is_due(&self, now: DateTime<Utc>) -> bool {
        self.status == RoundStatus::Open && self.closes_at.is_some_and(|c| c <= now)
    }

    /// Whether a ballot (or a redemption, or new codes) is accepted at `now`.
    pub fn check_accepting(&self, now: DateTime<Utc>) -> Result<(), RuleError> {
        if self.status == RoundStatus::Closed || self.is_due(now) {
            Err(RuleError::RoundClosed)
        } else {
            Ok(())
        }
    }

    /// Closes the round with the standard's `settings`. A round past its closing instant is
    /// stamped closed at that instant.
    pub fn close(
        &mut self,
        by: String,
        settings: ScoringSettings,
        now: DateTime<Utc>,
    ) -> Result<(), RuleError> {
        if self.status == RoundStatus::Closed {
            return Err(RuleError::RoundClosed);
        }
        let at = match self.closes_at {
            Some(c) if c <= now => c,
            _ => now,
        };
        self.status = RoundStatus::Closed;
        self.closed_at = Some(at);
        self.closed_by = Some(by);
        self.settings = Some(settings);
        self.version += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use chrono::TimeDelta;

    const SETTINGS: ScoringSettings = ScoringSettings {
        min_ballots: 5,
        excellent: 1000,
        good: 800,
        fair: 600,
        poor: 0,
    };

    fn open(
        quarter: &str,
        closes_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<Round, RuleError> {
        Round::open(
            Uuid::now_v7(),
            Uuid::now_v7(),
            "/r/b/".into(),
            Quarter::parse(quarter).unwrap(),
            closes_at,
            "s".into(),
            now,
            super::super::business_today(now),
        )
    }

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().to_utc()
    }

    #[test]
    fn opening_rules() {
        let now = at("2026-07-01T00:00:00Z"); // 08:00 on 1 July in Shanghai
        assert!(open("2026-Q3", None, now).is_ok());
        assert!(open("2025-Q1", None, now).is_ok());
        assert_eq!(
            open("2026-Q4", None, now).unwrap_err(),
            RuleError::QuarterNotStarted(Quarter::parse("2026-Q4").unwrap())
        );
        // 30 June 17:00 UTC is already 1 July in Shanghai.
        assert!(open("2026-Q3", None, at("2026-06-30T17:00:00Z")).is_ok());
        assert_eq!(
            open("2026-Q3", Some(now), now).unwrap_err(),
            RuleError::ClosesAtNotInFuture
        );
        let r = open("2026-Q3", Some(now + TimeDelta::hours(1)), now).unwrap();
        assert_eq!((r.status, r.version), (RoundStatus::Open, 1));
    }

    #[test]
    fn closing_instant_closes_the_round() {
        let now = at("2026-07-02T00:00:00Z");
        let closes = now + TimeDelta::hours(1);
        let mut r = open("2026-Q3", Some(closes), now).unwrap();
        assert!(r.check_accepting(now).is_ok());
        let later = closes + TimeDelta::minutes(5);
        assert!(r.is_due(later));
        assert_eq!(r.check_accepting(later), Err(RuleError::RoundClosed));
        r.close(SYSTEM_ACTOR.into(), SETTINGS, later).unwrap();
        assert_eq!(r.closed_at, Some(closes));
        assert_eq!((r.status, r.version), (RoundStatus::Closed, 2));
        assert!(!r.is_due(later));
        assert_eq!(
            r.close("s".into(), SETTINGS, later),
            Err(RuleError::RoundClosed)
        );
    }

    #[test]
    fn closing_by_hand_stamps_now() {
        let now = at("2026-07-02T00:00:00Z");
        let mut r = open("2026-Q3", None, now).unwrap();
        let later = now + TimeDelta::days(3);
        r.close("secretary".into(), SETTINGS, later).unwrap();
        assert_eq!(r.closed_at, Some(later));
        assert_eq!(r.settings, Some(SETTINGS));
        assert_eq!(r.check_accepting(later), Err(RuleError::RoundClosed));
    }
}

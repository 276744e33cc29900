//! The demo city's history (docs/decisions/0014-demo-history.md), in one place that every
//! service's `seed-demo-history` command reads its share of:
//!
//! * [`Shape`]: how big the city is (5 committees × 8 branches × 25 members for `make run`, a
//!   small one for tests); each shape has its own marker versions;
//! * [`Manifest`]: the ids `jifen-members seed-demo` created (organizations, members, accounts,
//!   secretaries), written by `jifen-members demo-manifest`, and the [`Principal`]s of the people
//!   who act in the history (a member declares, the branch secretary reviews and records, the
//!   admin of the root committee finalizes);
//! * [`Plan`]: the deterministic history itself, a pure function of a seed, the shape and the
//!   business date "today": who declares what in which month, how each declaration is reviewed,
//!   what the branch records, how the masses and members rate each quarter, and who appeals.
//!
//! Invariants: the same seed, shape and today give the same plan, whatever order it is asked in
//! (each decision draws from its own generator keyed by what it decides, never from a shared
//! stream); the plan holds no ids, only positions in the city, so it is checked without a
//! database.

mod manifest;
pub mod marker;
mod plan;

pub use manifest::{BranchRef, CommitteeRef, Manifest, MemberRef, OrgRef, Person};
pub use plan::{
    Ballot, BallotKind, DeclarationPlan, EntryPlan, LinePlan, Plan, Rating, Review, Tier, YearMonth,
};

/// The seed of `make run`'s history.
pub const DEFAULT_SEED: u64 = 20_251_203;

/// The size of a demo city: committees under the root, branches per committee, members per
/// branch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Shape {
    pub committees: usize,
    pub branches: usize,
    pub members: usize,
}

impl Shape {
    /// `make run`'s city: 1,000 members.
    pub const FULL: Shape = Shape {
        committees: 5,
        branches: 8,
        members: 25,
    };
    /// The tests' city: 48 members, still with every grade.
    pub const SMALL: Shape = Shape {
        committees: 2,
        branches: 2,
        members: 12,
    };

    /// `full`, `small`, or `<committees>x<branches>x<members>` (each 1–99; a branch needs at
    /// least 6 members for a round to have enough evaluators).
    pub fn parse(text: &str) -> Result<Shape, String> {
        match text.trim() {
            "full" => return Ok(Shape::FULL),
            "small" => return Ok(Shape::SMALL),
            _ => {}
        }
        let parts: Vec<&str> = text.trim().split('x').collect();
        let numbers: Vec<usize> = parts.iter().filter_map(|p| p.parse().ok()).collect();
        match numbers.as_slice() {
            [c, b, m]
                if parts.len() == 3
                    && (1..100).contains(c)
                    && (1..100).contains(b)
                    && (6..100).contains(m) =>
            {
                Ok(Shape {
                    committees: *c,
                    branches: *b,
                    members: *m,
                })
            }
            _ => Err(format!(
                "scale {text:?}: give full, small or <committees>x<branches>x<members> (1–99 each, at least 6 members a branch)"
            )),
        }
    }

    /// `5x8x25`: part of every marker version, so each shape has its own markers.
    pub fn label(&self) -> String {
        format!("{}x{}x{}", self.committees, self.branches, self.members)
    }

    pub fn branch_count(&self) -> usize {
        self.committees * self.branches
    }

    pub fn member_count(&self) -> usize {
        self.branch_count() * self.members
    }
}

impl std::fmt::Display for Shape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.label())
    }
}

/// The business date (Asia/Shanghai) of `now`.
pub fn business_date(now: chrono::DateTime<chrono::Utc>) -> chrono::NaiveDate {
    (now + chrono::Duration::hours(8)).date_naive()
}

/// The UTC instant of `hour`:00 on `date` in Asia/Shanghai.
pub fn shanghai(date: chrono::NaiveDate, hour: u32) -> chrono::DateTime<chrono::Utc> {
    let at = date
        .and_hms_opt(hour.min(23), 0, 0)
        .unwrap_or_else(|| date.and_time(chrono::NaiveTime::MIN));
    at.and_utc() - chrono::Duration::hours(8)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn shapes_parse_and_label() {
        assert_eq!(Shape::parse("full").unwrap(), Shape::FULL);
        assert_eq!(Shape::parse("small").unwrap(), Shape::SMALL);
        assert_eq!(Shape::parse("3x2x10").unwrap().label(), "3x2x10");
        assert!(Shape::parse("3x2x5").unwrap_err().contains("at least 6"));
        assert!(Shape::parse("big").is_err());
        assert_eq!(Shape::FULL.member_count(), 1000);
    }

    #[test]
    fn shanghai_hours_are_utc_minus_eight() {
        let d = chrono::NaiveDate::from_ymd_opt(2025, 3, 1).unwrap();
        assert_eq!(shanghai(d, 8).to_rfc3339(), "2025-03-01T00:00:00+00:00");
        assert_eq!(business_date(shanghai(d, 23)), d);
    }
}

/// The command-line arguments every `seed-demo-history` takes.
#[derive(Debug, Clone, clap::Args)]
pub struct HistoryArgs {
    /// The city's manifest, written by `jifen-members demo-manifest`.
    #[arg(long)]
    pub manifest: std::path::PathBuf,
    /// The history's seed: the same seed gives the same history.
    #[arg(long, default_value_t = DEFAULT_SEED)]
    pub seed: u64,
    /// The business date the history runs up to (`YYYY-MM-DD`, Asia/Shanghai); default today.
    #[arg(long)]
    pub today: Option<chrono::NaiveDate>,
    /// Branches seeded at the same time.
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,
    /// Connections of the seeding's database pool.
    #[arg(long, default_value_t = 10)]
    pub connections: u32,
}

impl HistoryArgs {
    /// The business date the history runs up to: `--today`, else today in Asia/Shanghai.
    pub fn today(&self) -> chrono::NaiveDate {
        self.today
            .unwrap_or_else(|| business_date(chrono::Utc::now()))
    }
}

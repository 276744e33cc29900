//! The year-end batch: `jifen-grading batch --year Y --org ID [--shard i/n]` grades every branch
//! (党支部) of a subtree — a city, a province — through the same use-case as `ComputeGrading`.
//!
//! * Streaming: only the list of the subtree's branch ids and paths is held; each branch's
//!   members, ledger entries and quarter results are read, graded and written in its own
//!   transaction, a few branches at a time.
//! * Safe to re-run: a branch whose inputs have not changed writes nothing (same rows, no
//!   duplicates); a branch that has confirmed or finalized is left alone.
//! * Sharding: `--shard i/n` (0 ≤ i < n, the index of a Kubernetes indexed Job's pod) takes the
//!   branches whose position in the id-ordered list is `i` modulo `n`, so n pods together grade
//!   the whole subtree exactly once.

use crate::store::projection;
use crate::usecases::{AppError, BranchOutcome, Grading};
use futures::StreamExt as _;
use std::str::FromStr;
use uuid::Uuid;

/// Branches graded at the same time (each in its own transaction).
const CONCURRENCY: usize = 4;

/// `i/n`: this pod's part of the subtree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

impl Shard {
    /// The whole subtree.
    pub const ALL: Self = Self { index: 0, count: 1 };

    /// Whether the branch at `position` of the id-ordered list belongs to this shard.
    pub fn takes(self, position: usize) -> bool {
        position % (self.count as usize) == self.index as usize
    }
}

impl FromStr for Shard {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("--shard must be i/n with 0 <= i < n, got {s:?}");
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let index: u32 = i.trim().parse().map_err(|_| bad())?;
        let count: u32 = n.trim().parse().map_err(|_| bad())?;
        if count == 0 || index >= count {
            return Err(bad());
        }
        Ok(Self { index, count })
    }
}

/// What a batch run did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Report {
    /// Branches of this shard.
    pub branches: u64,
    pub stored: u64,
    pub unchanged: u64,
    /// Already confirmed or final: left alone.
    pub settled: u64,
}

/// Progress after each branch: `(done, total)`.
pub type Progress<'a> = &'a mut (dyn FnMut(u64, u64) + Send);

/// Grades this shard's branches of the subtree of `org_id` for `year`.
pub async fn run(
    grading: &Grading,
    org_id: Uuid,
    year: i32,
    shard: Shard,
    progress: Progress<'_>,
) -> Result<Report, AppError> {
    let org = projection::find_org(grading.db(), org_id)
        .await?
        .ok_or(AppError::NotFound {
            field: "org",
            what: "organization",
        })?;
    let branches: Vec<projection::OrgRow> = projection::branches_under(grading.db(), &org.path)
        .await?
        .into_iter()
        .enumerate()
        .filter(|(i, _)| shard.takes(*i))
        .map(|(_, b)| b)
        .collect();
    // Fail before writing anything when the year cannot be graded.
    grading.standard_for(year).await?;
    let mut report = Report {
        branches: branches.len() as u64,
        ..Report::default()
    };
    let actor = format!("batch:{}/{}", shard.index, shard.count);
    let mut results = futures::stream::iter(branches.iter())
        .map(|b| grading.grade_branch(b, year, &actor))
        .buffer_unordered(CONCURRENCY);
    let mut done = 0;
    while let Some(outcome) = results.next().await {
        match outcome? {
            BranchOutcome::Stored => report.stored += 1,
            BranchOutcome::Unchanged => report.unchanged += 1,
            BranchOutcome::Settled => report.settled += 1,
        }
        done += 1;
        progress(done, report.branches);
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_parse_and_partition() {
        assert_eq!("1/3".parse::<Shard>(), Ok(Shard { index: 1, count: 3 }));
        assert!("3/3".parse::<Shard>().is_err());
        assert!("0/0".parse::<Shard>().is_err());
        assert!("a/3".parse::<Shard>().is_err());
        let shards: Vec<Shard> = (0..3).map(|i| Shard { index: i, count: 3 }).collect();
        for position in 0..100 {
            assert_eq!(shards.iter().filter(|s| s.takes(position)).count(), 1);
        }
    }
}

//! The year-end batch: `jifen-grading batch --year Y --org ID [--shard i/n]` grades every branch
//! (党支部) of a subtree — a city, a province — through the same use-case as `ComputeGrading`.
//!
//! * Streaming: only the list of the subtree's branches (id, path, unit type) is held; the
//!   branches are taken in chunks of [`CHUNK`] consecutive ones in path order, and each chunk's
//!   members, with their ledger entries and quarter results aggregated by PostgreSQL, are read in
//!   one statement, graded and written in one transaction.
//! * Safe to re-run: a branch whose inputs have not changed writes nothing (same rows, no
//!   duplicates); a branch that has confirmed or finalized is left alone.
//! * Sharding: `--shard i/n` (0 ≤ i < n, the index of a Kubernetes indexed Job's pod) takes the
//!   i-th of n contiguous ranges of the path-ordered branch list, so n pods together grade the
//!   whole subtree exactly once (and each reads only its own range).

use crate::store::projection;
use crate::usecases::{AppError, BranchOutcome, Grading};
use std::str::FromStr;
use uuid::Uuid;

/// Branches read, graded and written together (one statement to read, one transaction).
pub const CHUNK: usize = 100;

/// `i/n`: this pod's part of the subtree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

impl Shard {
    /// The whole subtree.
    pub const ALL: Self = Self { index: 0, count: 1 };

    /// This shard's contiguous part `start..end` of a list of `len` items.
    pub fn range(self, len: usize) -> std::ops::Range<usize> {
        let (i, n) = (self.index as usize, self.count as usize);
        (len * i / n)..(len * (i + 1) / n)
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
    let all = projection::branches_under(grading.db(), &org.path).await?;
    let branches = &all[shard.range(all.len())];
    // Fail before writing anything when the year cannot be graded.
    grading.standard_for(year).await?;
    let mut report = Report {
        branches: branches.len() as u64,
        ..Report::default()
    };
    let actor = format!("batch:{}/{}", shard.index, shard.count);
    for (_, outcome) in grading
        .grade_subtree(branches, year, &actor, progress)
        .await?
    {
        match outcome {
            BranchOutcome::Stored => report.stored += 1,
            BranchOutcome::Unchanged => report.unchanged += 1,
            BranchOutcome::Settled => report.settled += 1,
        }
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
        for len in [0, 1, 2, 7, 100] {
            let mut covered = Vec::new();
            for index in 0..3 {
                covered.extend(Shard { index, count: 3 }.range(len));
            }
            assert_eq!(
                covered,
                (0..len).collect::<Vec<_>>(),
                "three shards of {len}"
            );
        }
    }
}

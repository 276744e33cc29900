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
//!   branches whose id [`Shard::of`] names `i`: a pure function of the branch's id (FNV-1a over
//!   its 16 bytes, finished by a 64-bit mixer, modulo n), not of its place in a list read at
//!   start. A branch belongs to one shard whatever else is in the tree, so n pods grade every
//!   branch exactly once even when branches are added, moved away or removed between two pods'
//!   starts or before a retry: a branch added late is graded by the shard its id names, if that
//!   pod has not yet read its list, and by the next run otherwise — never by two pods of one
//!   run. The function is part of the operator contract (fixed test vectors below): changing it
//!   would let one run's pods disagree about who owns what.
//! * What a shard reads: the subtree's branch list (ids and paths, a few thousand rows for a
//!   city), filtered here; the member stream of [`Grading::grade_subtree`] still spans the range
//!   from the shard's first to its last branch, i.e. nearly the whole subtree, and the members of
//!   other shards' branches are skipped after decoding. `docs/scaling.md` measures what that
//!   costs and where the filter would move to the SQL.

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

    /// The shard, out of `count`, that owns the branch `id`: FNV-1a (64-bit, the standard offset
    /// basis and prime) over the id's 16 bytes, then the murmur3 `fmix64` finalizer so that every
    /// input bit reaches the low bits, modulo `count`. Stable across Rust releases and platforms
    /// (unlike `std`'s `DefaultHasher`), and spread over every byte: a UUIDv7's leading bytes are
    /// its time, which alone would not spread branches created together.
    pub fn of(id: Uuid, count: u32) -> u32 {
        const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
        const PRIME: u64 = 0x0000_0100_0000_01b3;
        let mut h = OFFSET;
        for byte in id.as_bytes() {
            h ^= u64::from(*byte);
            h = h.wrapping_mul(PRIME);
        }
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        h ^= h >> 33;
        // `count` is at least 1 (`FromStr` refuses 0) and the remainder is below it: both fit u32.
        u32::try_from(h % u64::from(count.max(1))).unwrap_or(0)
    }

    /// Whether the branch `id` is this shard's.
    pub fn contains(self, id: Uuid) -> bool {
        Self::of(id, self.count) == self.index
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
    let mut branches = projection::branches_under(grading.db(), &org.path).await?;
    // Still in path order, as `grade_subtree` requires.
    branches.retain(|b| shard.contains(b.id));
    // Fail before writing anything when the year cannot be graded.
    grading.standard_for(year).await?;
    let mut report = Report {
        branches: branches.len() as u64,
        ..Report::default()
    };
    let actor = format!("batch:{}/{}", shard.index, shard.count);
    for (_, outcome) in grading
        .grade_subtree(&branches, year, &actor, progress)
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
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn shards_parse() {
        assert_eq!("1/3".parse::<Shard>(), Ok(Shard { index: 1, count: 3 }));
        assert!("3/3".parse::<Shard>().is_err());
        assert!("0/0".parse::<Shard>().is_err());
        assert!("a/3".parse::<Shard>().is_err());
    }

    /// Pinned: the pods of one run may be different builds (a rollout during the batch), so the
    /// function must never change silently.
    #[test]
    fn membership_is_a_fixed_function_of_the_id() {
        let ids = [
            "00000000-0000-0000-0000-000000000000",
            "0193a7a2-5c4e-7b1d-9f3a-2c1e8d4b6a70",
            "00000001-0000-7000-8000-000000000001",
            "ffffffff-ffff-ffff-ffff-ffffffffffff",
        ];
        let got: Vec<[u32; 4]> = ids
            .iter()
            .map(|s| {
                let id: Uuid = s.parse().unwrap();
                [
                    Shard::of(id, 2),
                    Shard::of(id, 3),
                    Shard::of(id, 4),
                    Shard::of(id, 7),
                ]
            })
            .collect();
        assert_eq!(got, PINNED);
    }

    /// Computed by a separate implementation (the Python of docs/decisions/0004-grading.md).
    const PINNED: [[u32; 4]; 4] = [[0, 0, 2, 2], [0, 1, 0, 2], [0, 0, 0, 3], [1, 0, 3, 5]];

    #[test]
    fn ids_created_together_spread_evenly() {
        // UUIDv7s minted in one burst share their leading (time) bytes.
        let n = 4;
        let mut counts = [0u32; 4];
        for _ in 0..4000 {
            counts[Shard::of(Uuid::now_v7(), n) as usize] += 1;
        }
        assert!(
            counts.iter().all(|&c| (800..1200).contains(&c)),
            "{counts:?}"
        );
        // And sequential ids such as the bench's: only the last bytes differ.
        let mut counts = [0u32; 4];
        for b in 0..4000u128 {
            let id = Uuid::from_u128(0x0000_0001_0000_7000_8000_0000_0000_0000 | b);
            counts[Shard::of(id, n) as usize] += 1;
        }
        assert!(
            counts.iter().all(|&c| (800..1200).contains(&c)),
            "{counts:?}"
        );
    }

    proptest! {
        /// Every id lands in exactly one of the n shards, whatever n.
        #[test]
        fn every_id_is_in_exactly_one_shard(bytes in any::<u128>(), count in 1u32..64) {
            let id = Uuid::from_u128(bytes);
            let owners: Vec<u32> = (0..count)
                .filter(|&index| Shard { index, count }.contains(id))
                .collect();
            prop_assert_eq!(owners.len(), 1);
            prop_assert_eq!(owners[0], Shard::of(id, count));
        }

    }
}

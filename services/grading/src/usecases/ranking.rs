//! The dashboard's ranking 积分排行: the active members of an organization's subtree by their
//! year's ledger total with every cap applied (RULES.md §5 steps 1–5), highest first, ties by
//! member id (docs/decisions/0008-dashboard.md).
//!
//! Invariants:
//! * **One computation.** Totals come from [`super::export::member_totals`], the computation of
//!   `GetLedger` and of the ledger export, so a member's rank uses the very total their ledger
//!   shows.
//! * **Bounded memory.** The subtree is read by the export's single streamed statement; only the
//!   best `limit` members (at most [`MAX_RANKING`]) are held, in a heap.
//! * Authorization (staff over the organization) is checked before anything is read.
//!
//! The histogram of the same totals 积分分布 (docs/decisions/0015-dashboard-trend.md) runs the
//! same computation over the same stream and keeps one total per member (four bytes each).

use super::export::{ItemIndexes, member_totals};
use super::{AppError, Grading, authorize, check_year};
use crate::authz;
use crate::domain::dashboard::{Bin, DEFAULT_BINS, MAX_BINS, histogram};
use crate::store::inputs as inputs_store;
use crate::store::projection;
use crate::store::projection::{MemberRow, OrgRow};
use jifen_platform::auth::Principal;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use uuid::Uuid;

/// Members ranked when the caller does not say.
pub const DEFAULT_RANKING: u32 = 10;
/// The most members a ranking lists.
pub const MAX_RANKING: u32 = 100;

/// One ranked member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ranked {
    pub member_id: Uuid,
    pub name: String,
    /// The member's branch (党支部): (id, name), when they are in one.
    pub branch: Option<(Uuid, String)>,
    /// Deci-points.
    pub total: i32,
}

/// What `GetRanking` answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RankingView {
    pub org_path: String,
    pub year: i32,
    pub items: Vec<Ranked>,
}

/// What `GetDashboardHistogram` answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistogramView {
    pub org_id: Uuid,
    pub org_path: String,
    pub year: i32,
    pub members: i64,
    /// Deci-points.
    pub bin_width: i64,
    pub bins: Vec<Bin>,
}

/// `bins`: 0 → [`DEFAULT_BINS`]; 1 to [`MAX_BINS`]; else a bad `bins` field.
pub fn check_bins(bins: i32) -> Result<u32, AppError> {
    match u32::try_from(bins) {
        Ok(0) => Ok(DEFAULT_BINS),
        Ok(n) if n <= MAX_BINS => Ok(n),
        _ => Err(AppError::invalid(
            "bins",
            format!("must be from 1 to {MAX_BINS}"),
        )),
    }
}

/// `limit`: 0 → [`DEFAULT_RANKING`]; 1 to [`MAX_RANKING`]; else a bad `limit` field.
pub fn check_limit(limit: i32) -> Result<usize, AppError> {
    match limit {
        0 => Ok(DEFAULT_RANKING as usize),
        n if n >= 1 && n <= MAX_RANKING as i32 => Ok(n as usize),
        _ => Err(AppError::invalid(
            "limit",
            format!("must be from 1 to {MAX_RANKING}"),
        )),
    }
}

/// Heap order: the *worst* ranked member on top — lower total, then greater id.
#[derive(Debug, PartialEq, Eq)]
struct Entry {
    total: i32,
    id: Uuid,
    name: String,
    branch: Option<(Uuid, String)>,
}

impl Ord for Entry {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (Reverse(self.total), &self.id).cmp(&(Reverse(other.total), &other.id))
    }
}

impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// The best `limit` members seen so far: a max-heap whose top is the worst kept one.
pub struct Top {
    limit: usize,
    heap: BinaryHeap<Entry>,
}

impl Top {
    pub fn new(limit: usize) -> Self {
        Self {
            limit,
            heap: BinaryHeap::with_capacity(limit + 1),
        }
    }

    pub fn push(&mut self, id: Uuid, name: String, branch: Option<(Uuid, String)>, total: i32) {
        self.heap.push(Entry {
            total,
            id,
            name,
            branch,
        });
        if self.heap.len() > self.limit {
            self.heap.pop();
        }
    }

    /// Total descending, then member id ascending.
    pub fn into_ranked(self) -> Vec<Ranked> {
        let mut ranked: Vec<Ranked> = self
            .heap
            .into_iter()
            .map(|e| Ranked {
                member_id: e.id,
                name: e.name,
                branch: e.branch,
                total: e.total,
            })
            .collect();
        ranked.sort_by(|a, b| b.total.cmp(&a.total).then(a.member_id.cmp(&b.member_id)));
        ranked
    }
}

/// The branch (党支部) of organization `org`: itself when it is a branch, else the nearest
/// branch above it among `orgs`.
fn branch_of(orgs: &HashMap<Uuid, OrgRow>, org: Uuid) -> Option<(Uuid, String)> {
    let mut at = orgs.get(&org);
    // A path is at most a few levels deep; the bound only guards against a cycle in bad data.
    for _ in 0..64 {
        let o = at?;
        if o.kind == "branch" {
            return Some((o.id, o.name.clone()));
        }
        at = orgs.get(&o.parent_id?);
    }
    None
}

impl Grading {
    /// Calls `each` with every active member of the subtree of `path` and their `year`'s total
    /// with every cap applied (deci-points), from the ledger export's one streamed statement and
    /// its own computation; answers the subtree's organizations and those above it by id.
    async fn active_totals(
        &self,
        path: &str,
        year: i32,
        mut each: impl FnMut(&HashMap<Uuid, OrgRow>, MemberRow, i32),
    ) -> Result<(), AppError> {
        use futures::StreamExt as _;
        let standard = self.standard_for(year).await?;
        let mut orgs: HashMap<Uuid, OrgRow> = projection::orgs_under(&self.db, path)
            .await?
            .into_iter()
            .map(|o| (o.id, o))
            .collect();
        // The organizations above the subtree, for a group's branch.
        for segment in path.trim_matches('/').split('/') {
            if let Ok(id) = Uuid::parse_str(segment)
                && !orgs.contains_key(&id)
                && let Some(o) = projection::find_org(&self.db, id).await?
            {
                orgs.insert(id, o);
            }
        }
        let pool = self.db.get_postgres_connection_pool().clone();
        let mut rows = std::pin::pin!(inputs_store::aggregated_members_under(&pool, path, year));
        let mut indexes = ItemIndexes::new();
        while let Some(row) = rows.next().await {
            let row = row?;
            if row.member.status != "active" {
                continue;
            }
            let totals = member_totals(
                &standard,
                &mut indexes,
                orgs.get(&row.member.org_id).map(|o| o.unit_type.as_str()),
                &row.entries,
                row.quarters,
            );
            each(&orgs, row.member, totals.total.tenths());
        }
        Ok(())
    }

    /// `GetRanking`: the best `limit` active members of the subtree of `org_id` by their
    /// `year`'s capped total.
    pub async fn ranking(
        &self,
        caller: &Principal,
        org_id: Uuid,
        year: i32,
        limit: usize,
    ) -> Result<RankingView, AppError> {
        let year = check_year(year)?;
        let org = self.org(org_id).await?;
        authorize(
            authz::read_dashboard(caller, &org.path),
            "org_id",
            "organization",
        )?;
        let mut best = Top::new(limit);
        self.active_totals(&org.path, year, |orgs, member, total| {
            let branch = branch_of(orgs, member.org_id);
            best.push(member.id, member.name, branch, total);
        })
        .await?;
        let items = best.into_ranked();
        Ok(RankingView {
            org_path: org.path,
            year,
            items,
        })
    }

    /// `GetDashboardHistogram`: the distribution of the `year`'s capped totals of the active
    /// members of the subtree of `org_id` in `bins` bins (see [`histogram`]).
    pub async fn dashboard_histogram(
        &self,
        caller: &Principal,
        org_id: Uuid,
        year: i32,
        bins: u32,
    ) -> Result<HistogramView, AppError> {
        let year = check_year(year)?;
        let org = self.org(org_id).await?;
        authorize(
            authz::read_dashboard(caller, &org.path),
            "org_id",
            "organization",
        )?;
        let mut totals = Vec::new();
        self.active_totals(&org.path, year, |_, _, total| totals.push(total))
            .await?;
        let (bin_width, bins) = histogram(&totals, bins);
        Ok(HistogramView {
            org_id: org.id,
            org_path: org.path,
            year,
            members: i64::try_from(totals.len()).unwrap_or(i64::MAX),
            bin_width,
            bins,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn bins_default_to_10_and_stop_at_50() {
        assert_eq!(check_bins(0).ok(), Some(10));
        assert_eq!(check_bins(1).ok(), Some(1));
        assert_eq!(check_bins(50).ok(), Some(50));
        for bad in [-1, 51] {
            assert!(matches!(check_bins(bad), Err(AppError::Invalid(v)) if v[0].field == "bins"));
        }
    }

    #[test]
    fn limits_default_to_10_and_stop_at_100() {
        assert_eq!(check_limit(0).ok(), Some(10));
        assert_eq!(check_limit(1).ok(), Some(1));
        assert_eq!(check_limit(100).ok(), Some(100));
        for bad in [-1, 101] {
            assert!(matches!(check_limit(bad), Err(AppError::Invalid(v)) if v[0].field == "limit"));
        }
    }

    proptest! {
        #[test]
        fn top_is_the_head_of_the_full_sort(
            totals in proptest::collection::vec(-50i32..50, 0..200),
            limit in 1usize..20,
        ) {
            let members: Vec<(Uuid, String, i32)> = totals
                .iter()
                .map(|t| (Uuid::now_v7(), String::new(), *t))
                .collect();
            let mut sorted = members.clone();
            sorted.sort_by(|a, b| b.2.cmp(&a.2).then(a.0.cmp(&b.0)));
            let want: Vec<(Uuid, i32)> = sorted.iter().take(limit).map(|m| (m.0, m.2)).collect();
            let mut best = Top::new(limit);
            for (id, name, total) in members {
                best.push(id, name, None, total);
            }
            let got: Vec<(Uuid, i32)> =
                best.into_ranked().iter().map(|r| (r.member_id, r.total)).collect();
            prop_assert_eq!(got, want);
        }
    }
}

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

use super::export::{ItemIndexes, member_totals};
use super::{AppError, Grading, authorize, check_year};
use crate::authz;
use crate::store::inputs as inputs_store;
use crate::store::projection;
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

    pub fn push(&mut self, id: Uuid, name: String, total: i32) {
        self.heap.push(Entry { total, id, name });
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
                total: e.total,
            })
            .collect();
        ranked.sort_by(|a, b| b.total.cmp(&a.total).then(a.member_id.cmp(&b.member_id)));
        ranked
    }
}

impl Grading {
    /// `GetRanking`: the best `limit` active members of the subtree of `org_id` by their
    /// `year`'s capped total.
    pub async fn ranking(
        &self,
        caller: &Principal,
        org_id: Uuid,
        year: i32,
        limit: usize,
    ) -> Result<RankingView, AppError> {
        use futures::StreamExt as _;
        let year = check_year(year)?;
        let org = self.org(org_id).await?;
        authorize(
            authz::read_dashboard(caller, &org.path),
            "org_id",
            "organization",
        )?;
        let standard = self.standard_for(year).await?;
        let unit_types: HashMap<Uuid, String> = projection::orgs_under(&self.db, &org.path)
            .await?
            .into_iter()
            .map(|o| (o.id, o.unit_type))
            .collect();
        let pool = self.db.get_postgres_connection_pool().clone();
        let mut rows = std::pin::pin!(inputs_store::aggregated_members_under(
            &pool, &org.path, year
        ));
        let mut indexes = ItemIndexes::new();
        let mut best = Top::new(limit);
        while let Some(row) = rows.next().await {
            let row = row?;
            if row.member.status != "active" {
                continue;
            }
            let totals = member_totals(
                &standard,
                &mut indexes,
                unit_types.get(&row.member.org_id).map(String::as_str),
                &row.entries,
                row.quarters,
            );
            best.push(row.member.id, row.member.name, totals.total.tenths());
        }
        let items = best.into_ranked();
        Ok(RankingView {
            org_path: org.path,
            year,
            items,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

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
                best.push(id, name, total);
            }
            let got: Vec<(Uuid, i32)> =
                best.into_ranked().iter().map(|r| (r.member_id, r.total)).collect();
            prop_assert_eq!(got, want);
        }
    }
}

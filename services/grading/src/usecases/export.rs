//! The ledger export 台账导出: the points ledger 积分台账 of every member of an organization's
//! subtree for one year, with each member's totals, for `GET /orgs/{id}/exports/ledger.xlsx`.
//!
//! Invariants:
//! * **Bounded memory.** The members are read by one statement, streamed in the byte order of
//!   their paths (the same read as the year-end grading: [`inputs_store::aggregated_members_under`],
//!   entries packed by PostgreSQL in `member_years`), and handed on in chunks of
//!   [`EXPORT_CHUNK`] members through a channel of [`EXPORT_BUFFER`] chunks. When the reader of
//!   the export is slower than the database, the channel fills and the statement waits: neither
//!   the service nor the caller ever holds the subtree — a city of 100,000 members — at once.
//!   Only the subtree's organizations (a few thousand: names and unit types) are held.
//! * **One computation.** Each member's totals come from [`domain::totals`]'s own steps
//!   ([`domain::ledger::compute`] with the item index of the member's unit type, prepared once
//!   per unit type), so they equal what `GetLedger` answers for the same member to the
//!   deci-point.
//! * **Who appears.** Every *active* member of the subtree (graded or not: `exempt` members
//!   too, with their entries), and every member who is no longer active (transferred out,
//!   deceased, expelled, left) but has at least one ledger entry in the year — their points
//!   were earned in this organization and belong in its ledger. Members who are no longer active
//!   and have no entry of the year are left out.
//! * Authorization is checked before the first row is read; an error after that ends the stream
//!   with a status.

use super::{AppError, Grading, authorize, check_year, inputs};
use crate::authz;
use crate::domain::{self, Totals};
use crate::store::inputs::{self as inputs_store, AggregatedEntry};
use crate::store::projection::{self, MemberRow};
use jifen_platform::auth::Principal;
use jifen_standard::Standard;
use std::collections::{BTreeMap, HashMap};
use uuid::Uuid;

/// Members per streamed chunk.
pub const EXPORT_CHUNK: usize = 200;
/// Chunks read ahead of the caller.
pub const EXPORT_BUFFER: usize = 2;

/// One item of the year's standard as the export names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportItem {
    pub code: String,
    pub name: String,
    pub category: String,
}

/// One member's year in the export.
#[derive(Debug, Clone)]
pub struct ExportedMember {
    pub member: MemberRow,
    pub org_name: String,
    pub entries: Vec<AggregatedEntry>,
    pub totals: Totals,
}

/// An export under way: the item names, then the members in chunks, as they are read.
#[derive(Debug)]
pub struct LedgerExport {
    pub year: i32,
    /// Every item of the year's standard for the unit types of the subtree, by code.
    pub items: Vec<ExportItem>,
    /// Chunks of members; ends when every member was sent, or after an error.
    pub members: tokio::sync::mpsc::Receiver<Result<Vec<ExportedMember>, AppError>>,
}

/// What the export knows of an organization of the subtree.
struct OrgInfo {
    name: String,
    unit_type: String,
}

impl Grading {
    /// `ExportLedger`: the ledger of the subtree of `org_id` for `year`, in chunks of `chunk`
    /// members (the RPC uses [`EXPORT_CHUNK`]).
    pub async fn export_ledger(
        &self,
        caller: &Principal,
        org_id: Uuid,
        year: i32,
        chunk: usize,
    ) -> Result<LedgerExport, AppError> {
        let chunk = chunk.max(1);
        let year = check_year(year)?;
        let org = self.org(org_id).await?;
        authorize(
            authz::export_ledger(caller, &org.path),
            "org_id",
            "organization",
        )?;
        let standard = self.standard_for(year).await?;
        let orgs: HashMap<Uuid, OrgInfo> = projection::orgs_under(&self.db, &org.path)
            .await?
            .into_iter()
            .map(|o| {
                (
                    o.id,
                    OrgInfo {
                        name: o.name,
                        unit_type: o.unit_type,
                    },
                )
            })
            .collect();
        let items = items_of(&standard, orgs.values().map(|o| o.unit_type.as_str()));

        let (tx, rx) = tokio::sync::mpsc::channel(EXPORT_BUFFER);
        let pool = self.db.get_postgres_connection_pool().clone();
        let path = org.path;
        tokio::spawn(async move {
            if let Err(e) = stream_members(&pool, &path, year, &standard, &orgs, chunk, &tx).await {
                // The receiver may be gone already; then nobody is left to tell.
                let _ = tx.send(Err(e)).await;
            }
        });
        Ok(LedgerExport {
            year,
            items,
            members: rx,
        })
    }
}

/// The items of `standard` for each of `unit_types` (the 共性 items and each overlay's own), by
/// code; an item named differently by two overlays keeps the first name met in unit-type order.
fn items_of<'a>(standard: &Standard, unit_types: impl Iterator<Item = &'a str>) -> Vec<ExportItem> {
    let mut by_code: BTreeMap<String, ExportItem> = standard
        .items()
        .iter()
        .map(|i| {
            (
                i.code.clone(),
                ExportItem {
                    code: i.code.clone(),
                    name: i.name.clone(),
                    category: i.category.clone(),
                },
            )
        })
        .collect();
    let mut unit_types: Vec<&str> = unit_types.collect();
    unit_types.sort_unstable();
    unit_types.dedup();
    for unit_type in unit_types {
        for i in standard.items_for(unit_type) {
            by_code.entry(i.code.clone()).or_insert(ExportItem {
                code: i.code,
                name: i.name,
                category: i.category,
            });
        }
    }
    by_code.into_values().collect()
}

/// Whether a member appears in the export (see the module's invariants).
fn appears(m: &inputs_store::AggregatedMember) -> bool {
    m.member.status == "active" || !m.entries.is_empty()
}

/// Item indexes by unit type, each prepared once per read of a subtree.
pub(super) type ItemIndexes = HashMap<Option<String>, domain::ledger::ItemIndex>;

/// One member's totals from their packed year, exactly as `GetLedger` computes them
/// ([`domain::ledger::compute`], the body of [`domain::totals`]), with the item index of their
/// organization's unit type taken from (or added to) `indexes`.
pub(super) fn member_totals(
    standard: &Standard,
    indexes: &mut ItemIndexes,
    unit_type: Option<&str>,
    entries: &[AggregatedEntry],
    quarters: Vec<crate::store::inputs::QuarterRow>,
) -> Totals {
    let index = indexes
        .entry(unit_type.map(str::to_owned))
        .or_insert_with(|| domain::ledger::ItemIndex::new(standard, unit_type));
    let entries: Vec<domain::Entry> = entries
        .iter()
        .cloned()
        .map(inputs::aggregated_entry)
        .collect();
    let quarters = inputs::quarters(quarters);
    domain::ledger::compute(standard, index, &entries, &quarters)
}

/// Reads the members of the subtree at `path` and sends them in chunks; stops quietly when the
/// receiver is gone (the caller hung up).
async fn stream_members(
    pool: &sqlx::PgPool,
    path: &str,
    year: i32,
    standard: &Standard,
    orgs: &HashMap<Uuid, OrgInfo>,
    size: usize,
    tx: &tokio::sync::mpsc::Sender<Result<Vec<ExportedMember>, AppError>>,
) -> Result<(), AppError> {
    use futures::StreamExt as _;
    // The item index of each unit type met, prepared once (as grading does per branch).
    let mut indexes = ItemIndexes::new();
    let mut rows = std::pin::pin!(inputs_store::aggregated_members_under(pool, path, year));
    let mut chunk = Vec::with_capacity(size);
    while let Some(row) = rows.next().await {
        let row = row?;
        if !appears(&row) {
            continue;
        }
        let org = orgs.get(&row.member.org_id);
        let totals = member_totals(
            standard,
            &mut indexes,
            org.map(|o| o.unit_type.as_str()),
            &row.entries,
            row.quarters,
        );
        chunk.push(ExportedMember {
            org_name: org.map(|o| o.name.clone()).unwrap_or_default(),
            member: row.member,
            entries: row.entries,
            totals,
        });
        if chunk.len() == size {
            let full = std::mem::replace(&mut chunk, Vec::with_capacity(size));
            if tx.send(Ok(full)).await.is_err() {
                return Ok(());
            }
        }
    }
    if !chunk.is_empty() {
        let _ = tx.send(Ok(chunk)).await;
    }
    Ok(())
}

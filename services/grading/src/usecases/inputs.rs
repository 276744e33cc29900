//! Turns projection rows into the pure domain's inputs: one branch's graded members with their
//! ledger entries, quarter results, sanctions of the year and last year's final total.

use super::AppError;
use crate::domain::{Category, Entry, MemberInput, QuarterResult, SanctionKind, Source};
use crate::store::gradings;
use crate::store::inputs::{self, EntryRow, QuarterRow};
use crate::store::projection::MemberRow;
use jifen_standard::DeciPoints;
use sea_orm::ConnectionTrait;
use std::collections::HashMap;
use uuid::Uuid;

/// Whether a member is graded (RULES.md §5): active, full or probationary, not `exempt`.
pub(crate) fn category_if_graded(m: &MemberRow) -> Option<Category> {
    if m.status != "active" || m.exempt {
        return None;
    }
    match m.category.as_str() {
        "full" => Some(Category::Full),
        "probationary" => Some(Category::Probationary),
        _ => None,
    }
}

pub(crate) fn entry(row: &EntryRow) -> Entry {
    Entry {
        month: u32::try_from(row.month).unwrap_or(0),
        source: if row.source == "branch" {
            Source::Branch
        } else {
            Source::Declaration
        },
        item_code: row.item_code.clone(),
        points: DeciPoints::from_tenths(row.points),
    }
}

pub(crate) fn quarter(row: &QuarterRow) -> QuarterResult {
    QuarterResult {
        quarter: u32::try_from(row.quarter).unwrap_or(0),
        score: row.score.map(DeciPoints::from_tenths),
        ballots: u32::try_from(row.ballots).unwrap_or(0),
        poor_ballots: u32::try_from(row.poor_ballots).unwrap_or(0),
        valid: row.valid,
    }
}

/// The quarter results of one member, one per quarter: when a member was rated in two rounds of
/// the same quarter (a transfer between branches), the round closed last counts.
pub(crate) fn quarters(mut rows: Vec<QuarterRow>) -> Vec<QuarterResult> {
    rows.sort_by(|a, b| {
        (a.quarter, a.closed_at, a.round_id).cmp(&(b.quarter, b.closed_at, b.round_id))
    });
    let mut last: HashMap<i16, QuarterResult> = HashMap::new();
    for row in &rows {
        last.insert(row.quarter, quarter(row));
    }
    let mut out: Vec<QuarterResult> = last.into_values().collect();
    out.sort_by_key(|q| q.quarter);
    out
}

/// The Party sanctions 党纪处分 of a member decided in `year`.
pub(crate) fn sanctions_in(m: &MemberRow, year: i32) -> Vec<SanctionKind> {
    let prefix = format!("{year}-");
    m.sanctions
        .as_array()
        .map(|list| {
            list.iter()
                .filter(|s| {
                    s.get("decided_on")
                        .and_then(serde_json::Value::as_str)
                        .is_some_and(|d| d.starts_with(&prefix))
                })
                .filter_map(
                    |s| match s.get("kind").and_then(serde_json::Value::as_str) {
                        Some("warning") => Some(SanctionKind::Warning),
                        Some("serious_warning") => Some(SanctionKind::SeriousWarning),
                        Some("removal_from_post") => Some(SanctionKind::RemovalFromPost),
                        Some("probation") => Some(SanctionKind::Probation),
                        Some("expulsion") => Some(SanctionKind::Expulsion),
                        _ => None,
                    },
                )
                .collect()
        })
        .unwrap_or_default()
}

/// The graded members of the branch at `branch_path` with everything their grading needs.
pub(crate) async fn branch_inputs(
    conn: &impl ConnectionTrait,
    branch_path: &str,
    year: i32,
) -> Result<Vec<MemberInput>, AppError> {
    let members: Vec<(MemberRow, Category)> = inputs::members_under(conn, branch_path)
        .await?
        .into_iter()
        .filter_map(|m| category_if_graded(&m).map(|c| (m, c)))
        .collect();
    if members.is_empty() {
        return Ok(Vec::new());
    }
    let mut entries: HashMap<Uuid, Vec<Entry>> = HashMap::new();
    for row in inputs::entries_under(conn, branch_path, year).await? {
        entries.entry(row.member_id).or_default().push(entry(&row));
    }
    let mut quarter_rows: HashMap<Uuid, Vec<QuarterRow>> = HashMap::new();
    for row in inputs::quarters_under(conn, branch_path, year).await? {
        quarter_rows.entry(row.member_id).or_default().push(row);
    }
    let ids: Vec<Uuid> = members.iter().map(|(m, _)| m.id).collect();
    let previous: HashMap<Uuid, i32> = gradings::final_totals(conn, year - 1, &ids)
        .await?
        .into_iter()
        .collect();
    Ok(members
        .into_iter()
        .map(|(m, category)| MemberInput {
            member_id: m.id,
            category,
            entries: entries.remove(&m.id).unwrap_or_default(),
            quarters: quarters(quarter_rows.remove(&m.id).unwrap_or_default()),
            sanctions: sanctions_in(&m, year),
            previous_final_total: previous.get(&m.id).copied().map(DeciPoints::from_tenths),
        })
        .collect())
}

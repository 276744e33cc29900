//! Turns projection rows into the pure domain's inputs: one branch's graded members with their
//! ledger entries, quarter results, sanctions of the year and last year's final total.

use crate::domain::{Category, Entry, MemberInput, QuarterResult, SanctionKind, Source};
use crate::store::inputs::{self, EntryRow, QuarterRow};
use crate::store::projection::MemberRow;
use jifen_standard::DeciPoints;
use std::collections::HashMap;

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
        item_code: row.item_code.as_str().into(),
        points: DeciPoints::from_tenths(row.points),
    }
}

/// An entry as the streamed grading inputs carry it (grading, the ledger export).
pub(crate) fn aggregated_entry(e: inputs::AggregatedEntry) -> Entry {
    Entry {
        month: u32::try_from(e.month).unwrap_or(0),
        source: if e.branch {
            Source::Branch
        } else {
            Source::Declaration
        },
        item_code: e.item_code,
        points: DeciPoints::from_tenths(e.points),
    }
}

pub(crate) fn quarter(row: &QuarterRow) -> QuarterResult {
    QuarterResult {
        quarter: u32::try_from(row.quarter).unwrap_or(0),
        score: row.score.map(DeciPoints::from_tenths),
        score_total: row.score_total,
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
    // The last row of each quarter's run.
    rows.iter()
        .enumerate()
        .filter(|(i, row)| {
            rows.get(i + 1)
                .is_none_or(|next| next.quarter != row.quarter)
        })
        .map(|(_, row)| quarter(row))
        .collect()
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

/// The path of the branch among `branches` (by path) that holds `member_path`: the longest
/// `/`-ended prefix of it that is a branch.
pub(crate) fn branch_of(member_path: &str, branches: &HashMap<&str, usize>) -> Option<usize> {
    member_path
        .char_indices()
        .filter(|(_, c)| *c == '/')
        .map(|(i, _)| &member_path[..=i])
        .rev()
        .find_map(|prefix| branches.get(prefix).copied())
}

/// One member's grading input, if the member is graded, with the position of their branch in
/// `index` (branch path → position).
pub(crate) fn member_input(
    row: inputs::AggregatedMember,
    index: &HashMap<&str, usize>,
    year: i32,
) -> Option<(usize, MemberInput)> {
    let category = category_if_graded(&row.member)?;
    let branch = branch_of(&row.member.org_path, index)?;
    Some((
        branch,
        MemberInput {
            member_id: row.member.id,
            category,
            entries: row.entries.into_iter().map(aggregated_entry).collect(),
            quarters: quarters(row.quarters),
            sanctions: sanctions_in(&row.member, year),
            previous_final_total: row.previous_total.map(DeciPoints::from_tenths),
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_member_belongs_to_the_branch_on_its_path() {
        let index: HashMap<&str, usize> = [("/r/b1/", 0), ("/r/b2/", 1)].into_iter().collect();
        assert_eq!(branch_of("/r/b1/", &index), Some(0));
        assert_eq!(branch_of("/r/b2/g/", &index), Some(1));
        assert_eq!(branch_of("/r/b3/", &index), None);
        assert_eq!(branch_of("/r/", &index), None);
    }
}

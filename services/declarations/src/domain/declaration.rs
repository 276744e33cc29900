//! A member's monthly declaration (月度申报): its lines, their validation against the standard,
//! the monthly caps, and the review state machine (支部审核).
//!
//! States: `draft → submitted → approved | rejected | returned`, and `returned → draft` when the
//! member changes it again. Approved and rejected are final. Approval sets every line's approved
//! points (default: the claimed points); a lowered line carries the reviewer's reason. A rejected
//! or returned declaration carries the reviewer's comment.

use jifen_standard::{DeclaredBy, Item};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use uuid::Uuid;

/// Largest quantity of one line.
pub const MAX_QUANTITY: i64 = 100;
/// Most lines in one declaration.
pub const MAX_LINES: usize = 50;
/// Most evidence references on one line.
pub const MAX_EVIDENCE: usize = 10;
/// Longest note, reason or comment, in characters.
pub const MAX_TEXT: usize = 500;

/// Status of a declaration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    Draft,
    Submitted,
    Approved,
    Rejected,
    Returned,
}

impl Status {
    pub const ALL: [Self; 5] = [
        Self::Draft,
        Self::Submitted,
        Self::Approved,
        Self::Rejected,
        Self::Returned,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Draft => "draft",
            Self::Submitted => "submitted",
            Self::Approved => "approved",
            Self::Rejected => "rejected",
            Self::Returned => "returned",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// Whether the member may still change the lines (a returned declaration becomes a draft).
    pub const fn is_editable(self) -> bool {
        matches!(self, Self::Draft | Self::Returned)
    }

    /// Whether the member has handed it in (submitted, or reviewed since).
    pub const fn is_handed_in(self) -> bool {
        matches!(self, Self::Submitted | Self::Approved | Self::Rejected)
    }
}

/// One line of a declaration as stored and published. Points in deci-points.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Line {
    pub line_id: Uuid,
    pub item_code: String,
    pub item_name: String,
    pub category: String,
    /// `base`, `bonus`, `deduction` or `veto`.
    pub kind: String,
    pub quantity: i32,
    pub claimed_points: i32,
    #[serde(default)]
    pub approved_points: Option<i32>,
    #[serde(default)]
    pub note: String,
    #[serde(default)]
    pub evidence: Vec<String>,
    #[serde(default)]
    pub adjust_reason: String,
}

/// A line as the member sends it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineInput {
    pub item_code: String,
    pub quantity: i64,
    pub note: String,
    pub evidence: Vec<String>,
}

/// A bad field, named as the public API names it (`lines[2].evidence`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub field: String,
    pub message: String,
}

impl Violation {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Whether `text` is an evidence reference: `sha256:` and 64 lowercase hex digits.
pub fn is_evidence_reference(text: &str) -> bool {
    text.strip_prefix("sha256:").is_some_and(|hex| {
        hex.len() == 64
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// Builds the member's lines from `inputs` against the items in force for the member's unit
/// type. `uploaded` holds the evidence references known to exist. Reports every problem at once.
pub fn build_lines(
    inputs: &[LineInput],
    items: &[Item],
    uploaded: &HashSet<String>,
    mut new_id: impl FnMut() -> Uuid,
) -> Result<Vec<Line>, Vec<Violation>> {
    let mut problems = Vec::new();
    if inputs.len() > MAX_LINES {
        problems.push(Violation::new(
            "lines",
            format!("at most {MAX_LINES} lines per declaration"),
        ));
    }
    let by_code: HashMap<&str, &Item> = items.iter().map(|i| (i.code.as_str(), i)).collect();
    let mut lines = Vec::with_capacity(inputs.len());
    for (index, input) in inputs.iter().enumerate() {
        let field = |name: &str| format!("lines[{index}].{name}");
        let mut line_ok = true;
        let item = by_code.get(input.item_code.as_str()).copied();
        match item {
            None => {
                problems.push(Violation::new(
                    field("item_code"),
                    format!("unknown item {:?} in this year's standard", input.item_code),
                ));
                line_ok = false;
            }
            Some(item) if item.declared_by != DeclaredBy::Member => {
                problems.push(Violation::new(
                    field("item_code"),
                    format!(
                        "item {} is recorded by the branch, not declared by members",
                        item.code
                    ),
                ));
                line_ok = false;
            }
            Some(_) => {}
        }
        if !(1..=MAX_QUANTITY).contains(&input.quantity) {
            problems.push(Violation::new(
                field("quantity"),
                format!("must be a whole number from 1 to {MAX_QUANTITY}"),
            ));
            line_ok = false;
        }
        if input.note.chars().count() > MAX_TEXT {
            problems.push(Violation::new(
                field("note"),
                format!("at most {MAX_TEXT} characters"),
            ));
            line_ok = false;
        }
        if input.evidence.len() > MAX_EVIDENCE {
            problems.push(Violation::new(
                field("evidence"),
                format!("at most {MAX_EVIDENCE} references per line"),
            ));
            line_ok = false;
        }
        for (e, reference) in input.evidence.iter().enumerate() {
            if !is_evidence_reference(reference) {
                problems.push(Violation::new(
                    format!("lines[{index}].evidence[{e}]"),
                    "must be a reference returned by POST /api/v1/evidence (sha256:<64 hex digits>)",
                ));
                line_ok = false;
            } else if !uploaded.contains(reference) {
                problems.push(Violation::new(
                    format!("lines[{index}].evidence[{e}]"),
                    "no evidence was uploaded under this reference",
                ));
                line_ok = false;
            }
        }
        if let Some(item) = item {
            if item.evidence_required && input.evidence.is_empty() {
                problems.push(Violation::new(
                    field("evidence"),
                    format!(
                        "item {} requires evidence: upload a file and add its reference",
                        item.code
                    ),
                ));
                line_ok = false;
            }
            if line_ok {
                // quantity ≤ 100 and |points| ≤ 1000 deci-points keep this far inside i32.
                let quantity = i32::try_from(input.quantity).unwrap_or(0);
                lines.push(Line {
                    line_id: new_id(),
                    item_code: item.code.clone(),
                    item_name: item.name.clone(),
                    category: item.category.clone(),
                    kind: item.kind.as_str().to_owned(),
                    quantity,
                    claimed_points: item.points.tenths().saturating_mul(quantity),
                    approved_points: None,
                    note: input.note.trim().to_owned(),
                    evidence: input.evidence.clone(),
                    adjust_reason: String::new(),
                });
            }
        }
    }
    if problems.is_empty() {
        Ok(lines)
    } else {
        Err(problems)
    }
}

/// Sum of the claimed points of `lines`.
pub fn claimed_total(lines: &[Line]) -> i32 {
    lines.iter().map(|l| l.claimed_points).sum()
}

/// A monthly cap exceeded: the item, its cap, and the total it would reach.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CapExceeded {
    /// Index of the first line of the item (for the field name), if the member declared it.
    pub line: Option<usize>,
    pub item_code: String,
    pub cap: i32,
    pub total: i32,
}

/// Checks every item's monthly cap against the claimed points of `lines` plus `recorded`, the
/// points the branch recorded for the same member and month by item code. Reports the first item
/// (in line order, then code order) over its cap.
pub fn check_monthly_caps(
    lines: &[(usize, &str, i32)],
    recorded: &HashMap<String, i32>,
    items: &[Item],
) -> Result<(), CapExceeded> {
    let mut totals: Vec<(String, Option<usize>, i32)> = Vec::new();
    for (index, code, points) in lines {
        match totals.iter_mut().find(|(c, _, _)| c == code) {
            Some(entry) => entry.2 += points,
            None => totals.push(((*code).to_owned(), Some(*index), *points)),
        }
    }
    let mut codes: Vec<&String> = recorded.keys().collect();
    codes.sort();
    for code in codes {
        let points = recorded[code];
        match totals.iter_mut().find(|(c, _, _)| c == code) {
            Some(entry) => entry.2 += points,
            None => totals.push((code.clone(), None, points)),
        }
    }
    for (code, line, total) in totals {
        let Some(item) = items.iter().find(|i| i.code == code) else {
            continue;
        };
        if let Some(cap) = item.monthly_cap
            && total.abs() > cap.tenths()
        {
            return Err(CapExceeded {
                line,
                item_code: code,
                cap: cap.tenths(),
                total,
            });
        }
    }
    Ok(())
}

/// The reviewer's decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Approve,
    Reject,
    Return,
}

/// A reviewer's change to one line's points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Adjustment {
    pub line_id: Uuid,
    pub approved_points: i32,
    pub reason: String,
}

/// Why a review was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReviewError {
    #[error("the declaration is {}, not submitted", .0.as_str())]
    NotSubmitted(Status),
    #[error("bad review")]
    Invalid(Vec<Violation>),
}

/// The outcome of a review: the new status, the lines with approved points, the approved total.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reviewed {
    pub status: Status,
    pub lines: Vec<Line>,
    pub approved_total: Option<i32>,
}

/// Applies a review to a declaration in `status` with `lines`.
pub fn review(
    status: Status,
    lines: &[Line],
    decision: Decision,
    adjustments: &[Adjustment],
    comment: &str,
) -> Result<Reviewed, ReviewError> {
    if status != Status::Submitted {
        return Err(ReviewError::NotSubmitted(status));
    }
    let mut problems = Vec::new();
    if comment.chars().count() > MAX_TEXT {
        problems.push(Violation::new(
            "comment",
            format!("at most {MAX_TEXT} characters"),
        ));
    }
    if decision != Decision::Approve {
        if comment.trim().is_empty() {
            problems.push(Violation::new(
                "comment",
                "a rejected or returned declaration needs the reviewer's comment",
            ));
        }
        if !adjustments.is_empty() {
            problems.push(Violation::new(
                "lines",
                "line points are set only when approving",
            ));
        }
        if !problems.is_empty() {
            return Err(ReviewError::Invalid(problems));
        }
        let status = if decision == Decision::Reject {
            Status::Rejected
        } else {
            Status::Returned
        };
        return Ok(Reviewed {
            status,
            lines: lines.to_vec(),
            approved_total: None,
        });
    }
    let mut out: Vec<Line> = lines
        .iter()
        .map(|l| Line {
            approved_points: Some(l.claimed_points),
            adjust_reason: String::new(),
            ..l.clone()
        })
        .collect();
    let mut seen = HashSet::new();
    for (index, adj) in adjustments.iter().enumerate() {
        let field = |name: &str| format!("lines[{index}].{name}");
        if !seen.insert(adj.line_id) {
            problems.push(Violation::new(
                field("line_id"),
                "the same line is adjusted twice",
            ));
            continue;
        }
        let Some(line) = out.iter_mut().find(|l| l.line_id == adj.line_id) else {
            problems.push(Violation::new(
                field("line_id"),
                "no such line in this declaration",
            ));
            continue;
        };
        let claimed = line.claimed_points;
        let (low, high) = if claimed >= 0 {
            (0, claimed)
        } else {
            (claimed, 0)
        };
        if !(low..=high).contains(&adj.approved_points) {
            problems.push(Violation::new(
                field("approved_points"),
                format!(
                    "must be between {} and the claimed {} points",
                    fmt_points(low),
                    fmt_points(high)
                ),
            ));
            continue;
        }
        if adj.reason.chars().count() > MAX_TEXT {
            problems.push(Violation::new(
                field("reason"),
                format!("at most {MAX_TEXT} characters"),
            ));
            continue;
        }
        if adj.approved_points != claimed && adj.reason.trim().is_empty() {
            problems.push(Violation::new(
                field("reason"),
                "lowering a line's points needs a reason",
            ));
            continue;
        }
        line.approved_points = Some(adj.approved_points);
        line.adjust_reason = adj.reason.trim().to_owned();
    }
    if !problems.is_empty() {
        return Err(ReviewError::Invalid(problems));
    }
    let total = out.iter().filter_map(|l| l.approved_points).sum();
    Ok(Reviewed {
        status: Status::Approved,
        lines: out,
        approved_total: Some(total),
    })
}

/// Deci-points as the API shows them: `2`, `0.5`, `-3`.
pub fn fmt_points(tenths: i32) -> String {
    if tenths % 10 == 0 {
        format!("{}", tenths / 10)
    } else {
        let sign = if tenths < 0 { "-" } else { "" };
        format!("{sign}{}.{}", tenths.abs() / 10, tenths.abs() % 10)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn standard_items() -> Vec<Item> {
        jifen_standard::default_2026().unwrap().items_for("other")
    }

    fn input(code: &str, quantity: i64, evidence: &[&str]) -> LineInput {
        LineInput {
            item_code: code.into(),
            quantity,
            note: String::new(),
            evidence: evidence.iter().map(|e| (*e).to_owned()).collect(),
        }
    }

    fn reference(n: u8) -> String {
        format!("sha256:{}", format!("{n:02x}").repeat(32))
    }

    fn ids() -> impl FnMut() -> Uuid {
        let mut n = 0u128;
        move || {
            n += 1;
            Uuid::from_u128(n)
        }
    }

    #[test]
    fn lines_take_points_from_the_standard() {
        let items = standard_items();
        let ev = reference(1);
        let uploaded = HashSet::from([ev.clone()]);
        let lines = build_lines(
            &[input("F02", 2, &[&ev]), input("F01", 1, &[])],
            &items,
            &uploaded,
            ids(),
        )
        .unwrap();
        assert_eq!(lines[0].claimed_points, 40, "F02 is 2 points per 次");
        assert_eq!(lines[1].claimed_points, 10);
        assert_eq!(claimed_total(&lines), 50);
        assert_eq!(lines[0].category, "F");
    }

    #[test]
    fn every_bad_line_is_named_at_once() {
        let items = standard_items();
        let problems = build_lines(
            &[
                input("Z99", 1, &[]),
                input("P01", 1, &[]),
                input("P02", 1, &[]),
                input("F01", 0, &[]),
                input("F02", 1, &["not-a-ref"]),
                input("F03", 1, &[&reference(9)]),
            ],
            &items,
            &HashSet::new(),
            ids(),
        )
        .unwrap_err();
        let fields: Vec<&str> = problems.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "lines[0].item_code",
                "lines[1].item_code",
                "lines[2].evidence",
                "lines[3].quantity",
                "lines[4].evidence[0]",
                "lines[5].evidence[0]"
            ]
        );
        assert!(problems[1].message.contains("recorded by the branch"));
    }

    #[test]
    fn monthly_cap_counts_branch_records() {
        let items = standard_items();
        // F02: 2 points, monthly cap 4 → two lines of 1 each are fine, a third is over.
        assert!(
            check_monthly_caps(&[(0, "F02", 20), (1, "F02", 20)], &HashMap::new(), &items).is_ok()
        );
        let over = check_monthly_caps(
            &[(0, "F01", 10), (1, "F02", 20), (2, "F02", 40)],
            &HashMap::new(),
            &items,
        )
        .unwrap_err();
        assert_eq!(
            over,
            CapExceeded {
                line: Some(1),
                item_code: "F02".into(),
                cap: 40,
                total: 60
            }
        );
        // P01 is the branch's: 2 recorded sessions (4 points) are the whole cap.
        let recorded = HashMap::from([("P01".to_owned(), 40)]);
        assert!(check_monthly_caps(&[], &recorded, &items).is_ok());
        let recorded = HashMap::from([("P01".to_owned(), 60)]);
        let over = check_monthly_caps(&[(0, "F01", 10)], &recorded, &items).unwrap_err();
        assert_eq!(
            (over.line, over.item_code.as_str(), over.cap),
            (None, "P01", 40)
        );
        // Bonus items have no monthly cap.
        assert!(check_monthly_caps(&[(0, "B04", 600)], &HashMap::new(), &items).is_ok());
    }

    fn submitted_lines() -> Vec<Line> {
        let items = standard_items();
        let ev = reference(1);
        build_lines(
            &[input("F02", 2, &[&ev]), input("F01", 1, &[])],
            &items,
            &HashSet::from([ev]),
            ids(),
        )
        .unwrap()
    }

    #[test]
    fn approval_defaults_to_the_claimed_points() {
        let lines = submitted_lines();
        let r = review(Status::Submitted, &lines, Decision::Approve, &[], "").unwrap();
        assert_eq!(r.status, Status::Approved);
        assert_eq!(r.approved_total, Some(50));
        assert!(
            r.lines
                .iter()
                .all(|l| l.approved_points == Some(l.claimed_points))
        );
    }

    #[test]
    fn lowering_needs_a_reason_and_raising_is_refused() {
        let lines = submitted_lines();
        let lower = |points, reason: &str| Adjustment {
            line_id: lines[0].line_id,
            approved_points: points,
            reason: reason.into(),
        };
        let err = review(
            Status::Submitted,
            &lines,
            Decision::Approve,
            &[lower(20, " ")],
            "",
        )
        .unwrap_err();
        assert!(matches!(err, ReviewError::Invalid(ref v) if v[0].field == "lines[0].reason"));
        let err = review(
            Status::Submitted,
            &lines,
            Decision::Approve,
            &[lower(50, "more")],
            "",
        )
        .unwrap_err();
        assert!(
            matches!(err, ReviewError::Invalid(ref v) if v[0].field == "lines[0].approved_points")
        );
        let ok = review(
            Status::Submitted,
            &lines,
            Decision::Approve,
            &[lower(20, "只认定一次")],
            "",
        )
        .unwrap();
        assert_eq!(ok.approved_total, Some(30));
        assert_eq!(ok.lines[0].adjust_reason, "只认定一次");
    }

    #[test]
    fn only_a_submitted_declaration_is_reviewed() {
        let lines = submitted_lines();
        for status in [
            Status::Draft,
            Status::Approved,
            Status::Rejected,
            Status::Returned,
        ] {
            assert_eq!(
                review(status, &lines, Decision::Approve, &[], ""),
                Err(ReviewError::NotSubmitted(status))
            );
        }
    }

    #[test]
    fn reject_and_return_need_a_comment() {
        let lines = submitted_lines();
        assert!(matches!(
            review(Status::Submitted, &lines, Decision::Reject, &[], ""),
            Err(ReviewError::Invalid(_))
        ));
        let r = review(Status::Submitted, &lines, Decision::Return, &[], "补充照片").unwrap();
        assert_eq!((r.status, r.approved_total), (Status::Returned, None));
        assert!(Status::Returned.is_editable() && !Status::Rejected.is_editable());
    }

    #[test]
    fn points_print_with_one_decimal_at_most() {
        assert_eq!(fmt_points(5), "0.5");
        assert_eq!(fmt_points(-30), "-3");
        assert_eq!(fmt_points(-5), "-0.5");
        assert_eq!(fmt_points(125), "12.5");
    }
}

//! Fixtures shared by the domain's unit and property tests, built on the default 2026 standard.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use jifen_standard::{DeciPoints, Format, ItemKind, Standard};
use uuid::Uuid;

use super::grading::{Category, MemberInput};
use super::ledger::{Entry, QuarterResult, Source, Totals, totals};

/// The shipped default standard of 2026.
pub(crate) fn standard() -> Standard {
    jifen_standard::default_2026().unwrap()
}

/// The default standard's text changed by `edit`, parsed (and validated) again.
pub(crate) fn standard_with(edit: impl FnOnce(&str) -> String) -> Standard {
    let text = edit(jifen_standard::DEFAULT_2026_TOML);
    Standard::parse_for_year(&text, Format::Toml, 2026).unwrap()
}

/// An added state_enterprise overlay item F06: 2 points, at most 2 a month and 3 a year.
pub(crate) const STATE_ENTERPRISE_F06: &str = r#"
[[overlays.state_enterprise.items]]
code = "F06"
category = "F"
name = "安全生产标兵"
kind = "base"
points = 2
unit = "次"
monthly_cap = 2
yearly_cap = 3
evidence_required = false
declared_by = "member"
"#;

/// A branch record of `tenths` deci-points for `code` in `month`.
pub(crate) fn entry(month: u32, code: &str, tenths: i32) -> Entry {
    Entry {
        month,
        source: Source::Branch,
        item_code: code.into(),
        points: DeciPoints::from_tenths(tenths),
    }
}

/// One entry of `tenths` for `code` in each month of the year.
pub(crate) fn every_month(code: &str, tenths: i32) -> Vec<Entry> {
    (1..=12).map(|m| entry(m, code, tenths)).collect()
}

/// Entries that bring each item of `codes` to its yearly cap (its monthly cap every month).
pub(crate) fn full_items(codes: &[&str]) -> Vec<Entry> {
    let s = standard();
    codes
        .iter()
        .flat_map(|code| {
            let item = s.item(code, "").unwrap();
            every_month(code, item.monthly_cap.unwrap_or(item.points).tenths())
        })
        .collect()
}

/// Entries that bring every base item of the default standard to its cap: base = 70.
pub(crate) fn full_base() -> Vec<Entry> {
    let s = standard();
    let codes: Vec<&str> = s
        .items()
        .iter()
        .filter(|i| i.kind == ItemKind::Base)
        .map(|i| i.code.as_str())
        .collect();
    full_items(&codes)
}

/// A valid quarter `q` with mean score `score` tenths (exactly: 10 ballots summing to 10 ×
/// `score`) and no poor ballot.
pub(crate) fn quarter(q: u32, score: i32) -> QuarterResult {
    QuarterResult {
        quarter: q,
        score: Some(DeciPoints::from_tenths(score)),
        score_total: Some(i64::from(score) * 10),
        ballots: 10,
        poor_ballots: 0,
        valid: true,
    }
}

/// Gives `quarter` `ballots` ballots with the same exact mean.
pub(crate) fn set_ballots(quarter: &mut QuarterResult, ballots: u32) {
    let mean = quarter.score.map_or(0, |s| i64::from(s.tenths()));
    quarter.ballots = ballots;
    quarter.score_total = Some(mean * i64::from(ballots));
}

/// Takes the scores away from `quarter`, as a quarter without ballots has none.
pub(crate) fn unscored(quarter: &mut QuarterResult) {
    quarter.score = None;
    quarter.score_total = None;
    quarter.ballots = 0;
}

/// Totals of `entries` without quarters and without unit type.
pub(crate) fn totals_of(s: &Standard, entries: &[Entry]) -> Totals {
    totals(s, None, entries, &[])
}

/// A member id that sorts as `n` does.
pub(crate) fn id(n: u128) -> Uuid {
    Uuid::from_u128(n)
}

/// A full member with no sanction and no previous year.
pub(crate) fn member(n: u128, entries: Vec<Entry>, quarters: Vec<QuarterResult>) -> MemberInput {
    MemberInput {
        member_id: id(n),
        category: Category::Full,
        entries,
        quarters,
        sanctions: Vec::new(),
        previous_final_total: None,
    }
}

/// Entries and one valid quarter that give exactly `total` tenths (0..=1000) with the default:
/// full base (70), plus whole bonus points above 90 (B02, B06), plus the evaluation, minus X12
/// (−1 each) below 70. Deductions are 0 from 70 up, bonus 0 up to 90.
pub(crate) fn scoring(total: i32) -> (Vec<Entry>, Vec<QuarterResult>) {
    assert!((0..=1000).contains(&total));
    let mut entries = full_base();
    let evaluation = if total > 900 {
        let bonus = (total - 900 + 9) / 10;
        entries.extend((0..bonus / 2).map(|k| entry(1 + k as u32, "B02", 20)));
        if bonus % 2 == 1 {
            entries.push(entry(12, "B06", 10));
        }
        total - 700 - 10 * bonus
    } else if total >= 700 {
        total - 700
    } else {
        let x12 = (700 - total + 9) / 10;
        entries.extend((0..x12).map(|k| entry(1 + (k as u32 % 12), "X12", -10)));
        total - 700 + 10 * x12
    };
    // evaluation = score / 5 exactly (weight 20).
    (entries, vec![quarter(1, evaluation * 5)])
}

/// A full member whose total is exactly `total` tenths.
pub(crate) fn member_scoring(n: u128, total: i32) -> MemberInput {
    let (entries, quarters) = scoring(total);
    member(n, entries, quarters)
}

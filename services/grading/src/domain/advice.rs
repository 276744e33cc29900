//! Advice codes (RULES.md §5 step 7): hints for the branch that never change a grade and never
//! sanction anyone automatically.
//!
//! * probationary members (预备党员): `probation:on_time` (total ≥ 85 points, 按期转正),
//!   `probation:extend` (70 ≤ total < 85, 延长预备期), `probation:review_cancellation`
//!   (total < 70, 取消预备党员资格 to be reviewed);
//! * `below_60_two_years`: this year's total and the previous final total are both below 60;
//! * `lapse_suspected` (党章第九条, 自行脱党 suspected): for a target of the standard's `lapse`
//!   watch, `months` consecutive months within 1..=`through_month` without an entry.
//!
//! Rules where RULES.md is silent, chosen here:
//! * the thresholds 85, 70 and 60 are fixed by RULES.md, not read from the standard's bands;
//!   they apply to the total after clamping to 0–100;
//! * `below_60_two_years` needs a previous final total: a member first graded this year never
//!   gets it;
//! * for the lapse watch a month counts as active when the member has **any** entry of a watched
//!   item in it (`item:<code>`, or any item of the category for `category:<code>`), whatever its
//!   points — RULES.md says "no entry"; items are those of the member's unit type, entries of
//!   unknown codes or months outside 1–12 are ignored; months after `through_month` are not looked
//!   at (`through_month` above 12 counts as 12; 0 looks at no month, so no advice);
//! * one `lapse_suspected` code at most, whichever targets lapsed; no watch (`lapse` absent) means
//!   no advice.
//!
//! Order: the probation code, `below_60_two_years`, `lapse_suspected`.

use jifen_standard::{DeciPoints, Lapse, WatchTarget};

use super::grading::{Category, MemberInput};
use super::ledger::{Entry, ItemIndex, month_in_year};
use super::reasons;

/// 85 points: a probationary member at or above is advised for admission on time.
pub const PROBATION_ON_TIME_FROM: DeciPoints = DeciPoints::from_tenths(850);
/// 70 points: a probationary member below is advised for a review of cancellation.
pub const PROBATION_EXTEND_FROM: DeciPoints = DeciPoints::from_tenths(700);
/// 60 points: the line of `below_60_two_years`.
pub const BELOW_TWO_YEARS: DeciPoints = DeciPoints::from_tenths(600);

/// The advice codes for one member with this year's `total`, in order.
pub(crate) fn advice(
    standard: &jifen_standard::Standard,
    index: &ItemIndex,
    through_month: u32,
    member: &MemberInput,
    total: DeciPoints,
) -> Vec<String> {
    let mut codes = Vec::new();
    if member.category == Category::Probationary {
        codes.push(probation(total).to_owned());
    }
    if below_60_two_years(member.previous_final_total, total) {
        codes.push(reasons::BELOW_60_TWO_YEARS.to_owned());
    }
    if let Some(lapse) = standard.lapse()
        && lapse_suspected(lapse, index, through_month, &member.entries)
    {
        codes.push(reasons::LAPSE_SUSPECTED.to_owned());
    }
    codes
}

/// The probation advice code for a probationary member's total.
pub fn probation(total: DeciPoints) -> &'static str {
    if total >= PROBATION_ON_TIME_FROM {
        reasons::PROBATION_ON_TIME
    } else if total >= PROBATION_EXTEND_FROM {
        reasons::PROBATION_EXTEND
    } else {
        reasons::PROBATION_REVIEW_CANCELLATION
    }
}

/// Whether both the previous final total and this year's total are below 60 points.
pub fn below_60_two_years(previous_final_total: Option<DeciPoints>, total: DeciPoints) -> bool {
    previous_final_total.is_some_and(|previous| previous < BELOW_TWO_YEARS)
        && total < BELOW_TWO_YEARS
}

/// Whether some watched target has a run of at least `lapse.months` months without an entry
/// within 1..=`through_month`.
pub(crate) fn lapse_suspected(
    lapse: &Lapse,
    index: &ItemIndex,
    through_month: u32,
    entries: &[Entry],
) -> bool {
    let through_month = through_month.min(12);
    let needed = lapse.months.max(1);
    lapse.watch.iter().any(|target| {
        let mut active = [false; 13];
        for entry in entries.iter().filter(|e| month_in_year(e.month)) {
            let Some(item) = index.get(&entry.item_code) else {
                continue;
            };
            let watched = match target {
                WatchTarget::Category(code) => item.category == *code,
                WatchTarget::Item(code) => item.code == *code,
            };
            if watched && let Some(slot) = active.get_mut(entry.month as usize) {
                *slot = true;
            }
        }
        longest_gap(&active, through_month) >= needed
    })
}

/// The longest run of inactive months within 1..=`through_month` (`active[m]` for month m).
fn longest_gap(active: &[bool; 13], through_month: u32) -> u32 {
    let (mut longest, mut run) = (0, 0);
    for month in 1..=through_month.min(12) {
        if active.get(month as usize).copied().unwrap_or(false) {
            run = 0;
        } else {
            run += 1;
            longest = longest.max(run);
        }
    }
    longest
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::super::grading::{Proposal, grade_branch};
    use super::super::test_support::*;
    use super::*;
    use jifen_standard::Standard;

    fn t(tenths: i32) -> DeciPoints {
        DeciPoints::from_tenths(tenths)
    }

    fn graded(s: &Standard, through_month: u32, m: MemberInput) -> Proposal {
        grade_branch(s, None, through_month, &[m]).remove(0)
    }

    #[test]
    fn probation_advice_follows_the_total() {
        for (total, code) in [
            (1000, "probation:on_time"),
            (850, "probation:on_time"),
            (849, "probation:extend"),
            (700, "probation:extend"),
            (699, "probation:review_cancellation"),
            (0, "probation:review_cancellation"),
        ] {
            let mut m = member_scoring(1, total);
            m.category = Category::Probationary;
            let p = graded(&standard(), 12, m);
            assert_eq!(p.totals.total, t(total));
            assert_eq!(p.reasons.last().map(String::as_str), Some(code), "{total}");
        }
        // Full members get no probation advice.
        let p = graded(&standard(), 12, member_scoring(1, 800));
        assert!(p.reasons.is_empty(), "{:?}", p.reasons);
    }

    #[test]
    fn probation_advice_never_changes_the_grade() {
        let mut m = member_scoring(1, 650);
        m.category = Category::Probationary;
        let p = graded(&standard(), 12, m);
        assert_eq!(p.grade, jifen_standard::Grade::BasicallyQualified);
        assert_eq!(p.reasons, ["probation:review_cancellation"]);
    }

    #[test]
    fn below_60_two_years_needs_both_years_below_60() {
        assert!(below_60_two_years(Some(t(599)), t(599)));
        assert!(below_60_two_years(Some(t(0)), t(0)));
        assert!(!below_60_two_years(Some(t(600)), t(599)));
        assert!(!below_60_two_years(Some(t(599)), t(600)));
        assert!(!below_60_two_years(None, t(0)));
        let mut m = member_scoring(1, 599);
        m.previous_final_total = Some(t(550));
        m.category = Category::Probationary;
        let p = graded(&standard(), 12, m);
        assert_eq!(
            p.reasons,
            ["probation:review_cancellation", "below_60_two_years"]
        );
    }

    /// Entries of an organized-life item (category O) in `months` and dues (D01) every month.
    fn attending(months: &[u32]) -> Vec<Entry> {
        let mut entries = every_month("D01", 5);
        entries.extend(months.iter().map(|&m| entry(m, "O02", 10)));
        entries
    }

    fn lapses(s: &Standard, through_month: u32, entries: Vec<Entry>) -> bool {
        let p = graded(s, through_month, member(1, entries, vec![quarter(1, 800)]));
        p.reasons.iter().any(|r| r == "lapse_suspected")
    }

    #[test]
    fn six_months_without_organized_life_raise_the_lapse_advice() {
        let s = standard();
        // O in January–June, nothing July–December: 6 months.
        assert!(lapses(&s, 12, attending(&[1, 2, 3, 4, 5, 6])));
        // Graded through November: only 5 months without.
        assert!(!lapses(&s, 11, attending(&[1, 2, 3, 4, 5, 6])));
        // A gap in the middle: February–July.
        assert!(lapses(&s, 12, attending(&[1, 8, 9, 10, 11, 12])));
        // Gaps of 5 at most.
        assert!(!lapses(&s, 12, attending(&[1, 7, 12])));
        // Any O item counts for the category, whatever its points.
        let mut entries = attending(&[1, 2, 3, 4, 5]);
        entries.push(entry(6, "O05", 0));
        assert!(!lapses(&s, 11, entries));
        // No dues for six months: item:D01.
        let mut entries: Vec<Entry> = (1..=12).map(|m| entry(m, "O02", 10)).collect();
        entries.extend((1..=6).map(|m| entry(m, "D01", 5)));
        assert!(lapses(&s, 12, entries.clone()));
        assert!(!lapses(&s, 11, entries));
        // Nothing at all, looked at through March only: 3 months, no advice.
        assert!(!lapses(&s, 3, Vec::new()));
        assert!(lapses(&s, 6, Vec::new()));
        assert!(!lapses(&s, 0, Vec::new()));
        assert!(lapses(&s, 40, attending(&[1, 2, 3, 4, 5, 6])));
    }

    #[test]
    fn entries_outside_the_watch_do_not_count_as_activity() {
        let s = standard();
        // P01 (category P) and an unknown code every month: O still lapsed.
        let mut entries = attending(&[]);
        entries.extend(every_month("P01", 20));
        entries.extend(every_month("O99", 10));
        assert!(lapses(&s, 12, entries));
    }

    #[test]
    fn no_watch_means_no_lapse_advice() {
        let unwatched = standard_with(|text| {
            text.replace("[lapse]", "")
                .replace("months = 6\n", "")
                .replace("watch = [\"category:O\", \"item:D01\"]", "")
        });
        assert!(unwatched.lapse().is_none());
        assert!(!lapses(&unwatched, 12, Vec::new()));
    }

    #[test]
    fn longest_gap_counts_runs_within_the_window() {
        let mut active = [false; 13];
        assert_eq!(longest_gap(&active, 12), 12);
        assert_eq!(longest_gap(&active, 0), 0);
        active[4] = true;
        active[9] = true;
        assert_eq!(longest_gap(&active, 12), 4);
        assert_eq!(longest_gap(&active, 8), 4);
        assert_eq!(longest_gap(&active, 3), 3);
    }
}

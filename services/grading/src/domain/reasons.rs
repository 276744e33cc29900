//! The reason codes a grading proposal carries (RULES.md §5 steps 4, 6 and 7).
//!
//! A reason code is a short machine string; clients translate it. Codes with a parameter are built
//! by the functions here, so every spelling lives in one place. Order on a proposal: the evaluation
//! reason (step 4), then the grade reasons in the order of step 6, then the advice (step 7).

use super::grading::SanctionKind;

/// Step 4: no quarter of the year was valid, the evaluation points are 0.
pub const NO_VALID_EVALUATION: &str = "no_valid_evaluation";
/// Step 6: a valid quarter's poor share (差评占比) exceeds `poor_share_blocks_excellent`.
pub const POOR_MASS_RATING: &str = "poor_mass_rating";
/// Step 6: an excellent candidate outside the branch's excellent quota, made `qualified`.
pub const EXCELLENT_QUOTA: &str = "excellent_quota";
/// Step 7: a probationary member (预备党员) with a total of at least 85 points: admit on time.
pub const PROBATION_ON_TIME: &str = "probation:on_time";
/// Step 7: a probationary member with 70 ≤ total < 85 points: consider extending the probation.
pub const PROBATION_EXTEND: &str = "probation:extend";
/// Step 7: a probationary member below 70 points: review cancelling the probationary membership.
pub const PROBATION_REVIEW_CANCELLATION: &str = "probation:review_cancellation";
/// Step 7: the previous final total and this year's total are both below 60 points.
pub const BELOW_60_TWO_YEARS: &str = "below_60_two_years";
/// Step 7: a watched category or item went `lapse.months` consecutive months without an entry.
pub const LAPSE_SUSPECTED: &str = "lapse_suspected";

/// `veto:<code>`: an entry of the veto item `code` (否决项); the grade is `unqualified`.
pub fn veto(code: &str) -> String {
    format!("veto:{code}")
}

/// `sanction:<kind>`: a sanction that makes the grade `unqualified`.
pub fn sanction(kind: SanctionKind) -> String {
    format!("sanction:{}", kind.as_str())
}

/// `capped:<code>`: an entry of an item with a `grade_cap`.
pub fn capped_by_item(code: &str) -> String {
    format!("capped:{code}")
}

/// `capped:<kind>`: a sanction that caps the grade (警告 / 严重警告).
pub fn capped_by_sanction(kind: SanctionKind) -> String {
    format!("capped:{}", kind.as_str())
}

/// Whether `reason` is one of the grade reasons of step 6 (as opposed to evaluation or advice).
pub fn is_grade_reason(reason: &str) -> bool {
    reason == POOR_MASS_RATING
        || reason == EXCELLENT_QUOTA
        || ["veto:", "sanction:", "capped:"]
            .iter()
            .any(|prefix| reason.starts_with(prefix))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameterized_codes_are_spelled_with_a_colon() {
        assert_eq!(veto("V01"), "veto:V01");
        assert_eq!(
            sanction(SanctionKind::RemovalFromPost),
            "sanction:removal_from_post"
        );
        assert_eq!(capped_by_item("X11"), "capped:X11");
        assert_eq!(
            capped_by_sanction(SanctionKind::SeriousWarning),
            "capped:serious_warning"
        );
    }

    #[test]
    fn grade_reasons_are_told_apart_from_advice() {
        for grade_reason in [
            "veto:V01",
            "sanction:probation",
            "capped:X11",
            POOR_MASS_RATING,
        ] {
            assert!(is_grade_reason(grade_reason), "{grade_reason}");
        }
        for other in [
            NO_VALID_EVALUATION,
            PROBATION_EXTEND,
            BELOW_60_TWO_YEARS,
            LAPSE_SUSPECTED,
        ] {
            assert!(!is_grade_reason(other), "{other}");
        }
    }
}

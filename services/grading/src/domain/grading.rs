//! The proposed yearly grade (年度组织定级) of every graded member of one branch (党支部),
//! RULES.md §5 step 6, with the advice of step 7 appended; and the checks of step 8 used when the
//! branch confirms (支委会/党员大会).
//!
//! Responsibilities: grade each member by the standard's bands (优秀 excellent, 合格 qualified,
//! 基本合格 basically qualified, 不合格 unqualified), apply the vetoes (否决项), Party sanctions
//! (党纪处分), grade caps and the poor mass rating (群众评议差评), then the branch's excellent quota
//! (优秀比例), leaving a reason code for each rule that applies.
//!
//! Rules where RULES.md is silent, chosen here:
//! * a cap or veto reason (`veto:`, `sanction:`, `capped:`, `poor_mass_rating`) is recorded
//!   whenever its condition holds, even when the grade was already at or below what the rule
//!   allows: the reasons say which rules apply to the member, not which one lowered the grade, so
//!   the branch sees them when it moves a grade at confirmation. `excellent_quota` is recorded only
//!   on the candidates it demotes;
//! * a sanction of kind `expulsion` (开除党籍) should never reach grading (the member leaves the
//!   rolls); if it does, it is treated like 撤销党内职务 / 留党察看: `unqualified`,
//!   `sanction:expulsion`. Duplicate sanctions count once;
//! * N of the quota is the number of members passed in; the quota's candidates are the members
//!   still excellent after every cap, ranked by total (desc), evaluation (desc), deductions
//!   (closer to 0 first), member id (asc);
//! * members are sorted by id first; a member id passed twice (a caller bug) gives two proposals,
//!   ordered and ranked by their whole content, so the result is still order-independent;
//! * reasons are ordered: `no_valid_evaluation`; `veto:<code>` by code; `sanction:<kind>`;
//!   `capped:<code>` by code; `capped:<kind>`; `poor_mass_rating`; `excellent_quota`; then the
//!   advice codes ([`super::advice`]). Kinds go in the order of [`SanctionKind::ALL`].

use std::cmp::Reverse;
use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use jifen_standard::{DeciPoints, Grade, Standard, UnknownValue};
use uuid::Uuid;

use super::advice;
use super::ledger::{self, Entry, ItemIndex, QuarterResult, Totals};
use super::reasons;

/// A graded member's category: 正式党员 (full) or 预备党员 (probationary).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Category {
    /// 正式党员.
    Full,
    /// 预备党员: gets the `probation:*` advice.
    Probationary,
}

impl Category {
    /// Every value.
    pub const ALL: &'static [Self] = &[Self::Full, Self::Probationary];

    /// The wire spelling: `full` or `probationary`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Full => "full",
            Self::Probationary => "probationary",
        }
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Category {
    type Err = UnknownValue;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .iter()
            .copied()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| UnknownValue {
                what: "category",
                value: s.to_owned(),
                expected: "full, probationary",
            })
    }
}

/// A Party sanction (党纪处分) decided in the graded year. Ordered as RULES.md §2 lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SanctionKind {
    /// 警告: at most `basically_qualified`.
    Warning,
    /// 严重警告: at most `basically_qualified`.
    SeriousWarning,
    /// 撤销党内职务: `unqualified`.
    RemovalFromPost,
    /// 留党察看: `unqualified`.
    Probation,
    /// 开除党籍: the member leaves the rolls; `unqualified` if ever passed in.
    Expulsion,
}

impl SanctionKind {
    /// Every value, in order.
    pub const ALL: &'static [Self] = &[
        Self::Warning,
        Self::SeriousWarning,
        Self::RemovalFromPost,
        Self::Probation,
        Self::Expulsion,
    ];

    /// The wire spelling: `warning`, `serious_warning`, `removal_from_post`, `probation`,
    /// `expulsion`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Warning => "warning",
            Self::SeriousWarning => "serious_warning",
            Self::RemovalFromPost => "removal_from_post",
            Self::Probation => "probation",
            Self::Expulsion => "expulsion",
        }
    }

    /// The best grade a member with this sanction in the year may get.
    pub const fn grade_cap(self) -> Grade {
        match self {
            Self::Warning | Self::SeriousWarning => Grade::BasicallyQualified,
            Self::RemovalFromPost | Self::Probation | Self::Expulsion => Grade::Unqualified,
        }
    }
}

impl fmt::Display for SanctionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SanctionKind {
    type Err = UnknownValue;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .iter()
            .copied()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| UnknownValue {
                what: "sanction kind",
                value: s.to_owned(),
                expected: "warning, serious_warning, removal_from_post, probation, expulsion",
            })
    }
}

/// Everything the rules need about one graded member of the branch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberInput {
    /// The member.
    pub member_id: Uuid,
    /// Full or probationary.
    pub category: Category,
    /// The member's ledger entries of the graded year.
    pub entries: Vec<Entry>,
    /// The member's quarter results of the graded year.
    pub quarters: Vec<QuarterResult>,
    /// Sanctions decided in the graded year.
    pub sanctions: Vec<SanctionKind>,
    /// The member's final total of the previous year, if graded then.
    pub previous_final_total: Option<DeciPoints>,
}

/// The proposed grade of one member, before the branch confirms it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Proposal {
    /// The member.
    pub member_id: Uuid,
    /// The yearly sums.
    pub totals: Totals,
    /// base + bonus + deductions (the ledger's part of the total, before the evaluation).
    pub declared_points: DeciPoints,
    /// The proposed grade.
    pub grade: Grade,
    /// Reason and advice codes, in the order of the module documentation.
    pub reasons: Vec<String>,
}

/// A change refused at confirmation (RULES.md §5 step 8).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfirmationError {
    /// The branch may move a proposed grade by one step at most.
    #[error("a grade may move one step at most at confirmation, not from {from} to {to}")]
    MoreThanOneStep {
        /// The proposed grade.
        from: Grade,
        /// The grade asked for.
        to: Grade,
    },
    /// More excellent grades than the branch's quota.
    #[error("at most {allowed} of {members} members may be excellent, not {excellent}")]
    QuotaExceeded {
        /// Excellent grades asked for.
        excellent: u32,
        /// ⌊N × excellent_share_cap⌋.
        allowed: u32,
        /// N, the graded members of the branch.
        members: u32,
    },
}

/// Grades one branch (党支部), RULES.md §5 steps 1–7. Callers pass only graded members (active,
/// full or probationary, not exempt); `through_month` (1–12, larger is taken as 12) is the last
/// month of the year covered, for the lapse watch. Returns one proposal per member, sorted by
/// member id; the result does not depend on the order of `members` or of their lists.
pub fn grade_branch(
    standard: &Standard,
    unit_type: Option<&str>,
    through_month: u32,
    members: &[MemberInput],
) -> Vec<Proposal> {
    let index = ItemIndex::new(standard, unit_type);
    let mut assessed: Vec<(Proposal, Vec<String>)> = members
        .iter()
        .map(|member| {
            let proposal = assess(standard, &index, member);
            let advice = advice::advice(
                standard,
                &index,
                through_month,
                member,
                proposal.totals.total,
            );
            (proposal, advice)
        })
        .collect();
    // Canonical order: by member id, then (for a duplicated id) by the whole content.
    assessed.sort();

    if let Some(allowed) = excellent_allowed(standard, members.len()) {
        let mut candidates: Vec<usize> = (0..assessed.len())
            .filter(|&i| assessed[i].0.grade == Grade::Excellent)
            .collect();
        candidates.sort_by_key(|&i| {
            let p = &assessed[i].0;
            (
                Reverse(p.totals.total),
                Reverse(p.totals.evaluation),
                Reverse(p.totals.deductions),
                p.member_id,
                i,
            )
        });
        let allowed = usize::try_from(allowed).unwrap_or(usize::MAX);
        for &i in candidates.iter().skip(allowed) {
            let proposal = &mut assessed[i].0;
            proposal.grade = Grade::Qualified;
            proposal.reasons.push(reasons::EXCELLENT_QUOTA.to_owned());
        }
    }

    assessed
        .into_iter()
        .map(|(mut proposal, advice)| {
            proposal.reasons.extend(advice);
            proposal
        })
        .collect()
}

/// Steps 1–6 for one member, without the quota and the advice.
fn assess(standard: &Standard, index: &ItemIndex, member: &MemberInput) -> Proposal {
    let totals = ledger::compute(standard, index, &member.entries, &member.quarters);
    let mut reasons = Vec::new();
    if totals.no_valid_evaluation {
        reasons.push(reasons::NO_VALID_EVALUATION.to_owned());
    }
    let mut grade = standard.grading().bands.grade_for(totals.total);
    let mut cap = |grade: &mut Grade, at_most: Grade, reason: String| {
        *grade = (*grade).min(at_most);
        reasons.push(reason);
    };

    for code in &totals.vetoes {
        cap(&mut grade, Grade::Unqualified, reasons::veto(code));
    }
    let sanctions: BTreeSet<SanctionKind> = member.sanctions.iter().copied().collect();
    for &kind in sanctions
        .iter()
        .filter(|k| k.grade_cap() == Grade::Unqualified)
    {
        cap(&mut grade, Grade::Unqualified, reasons::sanction(kind));
    }
    for (code, at_most) in &totals.grade_caps {
        cap(&mut grade, *at_most, reasons::capped_by_item(code));
    }
    for &kind in sanctions
        .iter()
        .filter(|k| k.grade_cap() != Grade::Unqualified)
    {
        cap(
            &mut grade,
            kind.grade_cap(),
            reasons::capped_by_sanction(kind),
        );
    }
    if poor_rating_blocks_excellent(standard, &member.quarters) {
        cap(
            &mut grade,
            Grade::Qualified,
            reasons::POOR_MASS_RATING.to_owned(),
        );
    }

    Proposal {
        member_id: member.member_id,
        declared_points: totals.base + totals.bonus + totals.deductions,
        totals,
        grade,
        reasons,
    }
}

/// Whether a counted quarter's poor share exceeds `poor_share_blocks_excellent` (exactly).
fn poor_rating_blocks_excellent(standard: &Standard, quarters: &[QuarterResult]) -> bool {
    let limit = standard.evaluation().poor_share_blocks_excellent;
    ledger::effective_quarters(quarters)
        .iter()
        .filter(|q| q.counts())
        .any(|q| limit.is_exceeded_by(q.poor_ballots, q.ballots))
}

/// ⌊N × excellent_share_cap⌋ for a branch of `members` graded members; `None` when the standard
/// sets no cap.
pub fn excellent_allowed(standard: &Standard, members: usize) -> Option<u32> {
    let n = u32::try_from(members).unwrap_or(u32::MAX);
    standard
        .grading()
        .excellent_share_cap
        .map(|share| share.floor_of(n))
}

/// Whether `grades` (one per graded member of a branch) respect the excellent quota.
pub fn quota_holds(standard: &Standard, grades: &[Grade]) -> bool {
    check_quota(standard, grades).is_ok()
}

/// The excellent quota of a branch's grades, with the numbers when it does not hold.
pub fn check_quota(standard: &Standard, grades: &[Grade]) -> Result<(), ConfirmationError> {
    let Some(allowed) = excellent_allowed(standard, grades.len()) else {
        return Ok(());
    };
    let excellent = grades.iter().filter(|g| **g == Grade::Excellent).count();
    let excellent = u32::try_from(excellent).unwrap_or(u32::MAX);
    if excellent <= allowed {
        Ok(())
    } else {
        Err(ConfirmationError::QuotaExceeded {
            excellent,
            allowed,
            members: u32::try_from(grades.len()).unwrap_or(u32::MAX),
        })
    }
}

/// The position of a grade from worst (0) to best (3).
fn step(grade: Grade) -> u8 {
    match grade {
        Grade::Unqualified => 0,
        Grade::BasicallyQualified => 1,
        Grade::Qualified => 2,
        Grade::Excellent => 3,
    }
}

/// Whether `to` is at most one step from `from` (the same grade included).
pub fn is_one_step(from: Grade, to: Grade) -> bool {
    step(from).abs_diff(step(to)) <= 1
}

/// The one-step rule of confirmation: `Ok` when `to` is at most one step from `from`.
pub fn check_override(from: Grade, to: Grade) -> Result<(), ConfirmationError> {
    if is_one_step(from, to) {
        Ok(())
    } else {
        Err(ConfirmationError::MoreThanOneStep { from, to })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::super::test_support::*;
    use super::*;

    fn t(tenths: i32) -> DeciPoints {
        DeciPoints::from_tenths(tenths)
    }

    /// Grades one member alone with the default standard, through December.
    fn alone(member: MemberInput) -> Proposal {
        let mut proposals = grade_branch(&standard(), None, 12, &[member]);
        assert_eq!(proposals.len(), 1);
        proposals.remove(0)
    }

    /// A member graded alone and with two others, so the quota (⌊3/3⌋ = 1) never bites.
    fn in_branch_of_three(member: MemberInput) -> Proposal {
        let others = [member_scoring(900, 750), member_scoring(901, 750)];
        let id = member.member_id;
        let mut members = vec![member];
        members.extend(others);
        let proposals = grade_branch(&standard(), None, 12, &members);
        proposals.into_iter().find(|p| p.member_id == id).unwrap()
    }

    fn grade_reasons(p: &Proposal) -> Vec<&str> {
        p.reasons
            .iter()
            .map(String::as_str)
            .filter(|r| reasons::is_grade_reason(r))
            .collect()
    }

    #[test]
    fn bands_grade_the_total() {
        for (total, grade) in [
            (900, Grade::Excellent),
            (899, Grade::Qualified),
            (700, Grade::Qualified),
            (699, Grade::BasicallyQualified),
            (600, Grade::BasicallyQualified),
            (599, Grade::Unqualified),
            (0, Grade::Unqualified),
        ] {
            let p = in_branch_of_three(member_scoring(1, total));
            assert_eq!(p.totals.total, t(total));
            assert_eq!(p.grade, grade, "total {total}");
            assert!(grade_reasons(&p).is_empty(), "{:?}", p.reasons);
        }
    }

    #[test]
    fn declared_points_are_base_bonus_and_deductions() {
        let mut entries = full_items(&["P01", "O01"]);
        entries.extend([entry(2, "B02", 20), entry(3, "X01", -30)]);
        let p = alone(member(1, entries, vec![quarter(1, 800)]));
        // 12 + 12 (O01) = 24 base, 2 bonus, −3: 23 declared; + 16 evaluation = 39.
        assert_eq!(p.declared_points, t(230));
        assert_eq!(p.totals.evaluation, t(160));
        assert_eq!(p.totals.total, t(390));
    }

    #[test]
    fn a_veto_makes_the_year_unqualified() {
        let (mut entries, quarters) = scoring(900);
        entries.extend([entry(8, "V03", 0), entry(2, "V01", 0), entry(9, "V03", 0)]);
        let p = in_branch_of_three(member(1, entries, quarters));
        assert_eq!(p.totals.total, t(900));
        assert_eq!(p.grade, Grade::Unqualified);
        assert_eq!(grade_reasons(&p), ["veto:V01", "veto:V03"]);
    }

    #[test]
    fn removal_from_post_and_probation_make_the_year_unqualified() {
        for kind in [SanctionKind::RemovalFromPost, SanctionKind::Probation] {
            let mut m = member_scoring(1, 900);
            m.sanctions = vec![kind, kind];
            let p = in_branch_of_three(m);
            assert_eq!(p.grade, Grade::Unqualified);
            assert_eq!(grade_reasons(&p), [format!("sanction:{kind}")]);
        }
    }

    #[test]
    fn an_expulsion_passed_in_anyway_is_unqualified() {
        let mut m = member_scoring(1, 800);
        m.sanctions = vec![SanctionKind::Expulsion];
        let p = alone(m);
        assert_eq!(p.grade, Grade::Unqualified);
        assert_eq!(grade_reasons(&p), ["sanction:expulsion"]);
    }

    #[test]
    fn a_grade_cap_item_caps_the_grade() {
        // Full base 70 + bonus 10 + evaluation 20 − X11 20 = 80: qualified → basically qualified.
        let mut entries = full_base();
        entries.extend([
            entry(1, "B04", 60),
            entry(2, "B03", 40),
            entry(6, "X11", -200),
        ]);
        let p = in_branch_of_three(member(1, entries, vec![quarter(1, 1000)]));
        assert_eq!(p.totals.total, t(800));
        assert_eq!(p.grade, Grade::BasicallyQualified);
        assert_eq!(grade_reasons(&p), ["capped:X11"]);
    }

    #[test]
    fn a_grade_cap_reason_is_recorded_even_when_the_grade_is_already_lower() {
        let (mut entries, quarters) = scoring(500);
        entries.push(entry(6, "X11", -200));
        let p = alone(member(1, entries, quarters));
        assert_eq!(p.totals.total, t(300));
        assert_eq!(p.grade, Grade::Unqualified);
        assert_eq!(grade_reasons(&p), ["capped:X11"]);
    }

    #[test]
    fn warnings_cap_at_basically_qualified() {
        for kind in [SanctionKind::Warning, SanctionKind::SeriousWarning] {
            let mut m = member_scoring(1, 900);
            m.sanctions = vec![kind];
            let p = in_branch_of_three(m);
            assert_eq!(p.grade, Grade::BasicallyQualified);
            assert_eq!(grade_reasons(&p), [format!("capped:{kind}")]);
        }
        // Below the cap already: the grade stays, the reason is still recorded.
        let mut m = member_scoring(1, 550);
        m.sanctions = vec![SanctionKind::Warning];
        let p = alone(m);
        assert_eq!(p.grade, Grade::Unqualified);
        assert_eq!(grade_reasons(&p), ["capped:warning"]);
    }

    #[test]
    fn every_reason_that_applies_is_listed_in_rule_order() {
        let (mut entries, quarters) = scoring(900);
        entries.extend([entry(3, "X11", -200), entry(4, "V02", 0)]);
        let mut m = member(1, entries, quarters);
        m.quarters[0].poor_ballots = 5;
        m.sanctions = vec![
            SanctionKind::Warning,
            SanctionKind::Probation,
            SanctionKind::SeriousWarning,
        ];
        let p = alone(m);
        assert_eq!(p.grade, Grade::Unqualified);
        assert_eq!(
            p.reasons,
            [
                "veto:V02",
                "sanction:probation",
                "capped:X11",
                "capped:warning",
                "capped:serious_warning",
                "poor_mass_rating",
            ]
        );
    }

    #[test]
    fn a_poor_share_of_exactly_a_third_does_not_block_excellent() {
        let mut m = member_scoring(1, 900);
        set_ballots(&mut m.quarters[0], 9);
        m.quarters[0].poor_ballots = 3;
        let p = in_branch_of_three(m);
        assert_eq!(p.grade, Grade::Excellent);
        assert!(p.reasons.is_empty(), "{:?}", p.reasons);
    }

    #[test]
    fn a_poor_share_above_a_third_blocks_excellent() {
        let mut m = member_scoring(1, 900);
        set_ballots(&mut m.quarters[0], 9);
        m.quarters[0].poor_ballots = 4;
        let p = in_branch_of_three(m);
        assert_eq!(p.grade, Grade::Qualified);
        assert_eq!(grade_reasons(&p), ["poor_mass_rating"]);
        // A qualified member with the same quarter keeps the grade and the reason.
        let mut m = member_scoring(1, 800);
        set_ballots(&mut m.quarters[0], 9);
        m.quarters[0].poor_ballots = 4;
        let p = alone(m);
        assert_eq!(p.grade, Grade::Qualified);
        assert_eq!(grade_reasons(&p), ["poor_mass_rating"]);
    }

    #[test]
    fn a_poor_share_in_a_quarter_that_does_not_count_is_ignored() {
        let mut m = member_scoring(1, 900);
        let mut thin = quarter(2, 0);
        set_ballots(&mut thin, 3);
        thin.poor_ballots = 3;
        thin.valid = false;
        m.quarters.push(thin);
        let p = in_branch_of_three(m);
        assert_eq!(p.grade, Grade::Excellent);
        assert!(p.reasons.is_empty());
    }

    #[test]
    fn the_quota_keeps_the_best_totals() {
        // N = 4: ⌊4/3⌋ = 1 excellent.
        let members = [
            member_scoring(1, 900),
            member_scoring(2, 905),
            member_scoring(3, 950),
            member_scoring(4, 800),
        ];
        let proposals = grade_branch(&standard(), None, 12, &members);
        let grades: Vec<Grade> = proposals.iter().map(|p| p.grade).collect();
        assert_eq!(
            proposals.iter().map(|p| p.totals.total).collect::<Vec<_>>(),
            [t(900), t(905), t(950), t(800)]
        );
        assert_eq!(
            grades,
            [
                Grade::Qualified,
                Grade::Qualified,
                Grade::Excellent,
                Grade::Qualified
            ]
        );
        assert_eq!(proposals[0].reasons, ["excellent_quota"]);
        assert_eq!(proposals[1].reasons, ["excellent_quota"]);
        assert!(proposals[2].reasons.is_empty());
        assert!(proposals[3].reasons.is_empty());
        assert!(quota_holds(&standard(), &grades));
    }

    #[test]
    fn quota_ties_are_broken_by_evaluation_then_deductions_then_member_id() {
        let s = standard();
        // Both 91: member 1 = 70 + 3 bonus + 18 evaluation; member 2 = 70 + 1 bonus + 20.
        let with_bonus = |n, bonus: &[Entry], score| {
            let mut entries = full_base();
            entries.extend_from_slice(bonus);
            member(n, entries, vec![quarter(1, score)])
        };
        let three = [entry(1, "B01", 30)];
        let one = [entry(1, "B06", 10)];
        let members = [
            with_bonus(1, &three, 900),
            with_bonus(2, &one, 1000),
            member_scoring(3, 700),
        ];
        let p = grade_branch(&s, None, 12, &members);
        assert_eq!((p[0].totals.total, p[1].totals.total), (t(910), t(910)));
        assert_eq!(
            (p[0].grade, p[1].grade),
            (Grade::Qualified, Grade::Excellent)
        );
        assert_eq!(p[0].reasons, ["excellent_quota"]);

        // Same total and evaluation: 70 + 6 − 3 + 18 against 70 + 3 + 18; the smaller deduction wins.
        let members = [
            with_bonus(
                1,
                &[
                    entry(1, "B01", 30),
                    entry(2, "B01", 30),
                    entry(3, "X01", -30),
                ],
                900,
            ),
            with_bonus(2, &three, 900),
            member_scoring(3, 700),
        ];
        let p = grade_branch(&s, None, 12, &members);
        assert_eq!((p[0].totals.total, p[1].totals.total), (t(910), t(910)));
        assert_eq!(p[0].totals.deductions, t(-30));
        assert_eq!(
            (p[0].grade, p[1].grade),
            (Grade::Qualified, Grade::Excellent)
        );

        // Everything equal: the smaller member id wins.
        let members = [
            member_scoring(3, 700),
            member_scoring(2, 920),
            member_scoring(1, 920),
        ];
        let p = grade_branch(&s, None, 12, &members);
        assert_eq!(
            p.iter().map(|p| (p.member_id, p.grade)).collect::<Vec<_>>(),
            [
                (id(1), Grade::Excellent),
                (id(2), Grade::Qualified),
                (id(3), Grade::Qualified)
            ]
        );
    }

    #[test]
    fn a_branch_of_two_has_no_excellent_and_no_cap_means_no_quota() {
        let members = [member_scoring(1, 900), member_scoring(2, 900)];
        let p = grade_branch(&standard(), None, 12, &members);
        assert!(p.iter().all(|p| p.grade == Grade::Qualified));
        assert!(p.iter().all(|p| p.reasons == ["excellent_quota"]));
        let uncapped = standard_with(|text| {
            text.replace(
                "excellent_share_cap = { numerator = 1, denominator = 3 }",
                "",
            )
        });
        let p = grade_branch(&uncapped, None, 12, &members);
        assert!(p.iter().all(|p| p.grade == Grade::Excellent));
        assert!(quota_holds(&uncapped, &[Grade::Excellent; 2]));
    }

    #[test]
    fn capped_members_are_not_quota_candidates() {
        // N = 3, one place: member 1 is blocked by a poor quarter, so member 2 (lower) gets it.
        let mut blocked = member_scoring(1, 900);
        blocked.quarters[0].poor_ballots = 4;
        let members = [blocked, member_scoring(2, 900), member_scoring(3, 700)];
        let p = grade_branch(&standard(), None, 12, &members);
        assert_eq!(p[0].grade, Grade::Qualified);
        assert_eq!(p[0].reasons, ["poor_mass_rating"]);
        assert_eq!(p[1].grade, Grade::Excellent);
    }

    #[test]
    fn no_valid_evaluation_is_a_reason() {
        let p = alone(member(1, full_base(), Vec::new()));
        assert_eq!(p.totals.total, t(700));
        assert_eq!(p.grade, Grade::Qualified);
        assert_eq!(p.reasons, ["no_valid_evaluation"]);
    }

    #[test]
    fn the_unit_type_selects_the_overlay() {
        let custom = standard_with(|text| format!("{text}{STATE_ENTERPRISE_F06}"));
        let m = member(1, vec![entry(1, "F06", 20)], vec![quarter(1, 500)]);
        let state = grade_branch(
            &custom,
            Some("state_enterprise"),
            12,
            std::slice::from_ref(&m),
        );
        let common = grade_branch(&custom, None, 12, &[m]);
        assert_eq!(state[0].totals.base, t(20));
        assert_eq!(common[0].totals.base, t(0));
    }

    #[test]
    fn proposals_are_sorted_by_member_id() {
        let members = [
            member_scoring(3, 700),
            member_scoring(1, 700),
            member_scoring(2, 700),
        ];
        let p = grade_branch(&standard(), None, 12, &members);
        assert_eq!(
            p.iter().map(|p| p.member_id).collect::<Vec<_>>(),
            [id(1), id(2), id(3)]
        );
        assert!(grade_branch(&standard(), None, 12, &[]).is_empty());
    }

    #[test]
    fn a_duplicated_member_id_gives_the_same_result_in_any_order() {
        let a = member_scoring(1, 900);
        let b = member_scoring(1, 910);
        let c = member_scoring(2, 600);
        let one = grade_branch(&standard(), None, 12, &[a.clone(), b.clone(), c.clone()]);
        let other = grade_branch(&standard(), None, 12, &[c, b, a]);
        assert_eq!(one, other);
        assert_eq!(one.len(), 3);
        assert_eq!(
            one.iter().filter(|p| p.grade == Grade::Excellent).count(),
            1
        );
    }

    #[test]
    fn one_step_overrides() {
        use Grade::*;
        assert!(is_one_step(Excellent, Qualified));
        assert!(is_one_step(Qualified, Excellent));
        assert!(is_one_step(BasicallyQualified, Unqualified));
        assert!(is_one_step(Qualified, Qualified));
        assert!(!is_one_step(Excellent, BasicallyQualified));
        assert!(!is_one_step(Unqualified, Qualified));
        assert!(!is_one_step(Unqualified, Excellent));
        assert_eq!(check_override(Qualified, BasicallyQualified), Ok(()));
        let err = check_override(Unqualified, Excellent).unwrap_err();
        assert_eq!(
            err,
            ConfirmationError::MoreThanOneStep {
                from: Unqualified,
                to: Excellent
            }
        );
        assert!(err.to_string().contains("unqualified"), "{err}");
    }

    #[test]
    fn quota_checks_count_excellent_grades() {
        use Grade::*;
        let s = standard();
        assert!(quota_holds(&s, &[]));
        assert!(!quota_holds(&s, &[Excellent, Qualified]));
        assert!(quota_holds(&s, &[Excellent, Qualified, Qualified]));
        assert!(!quota_holds(&s, &[Excellent, Excellent, Qualified]));
        assert!(quota_holds(
            &s,
            &[
                Excellent,
                Excellent,
                Qualified,
                Qualified,
                Unqualified,
                Qualified
            ]
        ));
        assert_eq!(
            check_quota(&s, &[Excellent, Excellent, Qualified]),
            Err(ConfirmationError::QuotaExceeded {
                excellent: 2,
                allowed: 1,
                members: 3
            })
        );
        assert_eq!(excellent_allowed(&s, 10), Some(3));
    }

    #[test]
    fn kinds_parse_and_print_their_wire_spelling() {
        for kind in SanctionKind::ALL {
            assert_eq!(kind.as_str().parse::<SanctionKind>().unwrap(), *kind);
        }
        for category in Category::ALL {
            assert_eq!(category.as_str().parse::<Category>().unwrap(), *category);
        }
        assert_eq!(
            SanctionKind::RemovalFromPost.to_string(),
            "removal_from_post"
        );
        assert!("demotion".parse::<SanctionKind>().is_err());
        assert!("candidate".parse::<Category>().is_err());
    }
}

//! The grading domain: the pure rules of yearly grading (年度组织定级), RULES.md §5.
//!
//! Responsibilities, one module each:
//! * [`ledger`]: a member's year of ledger entries (台账: approved declaration lines and branch
//!   records) and quarter results of the mass evaluation (群众评议) summed into [`Totals`] — base
//!   points (基础分), bonus points (奖励分), deductions (扣分), vetoes (否决项), the evaluation
//!   points and the total (steps 1–5);
//! * [`grading`]: the proposed grade of every member of one branch (党支部) — the bands, the
//!   vetoes, Party sanctions (党纪处分), grade caps, the poor mass rating and the excellent quota
//!   (step 6) — and the checks used when the branch confirms a grading (step 8);
//! * [`advice`]: the advice codes of step 7 (probation 预备期, two years below 60, suspected lapse
//!   under 党章第九条), which never change a grade;
//! * [`reasons`]: the reason codes left on a proposal;
//! * [`dashboard`]: the dashboard's participation rate and mean points (党建看板).
//!
//! Grades are 优秀 excellent, 合格 qualified, 基本合格 basically qualified and 不合格 unqualified
//! ([`Grade`](jifen_standard::Grade), ordered worst to best).
//!
//! Invariants:
//! * pure: no I/O, no clock, no async; the only inputs are the arguments, the only output the
//!   return value; the numbers come from the yearly standard ([`jifen_standard::Standard`]);
//! * exact: every amount is an integer number of tenths of a point ([`DeciPoints`]), all
//!   arithmetic is integer arithmetic and the one rounding (the evaluation points) is half up;
//! * deterministic: the result does not depend on the order of members, entries, quarters or
//!   sanctions — inputs are sorted or summed internally, ties are broken by total orders;
//! * bounded: `0 ≤ base ≤ base_cap`, `0 ≤ bonus ≤ bonus_cap`, `deductions ≤ 0`,
//!   `0 ≤ evaluation ≤ weight`, `0 ≤ total ≤ 100` points; a member with a veto entry is always
//!   `unqualified`; a branch never has more excellent proposals than its quota allows.
//!
//! [`DeciPoints`]: jifen_standard::DeciPoints

pub mod advice;
pub mod dashboard;
pub mod grading;
pub mod ledger;
pub mod reasons;

#[cfg(test)]
mod exactness;
#[cfg(test)]
mod properties;
#[cfg(test)]
mod test_support;

pub use grading::{
    Category, ConfirmationError, MemberInput, Proposal, SanctionKind, check_override, check_quota,
    excellent_allowed, grade_branch, is_one_step, quota_holds,
};
pub use ledger::{Entry, QuarterResult, Source, Totals, totals};

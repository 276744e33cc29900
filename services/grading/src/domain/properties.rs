//! Property tests of the grading rules over random branches graded with the default standard:
//! bounds, vetoes, the quota and independence from the order of every input list.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use jifen_standard::{DeciPoints, Grade, ItemKind};
use proptest::prelude::*;

use super::grading::{Category, MemberInput, SanctionKind, grade_branch, quota_holds};
use super::ledger::{Entry, QuarterResult, Source, totals};
use super::test_support::{entry, full_base, id, quarter, standard};

/// Item codes of the default standard plus two codes it does not know.
fn codes() -> Vec<String> {
    let mut codes: Vec<String> = standard().items().iter().map(|i| i.code.clone()).collect();
    codes.extend(["Z99".to_owned(), "F06".to_owned()]);
    codes
}

/// Codes of the default standard's items of `kind`.
fn codes_of(kind: ItemKind) -> Vec<String> {
    standard()
        .items()
        .iter()
        .filter(|i| i.kind == kind)
        .map(|i| i.code.clone())
        .collect()
}

fn entry_of(
    months: impl Strategy<Value = u32>,
    codes: impl Strategy<Value = String>,
    points: impl Strategy<Value = i32>,
) -> impl Strategy<Value = Entry> {
    (months, codes, points, any::<bool>()).prop_map(|(month, item_code, points, branch)| Entry {
        month,
        source: if branch {
            Source::Branch
        } else {
            Source::Declaration
        },
        item_code: item_code.into(),
        points: DeciPoints::from_tenths(points),
    })
}

/// Any entry: any code (known or not), any month around the year, wild points.
fn arb_entry() -> impl Strategy<Value = Entry> {
    entry_of(
        prop_oneof![20 => 1_u32..=12, 1 => 0_u32..=14],
        prop::sample::select(codes()),
        prop_oneof![4 => 0_i32..=60, 1 => -250_i32..=0, 1 => -5000_i32..=5000],
    )
}

/// An entry as a real ledger has them: mostly base and bonus points, a few deductions, now and
/// then an unknown code; no vetoes (those are added apart, rarely).
fn arb_ledger_entry() -> impl Strategy<Value = Entry> {
    let earning = codes_of(ItemKind::Base)
        .into_iter()
        .chain(codes_of(ItemKind::Bonus))
        .collect::<Vec<_>>();
    prop_oneof![
        30 => entry_of(1_u32..=12, prop::sample::select(earning), prop_oneof![0_i32..=30, Just(5)]),
        1 => entry_of(1_u32..=12, prop::sample::select(codes_of(ItemKind::Deduction)), -100_i32..=-10),
        1 => entry_of(0_u32..=13, prop::sample::select(codes()), -50_i32..=50),
    ]
}

fn arb_quarter() -> impl Strategy<Value = QuarterResult> {
    (
        prop_oneof![10 => 1_u32..=4, 1 => 0_u32..=6],
        prop::option::weighted(0.9, prop_oneof![10 => 0_i32..=1000, 1 => -100_i32..=1200]),
        0_u32..=30,
        prop_oneof![3 => 0_u32..=3, 1 => 0_u32..=30],
        prop::bool::weighted(0.8),
    )
        .prop_map(|(quarter, score, ballots, poor, valid)| QuarterResult {
            quarter,
            score: score.map(DeciPoints::from_tenths),
            // An exact sum near the shown mean, or none (an old projection row).
            score_total: score
                .filter(|_| ballots > 0 && quarter % 2 == 1)
                .map(|s| i64::from(s) * i64::from(ballots) + i64::from(poor % 3) - 1),
            ballots,
            poor_ballots: poor.min(ballots),
            valid,
        })
}

fn arb_sanction() -> impl Strategy<Value = SanctionKind> {
    prop::sample::select(SanctionKind::ALL)
}

/// A member without an id (ids are given by position, so they are unique).
fn arb_member() -> impl Strategy<Value = MemberInput> {
    let vetoes = codes_of(ItemKind::Veto);
    (
        prop::collection::vec(arb_ledger_entry(), 0..80),
        prop::option::weighted(
            0.1,
            entry_of(1_u32..=12, prop::sample::select(vetoes), Just(0)),
        ),
        prop::collection::vec(arb_quarter(), 0..6),
        prop_oneof![6 => Just(Vec::new()), 1 => prop::collection::vec(arb_sanction(), 1..3)],
        prop::option::of(0_i32..=1000),
        any::<bool>(),
    )
        .prop_map(
            |(mut entries, veto, quarters, sanctions, previous, probationary)| {
                entries.extend(veto);
                MemberInput {
                    member_id: id(0),
                    category: if probationary {
                        Category::Probationary
                    } else {
                        Category::Full
                    },
                    entries,
                    quarters,
                    sanctions,
                    previous_final_total: previous.map(DeciPoints::from_tenths),
                }
            },
        )
}

/// A branch of 0–9 members with distinct, shuffled ids. About half lead a good year (full base,
/// a 6-point honour, high scores from a short list so that totals tie), so that the quota has
/// excellent candidates to cut and ties to break.
fn arb_branch() -> impl Strategy<Value = Vec<MemberInput>> {
    let good_year = prop::option::weighted(
        0.5,
        prop::collection::vec(prop::sample::select(vec![800, 900, 950, 1000]), 1..4),
    );
    prop::collection::vec((arb_member(), good_year, 0_u128..1000), 0..9).prop_map(|members| {
        members
            .into_iter()
            .enumerate()
            .map(|(i, (mut m, good_year, salt))| {
                m.member_id = id(salt * 100 + i as u128);
                if let Some(scores) = good_year {
                    m.entries.extend(full_base());
                    m.entries.push(entry(5, "B04", 60));
                    m.quarters = scores
                        .into_iter()
                        .zip(1..)
                        .map(|(s, q)| quarter(q, s))
                        .collect();
                }
                m
            })
            .collect()
    })
}

/// The branch with the members, each member's entries, quarters and sanctions permuted.
fn shuffled(branch: Vec<MemberInput>) -> impl Strategy<Value = Vec<MemberInput>> {
    let members = branch.into_iter().map(|m| {
        let MemberInput {
            member_id,
            category,
            entries,
            quarters,
            sanctions,
            previous_final_total,
        } = m;
        (
            Just(entries).prop_shuffle(),
            Just(quarters).prop_shuffle(),
            Just(sanctions).prop_shuffle(),
        )
            .prop_map(move |(entries, quarters, sanctions)| MemberInput {
                member_id,
                category,
                entries,
                quarters,
                sanctions,
                previous_final_total,
            })
    });
    members.collect::<Vec<_>>().prop_shuffle()
}

fn unit_type() -> impl Strategy<Value = Option<&'static str>> {
    prop::option::of(prop::sample::select(vec![
        "state_enterprise",
        "rural",
        "other",
    ]))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn totals_stay_within_their_bounds(
        entries in prop::collection::vec(arb_entry(), 0..120),
        quarters in prop::collection::vec(arb_quarter(), 0..8),
        unit_type in unit_type(),
    ) {
        let s = standard();
        let t = totals(&s, unit_type, &entries, &quarters);
        let zero = DeciPoints::ZERO;
        prop_assert!(zero <= t.base && t.base <= s.base_cap(), "{:?}", t);
        prop_assert!(zero <= t.bonus && t.bonus <= s.bonus_cap(), "{:?}", t);
        prop_assert!(t.deductions <= zero, "{:?}", t);
        prop_assert!(zero <= t.evaluation && t.evaluation <= s.evaluation().weight, "{:?}", t);
        prop_assert!(zero <= t.total && t.total <= DeciPoints::from_tenths(1000), "{:?}", t);
        prop_assert!(!t.no_valid_evaluation || t.evaluation.is_zero(), "{:?}", t);
        let mut sorted = t.vetoes.clone();
        sorted.sort();
        sorted.dedup();
        prop_assert_eq!(&sorted, &t.vetoes);
    }

    #[test]
    fn grading_does_not_depend_on_input_order(
        (branch, permuted) in arb_branch().prop_flat_map(|b| (Just(b.clone()), shuffled(b))),
        unit_type in unit_type(),
        through_month in 0_u32..=13,
    ) {
        let s = standard();
        let one = grade_branch(&s, unit_type, through_month, &branch);
        let other = grade_branch(&s, unit_type, through_month, &permuted);
        prop_assert_eq!(one, other);
    }

    #[test]
    fn the_quota_always_holds(branch in arb_branch(), unit_type in unit_type()) {
        let s = standard();
        let proposals = grade_branch(&s, unit_type, 12, &branch);
        prop_assert_eq!(proposals.len(), branch.len());
        let grades: Vec<Grade> = proposals.iter().map(|p| p.grade).collect();
        prop_assert!(quota_holds(&s, &grades), "{:?}", grades);
        let excellent = grades.iter().filter(|g| **g == Grade::Excellent).count();
        prop_assert!(excellent <= branch.len() / 3);
        // Sorted by member id.
        prop_assert!(proposals.windows(2).all(|w| w[0].member_id <= w[1].member_id));
    }

    #[test]
    fn a_veto_entry_always_means_unqualified(
        mut branch in arb_branch().prop_filter("a member", |b| !b.is_empty()),
        veto in prop::sample::select(vec!["V01", "V02", "V03", "V04"]),
        month in 1_u32..=12,
    ) {
        let s = standard();
        branch[0].entries.push(entry(month, veto, 0));
        let vetoed = branch[0].member_id;
        let proposals = grade_branch(&s, None, 12, &branch);
        let p = proposals.iter().find(|p| p.member_id == vetoed).unwrap();
        prop_assert_eq!(p.grade, Grade::Unqualified);
        prop_assert!(p.reasons.contains(&format!("veto:{veto}")), "{:?}", p.reasons);
    }

    #[test]
    fn every_proposal_is_consistent_with_its_totals(branch in arb_branch()) {
        let s = standard();
        for p in grade_branch(&s, None, 12, &branch) {
            let t = &p.totals;
            prop_assert_eq!(p.declared_points, t.base + t.bonus + t.deductions);
            prop_assert!(p.grade <= s.grading().bands.grade_for(t.total));
            prop_assert_eq!(
                p.reasons.iter().any(|r| r == "no_valid_evaluation"),
                t.no_valid_evaluation
            );
            if !t.vetoes.is_empty() {
                prop_assert_eq!(p.grade, Grade::Unqualified);
            }
            for (_, cap) in &t.grade_caps {
                prop_assert!(p.grade <= *cap);
            }
        }
    }

    #[test]
    fn only_known_items_of_the_kind_count(entries in prop::collection::vec(arb_entry(), 0..60)) {
        // Removing entries of unknown codes or of veto items never changes the sums of points.
        let s = standard();
        let kept: Vec<Entry> = entries
            .iter()
            .filter(|e| s.item(&e.item_code, "").is_some_and(|i| i.kind != ItemKind::Veto))
            .cloned()
            .collect();
        let all = totals(&s, None, &entries, &[]);
        let known = totals(&s, None, &kept, &[]);
        prop_assert_eq!(
            (all.base, all.bonus, all.deductions, all.total),
            (known.base, known.bonus, known.deductions, known.total)
        );
    }
}

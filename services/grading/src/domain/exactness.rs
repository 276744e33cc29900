//! Property test of the evaluation points (群众评议分, RULES.md §5 step 4) against an independent
//! exact computation: random ballots for the four quarters, each quarter's exact mean as a big
//! rational, their mean × weight / 100, rounded half up to 0.1 point once.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::OnceLock;

use jifen_standard::{DeciPoints, Standard};
use num_bigint::BigInt;
use num_rational::BigRational;
use proptest::prelude::*;

use super::ledger::{QuarterResult, totals};
use super::test_support::standard_with;

/// Rating scores of the default standard, in tenths: 好 较好 一般 差.
const RATINGS: [i64; 4] = [1000, 800, 600, 0];

/// One quarter as the evaluations service reports it: the ballots' ratings (indexes into
/// [`RATINGS`]) and whether enough people rated.
#[derive(Debug, Clone)]
struct Rated {
    quarter: u32,
    ratings: Vec<usize>,
    valid: bool,
}

impl Rated {
    /// The record grading keeps: the sum, the count, and the mean rounded half up for display.
    fn result(&self) -> QuarterResult {
        let ballots = u32::try_from(self.ratings.len()).unwrap();
        let total: i64 = self.ratings.iter().map(|&r| RATINGS[r]).sum();
        let shown = (ballots > 0).then(|| {
            let b = i64::from(ballots);
            DeciPoints::from_tenths(i32::try_from((2 * total + b) / (2 * b)).unwrap())
        });
        QuarterResult {
            quarter: self.quarter,
            score: shown,
            score_total: (ballots > 0).then_some(total),
            ballots,
            poor_ballots: u32::try_from(self.ratings.iter().filter(|&&r| r == 3).count()).unwrap(),
            valid: self.valid,
        }
    }

    /// The exact mean in points, when the quarter counts.
    fn exact_points(&self) -> Option<BigRational> {
        if !self.valid || self.ratings.is_empty() {
            return None;
        }
        let sum: i64 = self.ratings.iter().map(|&r| RATINGS[r]).sum();
        Some(BigRational::new(
            BigInt::from(sum),
            BigInt::from(10 * self.ratings.len()),
        ))
    }
}

/// RULES.md §5 step 4 read literally: the mean of the exact quarter scores × weight / 100,
/// rounded half up to 0.1 point. In tenths; `None` when no quarter counts.
fn reference(quarters: &[Rated], weight_points: i64) -> Option<i64> {
    let scores: Vec<BigRational> = quarters.iter().filter_map(Rated::exact_points).collect();
    if scores.is_empty() {
        return None;
    }
    let n = BigRational::from_integer(BigInt::from(scores.len()));
    let mean = scores.into_iter().sum::<BigRational>() / n;
    let points = mean * BigRational::new(BigInt::from(weight_points), BigInt::from(100));
    let half = BigRational::new(BigInt::from(1), BigInt::from(2));
    let tenths = (points * BigRational::from_integer(BigInt::from(10)) + half).floor();
    Some(i64::try_from(tenths.to_integer()).unwrap())
}

fn arb_quarters() -> impl Strategy<Value = Vec<Rated>> {
    let quarter = |q: u32| {
        (
            prop::collection::vec(
                prop_oneof![4 => Just(0_usize), 4 => Just(1), 2 => Just(2), 1 => Just(3)],
                0..=40,
            ),
            prop::bool::weighted(0.85),
        )
            .prop_map(move |(ratings, valid)| Rated {
                quarter: q,
                ratings,
                valid,
            })
    };
    (quarter(1), quarter(2), quarter(3), quarter(4)).prop_map(|(a, b, c, d)| vec![a, b, c, d])
}

/// The weights drawn below, each with the default standard changed to it (parsed once).
const WEIGHTS: [i64; 4] = [20, 15, 30, 25];

fn standards() -> &'static BTreeMap<i64, Standard> {
    static STANDARDS: OnceLock<BTreeMap<i64, Standard>> = OnceLock::new();
    STANDARDS.get_or_init(|| {
        WEIGHTS
            .into_iter()
            .map(|w| {
                let text = |t: &str| t.replace("weight = 20 ", &format!("weight = {w} "));
                (w, standard_with(text))
            })
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Exact to the deci-point for any ballots and several weights, including one that is not
    /// a whole number of points.
    #[test]
    fn evaluation_points_are_the_exact_mean_rounded_once(
        quarters in arb_quarters(),
        weight in prop::sample::select(WEIGHTS.to_vec()),
    ) {
        let s = &standards()[&weight];
        prop_assert_eq!(i64::from(s.evaluation().weight.tenths()), weight * 10);
        let results: Vec<QuarterResult> = quarters.iter().map(Rated::result).collect();
        let t = totals(s, None, &[], &results);
        match reference(&quarters, weight) {
            Some(expected) => {
                prop_assert!(!t.no_valid_evaluation);
                prop_assert_eq!(i64::from(t.evaluation.tenths()), expected, "{:?}", results);
            }
            None => prop_assert!(t.no_valid_evaluation && t.evaluation.is_zero()),
        }
    }
}

#[test]
fn the_rules_example_gives_17_2() {
    // RULES.md §5 step 4: Q1 较好 好 好 较好 好 (92), Q2 较好 较好 好 好 好 (92),
    // Q3 较好 较好 一般 好 较好 差 (400/6), Q4 好 较好 好 好 好 较好 好 (660/7).
    let rated = |quarter, ratings: &[usize]| Rated {
        quarter,
        ratings: ratings.to_vec(),
        valid: true,
    };
    let quarters = [
        rated(1, &[1, 0, 0, 1, 0]),
        rated(2, &[1, 1, 0, 0, 0]),
        rated(3, &[1, 1, 2, 0, 1, 3]),
        rated(4, &[0, 1, 0, 0, 0, 1, 0]),
    ];
    let results: Vec<QuarterResult> = quarters.iter().map(Rated::result).collect();
    let shown: Vec<i32> = results.iter().map(|q| q.score.unwrap().tenths()).collect();
    assert_eq!(shown, [920, 920, 667, 943]);
    let s = standard_with(|text| text.to_owned());
    assert_eq!(reference(&quarters, 20), Some(172));
    let t = totals(&s, None, &[], &results);
    assert_eq!(t.evaluation, DeciPoints::from_tenths(172));
    // The same quarters known only by their shown means (a projection from before the exact sums
    // were kept) give the double rounding: 86.25 × 20 / 100 = 17.25 → 17.3.
    let rounded: Vec<QuarterResult> = results
        .iter()
        .map(|q| QuarterResult {
            score_total: None,
            ..*q
        })
        .collect();
    assert_eq!(
        totals(&s, None, &[], &rounded).evaluation,
        DeciPoints::from_tenths(173)
    );
}

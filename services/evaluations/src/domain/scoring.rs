//! The quarter result of each member, computed once when a round closes (RULES.md §4).
//!
//! Per roster member: `ballots` = ballots that rated the member; `score_total` = the sum of the
//! standard's `rating_scores` over those ratings (deci-points, exact); `score` = the mean
//! rounded half up to a deci-point (none without ballots); `poor_ballots` = ratings `poor`
//! (the poor share is `poor_ballots / ballots`); `valid` = `ballots >= min_ballots`.
//! The tally does not depend on the order of the ballots.

use super::values::Rating;
use std::collections::HashMap;
use uuid::Uuid;

/// The evaluation settings of the standard that a tally applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScoringSettings {
    /// Fewer ballots: the quarter is not valid for that member (at least 1).
    pub min_ballots: u32,
    /// Deci-point scores of excellent, good, fair, poor (each 0–1000).
    pub excellent: i32,
    pub good: i32,
    pub fair: i32,
    pub poor: i32,
}

impl ScoringSettings {
    /// From the standard's `[evaluation]` section.
    pub fn from_standard(e: &jifen_standard::Evaluation) -> Self {
        Self {
            min_ballots: e.min_ballots,
            excellent: e.rating_scores.excellent.tenths(),
            good: e.rating_scores.good.tenths(),
            fair: e.rating_scores.fair.tenths(),
            poor: e.rating_scores.poor.tenths(),
        }
    }

    /// The deci-point score of `rating`.
    pub fn score(&self, rating: Rating) -> i32 {
        match rating {
            Rating::Excellent => self.excellent,
            Rating::Good => self.good,
            Rating::Fair => self.fair,
            Rating::Poor => self.poor,
        }
    }
}

/// One member's result of one round.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberResult {
    pub member_id: Uuid,
    pub ballots: u32,
    pub score_total: i64,
    pub score: Option<i32>,
    pub poor_ballots: u32,
    pub valid: bool,
}

impl MemberResult {
    /// `poor_ballots / ballots` (0 without ballots).
    pub fn poor_share(&self) -> f64 {
        if self.ballots == 0 {
            0.0
        } else {
            f64::from(self.poor_ballots) / f64::from(self.ballots)
        }
    }
}

/// `total / n` rounded half up, for `total >= 0` and `n > 0`.
pub fn mean_half_up(total: i64, n: u32) -> i32 {
    let n = i64::from(n);
    let mean = (2 * total + n).div_euclid(2 * n);
    i32::try_from(mean).unwrap_or(i32::MAX)
}

/// Every roster member's result, in roster order, from the ratings of every ballot of the round.
/// Ratings of members outside the roster are ignored (the store refuses them anyway).
pub fn tally(
    roster: &[Uuid],
    ratings: impl IntoIterator<Item = (Uuid, Rating)>,
    settings: &ScoringSettings,
) -> Vec<MemberResult> {
    let mut acc: HashMap<Uuid, (u32, i64, u32)> = roster.iter().map(|m| (*m, (0, 0, 0))).collect();
    for (member, rating) in ratings {
        if let Some((n, total, poor)) = acc.get_mut(&member) {
            *n += 1;
            *total += i64::from(settings.score(rating));
            if rating == Rating::Poor {
                *poor += 1;
            }
        }
    }
    roster
        .iter()
        .map(|m| {
            let (ballots, score_total, poor_ballots) = acc.get(m).copied().unwrap_or_default();
            MemberResult {
                member_id: *m,
                ballots,
                score_total,
                score: (ballots > 0).then(|| mean_half_up(score_total, ballots)),
                poor_ballots,
                valid: ballots >= settings.min_ballots,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;

    const DEFAULT: ScoringSettings = ScoringSettings {
        min_ballots: 5,
        excellent: 1000,
        good: 800,
        fair: 600,
        poor: 0,
    };

    #[test]
    fn default_standard_settings() {
        let standard = jifen_standard::default_2026().unwrap();
        assert_eq!(
            ScoringSettings::from_standard(standard.evaluation()),
            DEFAULT
        );
    }

    #[test]
    fn a_hand_computed_round() {
        let (a, b, c) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        use Rating::*;
        let ratings = [
            (a, Excellent),
            (a, Good),
            (a, Good),
            (a, Poor),
            (a, Fair),
            (b, Excellent),
            (b, Good),
        ];
        let r = tally(&[a, b, c], ratings, &DEFAULT);
        // a: (100 + 80 + 80 + 0 + 60) / 5 = 64.0, 1 poor of 5, valid.
        assert_eq!(
            r[0],
            MemberResult {
                member_id: a,
                ballots: 5,
                score_total: 3200,
                score: Some(640),
                poor_ballots: 1,
                valid: true
            }
        );
        assert!((r[0].poor_share() - 0.2).abs() < 1e-12);
        // b: (100 + 80) / 2 = 90.0, not valid.
        assert_eq!((r[1].score, r[1].valid), (Some(900), false));
        // c: nobody rated them.
        assert_eq!((r[2].ballots, r[2].score, r[2].valid), (0, None, false));
        assert_eq!(r[2].poor_share(), 0.0);
    }

    #[test]
    fn means_round_half_up() {
        assert_eq!(mean_half_up(2600, 3), 867); // 866.67
        assert_eq!(mean_half_up(1700, 2), 850);
        assert_eq!(mean_half_up(5, 2), 3); // 2.5 → 3
        assert_eq!(mean_half_up(7, 4), 2); // 1.75 → 2
        assert_eq!(mean_half_up(1, 4), 0); // 0.25 → 0
    }

    fn rating() -> impl Strategy<Value = Rating> {
        prop::sample::select(Rating::ALL.to_vec())
    }

    proptest! {
        #[test]
        fn tally_invariants(
            votes in prop::collection::vec((0usize..4, rating()), 0..200),
            min_ballots in 1u32..10,
            shuffle_seed in any::<u64>(),
        ) {
            let roster: Vec<Uuid> = (0..4).map(|_| Uuid::new_v4()).collect();
            let settings = ScoringSettings { min_ballots, ..DEFAULT };
            let ratings: Vec<(Uuid, Rating)> = votes.iter().map(|(i, r)| (roster[*i], *r)).collect();
            let results = tally(&roster, ratings.clone(), &settings);
            prop_assert_eq!(results.len(), roster.len());
            let counted: u32 = results.iter().map(|r| r.ballots).sum();
            prop_assert_eq!(counted as usize, ratings.len());
            for r in &results {
                prop_assert!(r.poor_ballots <= r.ballots);
                prop_assert_eq!(r.valid, r.ballots >= min_ballots);
                match r.score {
                    None => prop_assert_eq!(r.ballots, 0),
                    Some(s) => {
                        prop_assert!((0..=1000).contains(&s));
                        // The rounded mean is within half a deci-point of the exact mean.
                        let exact = r.score_total as f64 / f64::from(r.ballots);
                        prop_assert!((f64::from(s) - exact).abs() <= 0.5 + 1e-9);
                    }
                }
            }
            // Order of the ballots does not matter.
            let mut shuffled = ratings;
            use rand::{SeedableRng as _, seq::SliceRandom as _};
            shuffled.shuffle(&mut rand::rngs::StdRng::seed_from_u64(shuffle_seed));
            prop_assert_eq!(tally(&roster, shuffled, &settings), results);
        }
    }
}

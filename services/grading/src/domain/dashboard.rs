//! The dashboard's ratios 党建看板 (docs/decisions/0008-dashboard.md), as pure integer
//! arithmetic: the participation rate in thousandths and the mean points in deci-points; the
//! histogram of year totals and the lagging branches (docs/decisions/0015-dashboard-trend.md).

/// `declared / members` in thousandths, rounded half up; 0 when there are no members.
pub fn participation_permille(declared: i64, members: i64) -> i32 {
    if members <= 0 {
        return 0;
    }
    let declared = declared.clamp(0, members);
    i32::try_from((declared * 2000 + members) / (2 * members)).unwrap_or(1000)
}

/// The mean of `sum` deci-points over `members`, rounded half away from zero to a deci-point;
/// 0 when there are no members.
pub fn mean_tenths(sum: i64, members: i64) -> i32 {
    if members <= 0 {
        return 0;
    }
    let magnitude = (sum.abs() * 2 + members) / (2 * members);
    let mean = if sum < 0 { -magnitude } else { magnitude };
    i32::try_from(mean).unwrap_or(if sum < 0 { i32::MIN } else { i32::MAX })
}

/// A branch whose participation is below this (thousandths) is lagging.
pub const LAGGING_PERMILLE: i32 = 800;

/// A branch is lagging when it has members and fewer than [`LAGGING_PERMILLE`] of them declared.
pub fn lagging(members: i64, participation_permille: i32) -> bool {
    members > 0 && participation_permille < LAGGING_PERMILLE
}

/// Bins of a histogram when the caller does not say, and the most it has.
pub const DEFAULT_BINS: u32 = 10;
pub const MAX_BINS: u32 = 50;

/// One bin: totals from `from` (included) to `to` (excluded), deci-points.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bin {
    pub from: i64,
    pub to: i64,
    pub count: i64,
}

/// The histogram of `totals` (deci-points) in exactly `bins` bins (at least 1) of one width:
/// the smallest "round" width — 1, 2 or 5 times a power of ten deci-points — for which `bins`
/// bins starting at the lowest total rounded down to a multiple of the width reach past the
/// highest total, or else (a few bins across a multiple of every width, e.g. one bin for -0.1
/// and 0) starting at the lowest total itself. Without totals: `bins` empty bins of one point from 0. Answers the width and
/// the bins, lowest first; the counts sum to `totals.len()`.
pub fn histogram(totals: &[i32], bins: u32) -> (i64, Vec<Bin>) {
    let n = i64::from(bins.max(1));
    let (lo, hi) = match (totals.iter().min(), totals.iter().max()) {
        (Some(lo), Some(hi)) => (i64::from(*lo), i64::from(*hi)),
        _ => {
            let bins = (0..n)
                .map(|i| Bin {
                    from: i * 10,
                    to: (i + 1) * 10,
                    count: 0,
                })
                .collect();
            return (10, bins);
        }
    };
    // Totals are i32, so a width of 5·10⁹ tenths always reaches: the search ends by 10¹⁰.
    let (mut width, mut start) = (1, lo);
    'search: for power in 0..=10 {
        for step in [1, 2, 5] {
            width = step * 10i64.pow(power);
            let aligned = lo.div_euclid(width) * width;
            if aligned + n * width > hi {
                start = aligned;
                break 'search;
            }
            if lo + n * width > hi {
                start = lo;
                break 'search;
            }
        }
    }
    let mut counts = vec![0i64; usize::try_from(n).unwrap_or(1)];
    for t in totals {
        let i = (i64::from(*t) - start) / width;
        // Within 0..n by the choice of the width; clamped rather than trusted.
        let i = usize::try_from(i.clamp(0, n - 1)).unwrap_or(0);
        counts[i] += 1;
    }
    let bins = counts
        .into_iter()
        .zip(0..)
        .map(|(count, i)| Bin {
            from: start + i * width,
            to: start + (i + 1) * width,
            count,
        })
        .collect();
    (width, bins)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn rates_round_half_up_in_thousandths() {
        assert_eq!(participation_permille(0, 0), 0);
        assert_eq!(participation_permille(0, 3), 0);
        assert_eq!(participation_permille(1, 3), 333);
        assert_eq!(participation_permille(2, 3), 667);
        assert_eq!(participation_permille(1, 2000), 1); // 0.5 ‰ rounds up
        assert_eq!(participation_permille(3, 3), 1000);
    }

    #[test]
    fn means_round_half_away_from_zero() {
        assert_eq!(mean_tenths(0, 0), 0);
        assert_eq!(mean_tenths(75, 2), 38);
        assert_eq!(mean_tenths(-75, 2), -38);
        assert_eq!(mean_tenths(10, 3), 3);
        assert_eq!(mean_tenths(20, 3), 7);
    }

    proptest! {
        #[test]
        fn rates_stay_between_0_and_1000(members in 0i64..200_000, declared in 0i64..200_000) {
            let declared = declared.min(members);
            let r = participation_permille(declared, members);
            prop_assert!((0..=1000).contains(&r));
            if members > 0 {
                // Within half a thousandth of the exact ratio.
                prop_assert!((i64::from(r) * members * 2 - declared * 2000).abs() <= members);
            }
        }

        #[test]
        fn means_are_within_half_a_tenth(sum in -10_000_000i64..10_000_000, members in 1i64..200_000) {
            let m = i64::from(mean_tenths(sum, members));
            prop_assert!((m * members * 2 - sum * 2).abs() <= members);
        }

        #[test]
        fn histograms_hold_every_total_in_its_bin(
            totals in proptest::collection::vec(-3_000i32..30_000, 0..300),
            bins in 1u32..=50,
        ) {
            let (width, hist) = histogram(&totals, bins);
            prop_assert_eq!(hist.len(), bins as usize);
            prop_assert_eq!(hist.iter().map(|b| b.count).sum::<i64>(), totals.len() as i64);
            for pair in hist.windows(2) {
                prop_assert_eq!(pair[0].to, pair[1].from);
            }
            for b in &hist {
                prop_assert_eq!(b.to - b.from, width);
                let inside = totals
                    .iter()
                    .filter(|t| (b.from..b.to).contains(&i64::from(**t)))
                    .count() as i64;
                prop_assert_eq!(inside, b.count);
            }
            // The width is round: 1, 2 or 5 times a power of ten.
            let mut w = width;
            while w % 10 == 0 {
                w /= 10;
            }
            prop_assert!([1, 2, 5].contains(&w), "width {}", width);
        }
    }

    #[test]
    fn histograms_pick_the_smallest_round_width() {
        let (width, bins) = histogram(&[0, 95, 100], 10);
        assert_eq!(width, 20); // 10 tenths would end at 100, excluded
        assert_eq!(
            bins[0],
            Bin {
                from: 0,
                to: 20,
                count: 1
            }
        );
        assert_eq!(
            bins[4],
            Bin {
                from: 80,
                to: 100,
                count: 1
            }
        );
        assert_eq!(
            bins[5],
            Bin {
                from: 100,
                to: 120,
                count: 1
            }
        );
        let (width, bins) = histogram(&[-15, 7], 3);
        assert_eq!((width, bins[0].from), (10, -20));
        let (width, bins) = histogram(&[42, 42], 1);
        assert_eq!(
            (width, bins[0]),
            (
                1,
                Bin {
                    from: 42,
                    to: 43,
                    count: 2
                }
            )
        );
        // One bin cannot be aligned across 0: it starts at the lowest total.
        let (width, bins) = histogram(&[-1, 0], 1);
        assert_eq!(
            (width, bins[0]),
            (
                2,
                Bin {
                    from: -1,
                    to: 1,
                    count: 2
                }
            )
        );
        let (width, bins) = histogram(&[], 4);
        assert_eq!(width, 10);
        assert_eq!(
            bins.iter().map(|b| (b.from, b.count)).collect::<Vec<_>>(),
            vec![(0, 0), (10, 0), (20, 0), (30, 0)]
        );
    }

    #[test]
    fn branches_with_members_below_the_threshold_lag() {
        assert!(lagging(5, 799));
        assert!(!lagging(5, 800));
        assert!(!lagging(0, 0));
    }
}

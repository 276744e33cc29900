//! The dashboard's ratios 党建看板 (docs/decisions/0008-dashboard.md), as pure integer
//! arithmetic: the participation rate in thousandths and the mean points in deci-points.

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
    }
}

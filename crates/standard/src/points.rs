//! `DeciPoints`: an amount of points in tenths of a point.
//!
//! Responsibilities: the one numeric type for points, caps, bands and scores in the standard, and
//! its wire form. Every amount in jifen has at most one decimal (API.md "Conventions"), so an
//! amount is stored exactly as an `i32` count of tenths and all arithmetic is integer arithmetic.
//!
//! Invariants:
//! * parsing accepts a TOML/JSON number (integer or float) or a decimal string with **at most one
//!   decimal**: `0.5` → 5, `2` → 20, `-20` → -200; `2.25`, `NaN`, `1e12` are errors;
//! * arithmetic (`+`, `-`, negation, `sum`) saturates at the `i32` bounds instead of panicking;
//!   amounts in the standard are far from them;
//! * serializing writes a JSON/TOML number: an integer when the amount is whole (`2`), otherwise a
//!   float with exactly one decimal (`0.5`, `-2.5`); parsing what was written gives the same value.

use std::fmt;
use std::iter::Sum;
use std::ops::{Add, AddAssign, Neg, Sub, SubAssign};
use std::str::FromStr;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Why a number is not a valid amount of deci-points.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeciPointsError {
    /// More than one decimal (`2.25`).
    #[error("{0} has more than one decimal; points are given to 0.1")]
    TooManyDecimals(String),
    /// Outside the `i32` range of tenths, or not finite.
    #[error("{0} is out of range for points")]
    OutOfRange(String),
    /// Not a decimal number at all.
    #[error("{0:?} is not a decimal number")]
    NotANumber(String),
}

/// An amount of points in tenths of a point (`DeciPoints(5)` is 0.5 points).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DeciPoints(i32);

impl DeciPoints {
    /// Zero points.
    pub const ZERO: Self = Self(0);

    /// An amount of `tenths` tenths of a point.
    pub const fn from_tenths(tenths: i32) -> Self {
        Self(tenths)
    }

    /// A whole number of points; `None` when it does not fit.
    pub const fn from_points(points: i32) -> Option<Self> {
        match points.checked_mul(10) {
            Some(tenths) => Some(Self(tenths)),
            None => None,
        }
    }

    /// The amount in tenths of a point.
    pub const fn tenths(self) -> i32 {
        self.0
    }

    /// The absolute amount (saturating at `i32::MAX` tenths).
    pub const fn abs(self) -> Self {
        Self(self.0.saturating_abs())
    }

    /// Whether the amount is zero.
    pub const fn is_zero(self) -> bool {
        self.0 == 0
    }

    /// Whether the amount is above zero.
    pub const fn is_positive(self) -> bool {
        self.0 > 0
    }

    /// Whether the amount is below zero.
    pub const fn is_negative(self) -> bool {
        self.0 < 0
    }

    /// The amount as a float (for display and statistics only, never for rules).
    pub fn as_f64(self) -> f64 {
        f64::from(self.0) / 10.0
    }

    /// The amount for a float that is exactly some number of tenths, i.e. the nearest `f64` to a
    /// decimal with at most one decimal digit (what a JSON/TOML parser yields for `0.3`).
    pub fn from_f64(value: f64) -> Result<Self, DeciPointsError> {
        if !value.is_finite() {
            return Err(DeciPointsError::OutOfRange(value.to_string()));
        }
        let scaled = (value * 10.0).round();
        if scaled < f64::from(i32::MIN) || scaled > f64::from(i32::MAX) {
            return Err(DeciPointsError::OutOfRange(value.to_string()));
        }
        // `scaled / 10.0` is correctly rounded, so it equals `value` exactly when `value` is the
        // float nearest to a one-decimal number; anything else had more decimals.
        if scaled / 10.0 != value {
            return Err(DeciPointsError::TooManyDecimals(value.to_string()));
        }
        // In range and integral (checked above), so the cast is exact.
        Ok(Self(scaled as i32))
    }

    /// The amount for an integer number of points.
    pub fn from_i64_points(points: i64) -> Result<Self, DeciPointsError> {
        points
            .checked_mul(10)
            .and_then(|tenths| i32::try_from(tenths).ok())
            .map(Self)
            .ok_or_else(|| DeciPointsError::OutOfRange(points.to_string()))
    }

    /// Sum with overflow checking.
    pub fn checked_add(self, other: Self) -> Option<Self> {
        self.0.checked_add(other.0).map(Self)
    }
}

impl fmt::Display for DeciPoints {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        let (whole, tenth) = (abs / 10, abs % 10);
        if tenth == 0 {
            write!(f, "{sign}{whole}")
        } else {
            write!(f, "{sign}{whole}.{tenth}")
        }
    }
}

impl FromStr for DeciPoints {
    type Err = DeciPointsError;

    /// Parses `2`, `-20`, `0.5`, `+1.0`; rejects `2.25`, `.5`, `1e3`, `` and anything else.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let not_a_number = || DeciPointsError::NotANumber(s.to_owned());
        let (negative, unsigned) = match s.as_bytes().first() {
            Some(b'-') => (true, &s[1..]),
            Some(b'+') => (false, &s[1..]),
            _ => (false, s),
        };
        let (whole, fraction) = match unsigned.split_once('.') {
            Some((whole, fraction)) => (whole, Some(fraction)),
            None => (unsigned, None),
        };
        if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) {
            return Err(not_a_number());
        }
        let tenth = match fraction {
            None => 0,
            Some(f) if f.is_empty() || !f.bytes().all(|b| b.is_ascii_digit()) => {
                return Err(not_a_number());
            }
            Some(f) => {
                let (first, rest) = f.split_at(1);
                if rest.bytes().any(|b| b != b'0') {
                    return Err(DeciPointsError::TooManyDecimals(s.to_owned()));
                }
                i64::from(first.as_bytes()[0] - b'0')
            }
        };
        let out_of_range = || DeciPointsError::OutOfRange(s.to_owned());
        let whole: i64 = whole.parse().map_err(|_| out_of_range())?;
        let tenths = whole
            .checked_mul(10)
            .and_then(|t| t.checked_add(tenth))
            .ok_or_else(out_of_range)?;
        let tenths = if negative { -tenths } else { tenths };
        i32::try_from(tenths).map(Self).map_err(|_| out_of_range())
    }
}

impl Serialize for DeciPoints {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if self.0 % 10 == 0 {
            serializer.serialize_i64(i64::from(self.0 / 10))
        } else {
            // Correctly rounded division: the nearest float to the one-decimal number, which
            // shortest-representation printers (ryu, TOML) write with exactly one decimal.
            serializer.serialize_f64(self.as_f64())
        }
    }
}

impl<'de> Deserialize<'de> for DeciPoints {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(DeciPointsVisitor)
    }
}

struct DeciPointsVisitor;

impl Visitor<'_> for DeciPointsVisitor {
    type Value = DeciPoints;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a number of points with at most one decimal")
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<DeciPoints, E> {
        DeciPoints::from_i64_points(v).map_err(E::custom)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<DeciPoints, E> {
        let v =
            i64::try_from(v).map_err(|_| E::custom(DeciPointsError::OutOfRange(v.to_string())))?;
        self.visit_i64(v)
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<DeciPoints, E> {
        DeciPoints::from_f64(v).map_err(E::custom)
    }
}

impl Add for DeciPoints {
    type Output = Self;
    fn add(self, rhs: Self) -> Self {
        Self(self.0.saturating_add(rhs.0))
    }
}

impl AddAssign for DeciPoints {
    fn add_assign(&mut self, rhs: Self) {
        self.0 = self.0.saturating_add(rhs.0);
    }
}

impl Sub for DeciPoints {
    type Output = Self;
    fn sub(self, rhs: Self) -> Self {
        Self(self.0.saturating_sub(rhs.0))
    }
}

impl SubAssign for DeciPoints {
    fn sub_assign(&mut self, rhs: Self) {
        self.0 = self.0.saturating_sub(rhs.0);
    }
}

impl Neg for DeciPoints {
    type Output = Self;
    fn neg(self) -> Self {
        Self(self.0.saturating_neg())
    }
}

impl Sum for DeciPoints {
    fn sum<I: Iterator<Item = Self>>(iter: I) -> Self {
        iter.fold(Self::ZERO, Add::add)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use proptest::prelude::*;
    use serde::Deserialize;

    #[derive(Debug, Serialize, Deserialize, PartialEq)]
    struct Doc {
        points: DeciPoints,
    }

    fn json(s: &str) -> Result<DeciPoints, serde_json::Error> {
        serde_json::from_str::<DeciPoints>(s)
    }

    fn toml_points(s: &str) -> Result<DeciPoints, toml::de::Error> {
        toml::from_str::<Doc>(&format!("points = {s}")).map(|d| d.points)
    }

    #[test]
    fn parses_numbers_with_at_most_one_decimal() {
        assert_eq!(json("0.5").unwrap(), DeciPoints(5));
        assert_eq!(json("2").unwrap(), DeciPoints(20));
        assert_eq!(json("-20").unwrap(), DeciPoints(-200));
        assert_eq!(json("2.0").unwrap(), DeciPoints(20));
        assert_eq!(json("0.3").unwrap(), DeciPoints(3));
        assert_eq!(json("-0.1").unwrap(), DeciPoints(-1));
        assert_eq!(json("0").unwrap(), DeciPoints::ZERO);
        assert_eq!(toml_points("0.5").unwrap(), DeciPoints(5));
        assert_eq!(toml_points("2").unwrap(), DeciPoints(20));
        assert_eq!(toml_points("-20").unwrap(), DeciPoints(-200));
        assert_eq!(toml_points("-0.5").unwrap(), DeciPoints(-5));
    }

    #[test]
    fn rejects_more_decimals_strings_and_out_of_range() {
        assert!(json("2.25").is_err());
        assert!(json("0.05").is_err());
        assert!(json("2.0000001").is_err());
        assert!(json("\"2\"").is_err());
        assert!(json("true").is_err());
        assert!(json("null").is_err());
        assert!(json("1e12").is_err());
        assert!(json("214748365").is_err());
        assert!(json("18446744073709551615").is_err());
        assert!(toml_points("2.25").is_err());
        assert!(toml_points("nan").is_err());
        assert!(toml_points("inf").is_err());
        let message = json("2.25").unwrap_err().to_string();
        assert!(message.contains("more than one decimal"), "{message}");
    }

    #[test]
    fn serializes_whole_amounts_as_integers_and_others_with_one_decimal() {
        let cases = [
            (5, "0.5"),
            (20, "2"),
            (-200, "-20"),
            (-5, "-0.5"),
            (25, "2.5"),
            (3, "0.3"),
            (0, "0"),
            (1, "0.1"),
            (-1, "-0.1"),
            (i32::MAX, "214748364.7"),
            (i32::MIN, "-214748364.8"),
        ];
        for (tenths, text) in cases {
            assert_eq!(serde_json::to_string(&DeciPoints(tenths)).unwrap(), text);
            assert_eq!(DeciPoints(tenths).to_string(), text);
        }
        let toml_text = toml::to_string(&Doc {
            points: DeciPoints(5),
        })
        .unwrap();
        assert_eq!(toml_text.trim(), "points = 0.5");
        let toml_text = toml::to_string(&Doc {
            points: DeciPoints(-200),
        })
        .unwrap();
        assert_eq!(toml_text.trim(), "points = -20");
    }

    #[test]
    fn from_str_accepts_decimals_and_rejects_junk() {
        assert_eq!("2".parse::<DeciPoints>().unwrap(), DeciPoints(20));
        assert_eq!("+1.0".parse::<DeciPoints>().unwrap(), DeciPoints(10));
        assert_eq!("-0.5".parse::<DeciPoints>().unwrap(), DeciPoints(-5));
        assert_eq!("2.50".parse::<DeciPoints>().unwrap(), DeciPoints(25));
        assert_eq!(
            "2.25".parse::<DeciPoints>(),
            Err(DeciPointsError::TooManyDecimals("2.25".into()))
        );
        for junk in ["", "-", ".5", "5.", "1e3", "a", "1.x", "--1", " 1"] {
            assert!(
                matches!(
                    junk.parse::<DeciPoints>(),
                    Err(DeciPointsError::NotANumber(_))
                ),
                "{junk:?}"
            );
        }
        assert!(matches!(
            "214748364.8".parse::<DeciPoints>(),
            Err(DeciPointsError::OutOfRange(_))
        ));
        assert_eq!(
            "-214748364.8".parse::<DeciPoints>().unwrap(),
            DeciPoints(i32::MIN)
        );
    }

    #[test]
    fn arithmetic_and_helpers() {
        let sum: DeciPoints = [DeciPoints(5), DeciPoints(20), -DeciPoints(3)]
            .into_iter()
            .sum();
        assert_eq!(sum, DeciPoints(22));
        assert_eq!(DeciPoints(-200).abs(), DeciPoints(200));
        assert_eq!(DeciPoints::from_points(7), Some(DeciPoints(70)));
        assert_eq!(DeciPoints::from_points(i32::MAX), None);
        assert!(DeciPoints(1).is_positive() && DeciPoints(-1).is_negative());
        assert_eq!(DeciPoints(i32::MAX).checked_add(DeciPoints(1)), None);
    }

    proptest! {
        #[test]
        fn json_round_trip(tenths in any::<i32>()) {
            let text = serde_json::to_string(&DeciPoints(tenths)).unwrap();
            prop_assert!(text.split_once('.').is_none_or(|(_, f)| f.len() == 1), "{}", text);
            prop_assert_eq!(json(&text).unwrap(), DeciPoints(tenths));
        }

        #[test]
        fn toml_round_trip(tenths in any::<i32>()) {
            let text = toml::to_string(&Doc { points: DeciPoints(tenths) }).unwrap();
            prop_assert_eq!(toml::from_str::<Doc>(&text).unwrap().points, DeciPoints(tenths));
        }

        #[test]
        fn display_from_str_round_trip(tenths in any::<i32>()) {
            let text = DeciPoints(tenths).to_string();
            prop_assert_eq!(text.parse::<DeciPoints>().unwrap(), DeciPoints(tenths));
        }
    }
}

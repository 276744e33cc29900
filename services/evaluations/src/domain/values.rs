//! Validated values of the evaluation API: quarter (`YYYY-Qn`), rating (好 `excellent`,
//! 较好 `good`, 一般 `fair`, 差 `poor`), evaluator kind (群众 `masses`, 党员 `member`), round
//! status and the size of an invitation batch.

use chrono::{Datelike as _, NaiveDate};
use std::fmt;

/// Why a value was refused; the message names what is expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    #[error("is required")]
    Missing,
    #[error("{0}")]
    Invalid(String),
}

/// A calendar quarter of the business calendar, `YYYY-Qn` (years 2000–2999).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Quarter {
    year: i32,
    q: u8,
}

impl Quarter {
    /// `2026-Q3`.
    pub fn parse(text: &str) -> Result<Self, ValueError> {
        let bad = || ValueError::Invalid("must be a quarter YYYY-Qn, e.g. 2026-Q3".into());
        let text = text.trim();
        if text.is_empty() {
            return Err(ValueError::Missing);
        }
        let (year, q) = text.split_once("-Q").ok_or_else(bad)?;
        if year.len() != 4 || q.len() != 1 {
            return Err(bad());
        }
        let year: i32 = year.parse().map_err(|_| bad())?;
        let q: u8 = q.parse().map_err(|_| bad())?;
        if !(2000..=2999).contains(&year) {
            return Err(ValueError::Invalid("year must be from 2000 to 2999".into()));
        }
        if !(1..=4).contains(&q) {
            return Err(bad());
        }
        Ok(Self { year, q })
    }

    pub fn year(self) -> i32 {
        self.year
    }

    /// 1–4.
    pub fn number(self) -> u8 {
        self.q
    }

    /// The quarter's first day.
    pub fn first_day(self) -> NaiveDate {
        let month = u32::from(self.q - 1) * 3 + 1;
        // Year 2000–2999, month 1/4/7/10, day 1: always a valid date.
        NaiveDate::from_ymd_opt(self.year, month, 1).unwrap_or(NaiveDate::MIN)
    }

    /// The quarter containing `date`.
    pub fn of(date: NaiveDate) -> Self {
        Self {
            year: date.year(),
            // month 1–12 → 1–4, always fits.
            q: u8::try_from((date.month() - 1) / 3 + 1).unwrap_or(1),
        }
    }
}

impl fmt::Display for Quarter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-Q{}", self.year, self.q)
    }
}

/// A closed vocabulary spelled in the API's `snake_case`.
macro_rules! vocabulary {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $($variant),+
        }

        impl $name {
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];

            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $text),+
                }
            }

            pub fn parse(text: &str) -> Result<Self, ValueError> {
                match text {
                    $($text => Ok(Self::$variant),)+
                    "" => Err(ValueError::Missing),
                    _ => Err(ValueError::Invalid(format!(
                        "must be one of: {}",
                        [$($text),+].join(", ")
                    ))),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

vocabulary! {
    /// A rating of one member on one ballot: 好, 较好, 一般, 差.
    Rating {
        Excellent => "excellent",
        Good => "good",
        Fair => "fair",
        Poor => "poor",
    }
}

vocabulary! {
    /// Who holds an invitation code: 群众 (`masses`, non-members) or a member of the branch.
    EvaluatorKind {
        Masses => "masses",
        Member => "member",
    }
}

vocabulary! {
    /// A round is open for ballots until it is closed (by hand or at its closing instant).
    RoundStatus {
        Open => "open",
        Closed => "closed",
    }
}

/// How many codes one request issues: 1–1000.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvitationCount(u32);

impl InvitationCount {
    pub const MAX: i64 = 1000;

    pub fn parse(n: i64) -> Result<Self, ValueError> {
        if (1..=Self::MAX).contains(&n) {
            // 1..=1000 fits a u32.
            Ok(Self(u32::try_from(n).unwrap_or(1)))
        } else {
            Err(ValueError::Invalid(format!(
                "must be from 1 to {}",
                Self::MAX
            )))
        }
    }

    pub fn get(self) -> u32 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn quarters() {
        let q = Quarter::parse("2026-Q3").unwrap();
        assert_eq!((q.year(), q.number()), (2026, 3));
        assert_eq!(q.to_string(), "2026-Q3");
        assert_eq!(q.first_day(), NaiveDate::from_ymd_opt(2026, 7, 1).unwrap());
        assert_eq!(
            Quarter::of(NaiveDate::from_ymd_opt(2026, 12, 31).unwrap()).to_string(),
            "2026-Q4"
        );
        for bad in [
            "2026-Q5", "2026-Q0", "2026Q1", "26-Q1", "1999-Q1", "2026-q1", "x",
        ] {
            assert!(Quarter::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(Quarter::parse(""), Err(ValueError::Missing));
    }

    #[test]
    fn vocabularies_round_trip() {
        for r in Rating::ALL {
            assert_eq!(Rating::parse(r.as_str()).unwrap(), *r);
        }
        assert!(Rating::parse("great").is_err());
        assert_eq!(
            EvaluatorKind::parse("masses").unwrap(),
            EvaluatorKind::Masses
        );
        assert!(EvaluatorKind::parse("public").is_err());
    }

    #[test]
    fn invitation_counts() {
        assert_eq!(InvitationCount::parse(1).unwrap().get(), 1);
        assert_eq!(InvitationCount::parse(1000).unwrap().get(), 1000);
        assert!(InvitationCount::parse(0).is_err());
        assert!(InvitationCount::parse(1001).is_err());
        assert!(InvitationCount::parse(-3).is_err());
    }
}

//! Months (`YYYY-MM`) of the business calendar and when a member may declare for them.
//!
//! The business calendar is Asia/Shanghai (DESIGN.md §6). China has kept UTC+8 without daylight
//! saving since 1991, so the zone is the fixed offset +08:00 here (no time-zone database needed).
//! A month M is open to its members from M-01 00:00 until the end of the standard's
//! `deadline_day` of M+1, i.e. until `deadline_day + 1` of M+1 at 00:00, exclusive.

use chrono::{DateTime, Datelike as _, FixedOffset, NaiveDate, TimeZone as _, Utc};
use std::fmt;

/// UTC+8, the offset of Asia/Shanghai.
pub fn shanghai() -> FixedOffset {
    // 8 hours is within ±24 h, so the offset always exists.
    FixedOffset::east_opt(8 * 3600).unwrap_or_else(|| unreachable!("+08:00 is a valid offset"))
}

/// A calendar month.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Month {
    year: i32,
    month: u32,
}

/// Why a month text was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("must be a month YYYY-MM (e.g. 2026-03)")]
pub struct MonthError;

impl Month {
    /// Parses `YYYY-MM` with a year between 2000 and 2999.
    pub fn parse(text: &str) -> Result<Self, MonthError> {
        let bytes = text.as_bytes();
        if bytes.len() != 7 || bytes[4] != b'-' {
            return Err(MonthError);
        }
        let year: i32 = text[..4].parse().map_err(|_| MonthError)?;
        let month: u32 = text[5..].parse().map_err(|_| MonthError)?;
        if !(2000..=2999).contains(&year) || !(1..=12).contains(&month) {
            return Err(MonthError);
        }
        if !text[..4].bytes().all(|b| b.is_ascii_digit())
            || !text[5..].bytes().all(|b| b.is_ascii_digit())
        {
            return Err(MonthError);
        }
        Ok(Self { year, month })
    }

    pub fn year(self) -> i32 {
        self.year
    }

    pub fn number(self) -> u32 {
        self.month
    }

    /// The month that contains `instant` in Shanghai.
    pub fn containing(instant: DateTime<Utc>) -> Self {
        let local = instant.with_timezone(&shanghai());
        Self {
            year: local.year(),
            month: local.month(),
        }
    }

    pub fn next(self) -> Self {
        if self.month == 12 {
            Self {
                year: self.year + 1,
                month: 1,
            }
        } else {
            Self {
                year: self.year,
                month: self.month + 1,
            }
        }
    }

    pub fn previous(self) -> Self {
        if self.month == 1 {
            Self {
                year: self.year - 1,
                month: 12,
            }
        } else {
            Self {
                year: self.year,
                month: self.month - 1,
            }
        }
    }

    fn first_day(self) -> NaiveDate {
        NaiveDate::from_ymd_opt(self.year, self.month, 1)
            .unwrap_or_else(|| unreachable!("a parsed month has a first day"))
    }

    fn days(self) -> u32 {
        let next = self.next().first_day();
        u32::try_from((next - self.first_day()).num_days())
            .unwrap_or_else(|_| unreachable!("a month has 28 to 31 days"))
    }

    /// Shanghai midnight of `date` as a UTC instant.
    fn midnight(date: NaiveDate) -> DateTime<Utc> {
        let naive = date
            .and_hms_opt(0, 0, 0)
            .unwrap_or_else(|| unreachable!("00:00:00 exists"));
        shanghai()
            .from_local_datetime(&naive)
            .single()
            .unwrap_or_else(|| unreachable!("a fixed offset maps every local time once"))
            .with_timezone(&Utc)
    }

    /// The instant the month begins (M-01 00:00 Shanghai).
    pub fn opens_at(self) -> DateTime<Utc> {
        Self::midnight(self.first_day())
    }

    /// The last day members may declare for this month: `deadline_day` of the next month
    /// (clamped to that month's length).
    pub fn deadline_date(self, deadline_day: u32) -> NaiveDate {
        let next = self.next();
        let day = deadline_day.clamp(1, next.days());
        NaiveDate::from_ymd_opt(next.year, next.month, day)
            .unwrap_or_else(|| unreachable!("the day is clamped to the month"))
    }

    /// The instant the member's window closes (exclusive): the day after the deadline day, 00:00
    /// Shanghai.
    pub fn closes_at(self, deadline_day: u32) -> DateTime<Utc> {
        Self::midnight(
            self.deadline_date(deadline_day)
                .succ_opt()
                .unwrap_or_else(|| unreachable!("years end at 2999")),
        )
    }

    /// Whether a member may change and submit their own declaration of this month at `now`
    /// without a reopening.
    pub fn is_open(self, deadline_day: u32, now: DateTime<Utc>) -> bool {
        self.opens_at() <= now && now < self.closes_at(deadline_day)
    }

    /// The Shanghai date of `instant`.
    pub fn local_date(instant: DateTime<Utc>) -> NaiveDate {
        instant.with_timezone(&shanghai()).date_naive()
    }
}

impl fmt::Display for Month {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn parses_only_real_months() {
        assert_eq!(Month::parse("2026-03").unwrap().to_string(), "2026-03");
        for bad in [
            "2026-3",
            "2026-13",
            "2026-00",
            "26-03",
            "2026/03",
            "",
            "2026-03-01",
            "+026-03",
            "1999-12",
        ] {
            assert!(Month::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn window_runs_from_the_first_to_the_deadline_day_in_shanghai() {
        let m = Month::parse("2026-10").unwrap();
        // 2026-10-01 00:00 Shanghai is 2026-09-30 16:00 UTC.
        assert!(!m.is_open(5, at("2026-09-30T15:59:59Z")));
        assert!(m.is_open(5, at("2026-09-30T16:00:00Z")));
        // The 5th of November is the last day; it ends at 2026-11-05 16:00 UTC.
        assert!(m.is_open(5, at("2026-11-05T15:59:59Z")));
        assert!(!m.is_open(5, at("2026-11-05T16:00:00Z")));
        assert_eq!(m.closes_at(5), at("2026-11-05T16:00:00Z"));
    }

    #[test]
    fn december_closes_in_january_and_long_deadlines_clamp() {
        let m = Month::parse("2026-12").unwrap();
        assert_eq!(m.closes_at(5), at("2027-01-05T16:00:00Z"));
        let jan = Month::parse("2027-01").unwrap();
        // February 2027 has 28 days: a deadline day of 31 means the 28th.
        assert_eq!(jan.deadline_date(31).to_string(), "2027-02-28");
    }

    #[test]
    fn containing_uses_the_shanghai_calendar() {
        assert_eq!(
            Month::containing(at("2026-10-31T16:00:00Z")).to_string(),
            "2026-11"
        );
        assert_eq!(
            Month::containing(at("2026-10-31T15:59:59Z")).to_string(),
            "2026-10"
        );
        assert_eq!(
            Month::parse("2026-01").unwrap().previous().to_string(),
            "2025-12"
        );
    }
}

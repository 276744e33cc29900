//! The members domain: pure values and rules, no I/O (no sea-orm, tonic, lapin or tokio).
//!
//! * [`kinds`]: the closed vocabularies of the API (organization kind, unit type, category,
//!   status, flag, sanction kind, gender, grantable role), each parsed from its API spelling.
//! * [`values`]: validated newtypes (`PersonName`, `Phone`, `IdCard`, dates, reasons, usernames,
//!   passwords) and the masking of personal data.
//! * [`tree`]: the organization tree's shape rules and materialized paths.
//! * [`member`]: the member aggregate and the rules of its changes.
//! * [`authz`]: who may do what, as pure functions of the caller's principal and org paths.
//! * [`violations`]: collecting every bad field of a request at once.
//!
//! Invariant: a value inside one of these types is valid; every check happens in a `parse`.

pub mod authz;
pub mod kinds;
pub mod member;
pub mod tree;
pub mod values;
pub mod violations;

pub use kinds::{Category, Flag, Gender, GrantRole, OrgKind, SanctionKind, Status, UnitType};
pub use member::{Member, MemberPatch, RuleError, SanctionRecord, TransferRecord};
pub use tree::Organization;
pub use values::{
    IdCard, OrgName, Page, Password, PersonName, Phone, Reason, Username, ValueError,
};
pub use violations::Violations;

/// Offset of the business calendar (Asia/Shanghai, UTC+8, no daylight saving time).
pub const BUSINESS_UTC_OFFSET_HOURS: i64 = 8;

/// Today's date in the business calendar, given the current instant.
pub fn business_today(now: chrono::DateTime<chrono::Utc>) -> chrono::NaiveDate {
    (now + chrono::TimeDelta::hours(BUSINESS_UTC_OFFSET_HOURS)).date_naive()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use chrono::{NaiveDate, TimeZone as _};

    #[test]
    fn business_day_is_shanghai() {
        let late_utc = chrono::Utc.with_ymd_and_hms(2026, 1, 31, 17, 0, 0).unwrap();
        assert_eq!(
            business_today(late_utc),
            NaiveDate::from_ymd_opt(2026, 2, 1).unwrap()
        );
        let early_utc = chrono::Utc
            .with_ymd_and_hms(2026, 1, 31, 15, 59, 0)
            .unwrap();
        assert_eq!(
            business_today(early_utc),
            NaiveDate::from_ymd_opt(2026, 1, 31).unwrap()
        );
    }
}

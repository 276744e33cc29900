//! The final grade (定档) as the services that keep a local `final_grades` table consume it.
//!
//! The grading service publishes `grading.member_grade.finalized.v1` (`MemberGradeFinalized`)
//! once per member when the upper committee finalizes a branch's grading; a final grade never
//! changes. The declarations and evaluations services both keep the same four facts of it, to
//! refuse changes to a final year (docs/decisions/0005-final-years.md,
//! docs/decisions/0006-final-years-evaluations.md). This module only decodes the contract; what
//! a service refuses, and its SQL, stay in the service.

use chrono::{DateTime, Utc};
use jifen_proto::events::v1 as ev;
use prost::Message as _;
use uuid::Uuid;

/// The routing key of a member's final grade (published by the grading service).
pub const MEMBER_GRADE_FINALIZED: &str = "grading.member_grade.finalized.v1";

/// What a consumer keeps of a member's final grade of a year.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FinalGrade {
    pub member_id: Uuid,
    pub year: i32,
    /// The branch the member was graded in.
    pub org_id: Uuid,
    /// That branch's materialized path.
    pub org_path: String,
    pub finalized_at: DateTime<Utc>,
}

impl FinalGrade {
    /// Decodes a `MemberGradeFinalized` payload. The error says why the event can never be
    /// applied (a consumer dead-letters it with that reason).
    pub fn decode(payload: &[u8]) -> Result<Self, String> {
        let m = ev::MemberGradeFinalized::decode(payload)
            .map_err(|e| format!("not a MemberGradeFinalized: {e}"))?;
        let finalized_at = DateTime::parse_from_rfc3339(&m.finalized_at)
            .map_err(|e| format!("finalized_at {:?}: {e}", m.finalized_at))?
            .with_timezone(&Utc);
        Ok(Self {
            member_id: uuid("member_id", &m.member_id)?,
            year: m.year,
            org_id: uuid("org_id", &m.org_id)?,
            org_path: m.org_path,
            finalized_at,
        })
    }
}

fn uuid(field: &str, text: &str) -> Result<Uuid, String> {
    Uuid::parse_str(text).map_err(|_| format!("{field} is not a UUID: {text:?}"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn message() -> ev::MemberGradeFinalized {
        ev::MemberGradeFinalized {
            member_id: "0190f1f2-0000-7000-8000-000000000001".into(),
            org_id: "0190f1f2-0000-7000-8000-000000000002".into(),
            org_path: "/a/b/".into(),
            year: 2026,
            grade: "qualified".into(),
            finalized_at: "2027-01-20T02:00:00.000Z".into(),
            version: 1,
            ..Default::default()
        }
    }

    #[test]
    fn decodes_the_four_facts() {
        let grade = FinalGrade::decode(&message().encode_to_vec()).unwrap();
        assert_eq!(
            grade,
            FinalGrade {
                member_id: "0190f1f2-0000-7000-8000-000000000001".parse().unwrap(),
                year: 2026,
                org_id: "0190f1f2-0000-7000-8000-000000000002".parse().unwrap(),
                org_path: "/a/b/".into(),
                finalized_at: "2027-01-20T02:00:00Z".parse().unwrap(),
            }
        );
    }

    #[test]
    fn refuses_what_can_never_apply() {
        let mut bad_member = message();
        bad_member.member_id = "nobody".into();
        let mut bad_org = message();
        bad_org.org_id = String::new();
        let mut bad_instant = message();
        bad_instant.finalized_at = "yesterday".into();
        for (m, needle) in [
            (bad_member, "member_id"),
            (bad_org, "org_id"),
            (bad_instant, "finalized_at"),
        ] {
            let error = FinalGrade::decode(&m.encode_to_vec()).unwrap_err();
            assert!(error.contains(needle), "{error}");
        }
        let error = FinalGrade::decode(b"\xff\xff\xff").unwrap_err();
        assert!(error.starts_with("not a MemberGradeFinalized"), "{error}");
    }
}

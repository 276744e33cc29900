//! What the members service publishes (it consumes nothing). Routing keys and messages are those
//! of `proto/jifen/events/v1/members.proto`:
//!
//! | routing key | message |
//! |---|---|
//! | `members.organization.created.v1` | `OrganizationChanged` |
//! | `members.organization.updated.v1` | `OrganizationChanged` |
//! | `members.member.created.v1` | `MemberChanged` |
//! | `members.member.updated.v1` | `MemberChanged` |
//! | `members.member.transferred.v1` | `MemberChanged` with `transfer` |
//! | `members.member.sanctioned.v1` | `MemberChanged` (all sanctions, the new one included) |
//!
//! Invariants: every event carries the aggregate's whole state and version; no event carries
//! personal data (no phone, no ID card number, no account); events are staged through the
//! outbox in the transaction of the change they describe.

use crate::convert;
use crate::domain::{Member, Organization, SanctionRecord, TransferRecord};
use jifen_eventbus::OutgoingEvent;
use jifen_proto::events::v1 as ev;
use prost::Message as _;

/// `ce-source` of every event of this service.
pub const SOURCE: &str = "members";

pub const ORGANIZATION_CREATED: &str = "members.organization.created.v1";
pub const ORGANIZATION_UPDATED: &str = "members.organization.updated.v1";
pub const MEMBER_CREATED: &str = "members.member.created.v1";
pub const MEMBER_UPDATED: &str = "members.member.updated.v1";
pub const MEMBER_TRANSFERRED: &str = "members.member.transferred.v1";
pub const MEMBER_SANCTIONED: &str = "members.member.sanctioned.v1";

/// The event state of an organization.
pub fn organization_state(org: &Organization) -> ev::OrganizationState {
    ev::OrganizationState {
        id: org.id.to_string(),
        parent_id: org.parent_id.map(|p| p.to_string()).unwrap_or_default(),
        name: org.name.as_str().to_owned(),
        kind: convert::org_kind_pb(org.kind).into(),
        unit_type: convert::unit_type_pb(org.unit_type).into(),
        path: org.path.clone(),
        version: org.version,
    }
}

/// `OrganizationChanged` under `routing_key`.
pub fn organization_changed(routing_key: &str, org: &Organization) -> OutgoingEvent {
    let message = ev::OrganizationChanged {
        organization: Some(organization_state(org)),
    };
    OutgoingEvent {
        routing_key: routing_key.to_owned(),
        subject: org.id.to_string(),
        payload: message.encode_to_vec(),
    }
}

fn sanction_state(s: &SanctionRecord) -> ev::SanctionState {
    ev::SanctionState {
        id: s.id.to_string(),
        kind: convert::sanction_kind_pb(s.kind).into(),
        decided_on: s.decided_on.format("%Y-%m-%d").to_string(),
        reason: s.reason.clone(),
    }
}

fn transfer_state(t: &TransferRecord) -> ev::TransferState {
    ev::TransferState {
        id: t.id.to_string(),
        from_org_id: t.from_org_id.to_string(),
        to_org_id: t.to_org_id.to_string(),
        reason: t.reason.clone(),
        transferred_at: t
            .transferred_at
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
    }
}

/// The event state of a member: everything but personal data.
pub fn member_state(m: &Member, sanctions: &[SanctionRecord]) -> ev::MemberState {
    ev::MemberState {
        id: m.id.to_string(),
        org_id: m.org_id.to_string(),
        org_path: m.org_path.clone(),
        name: m.name.as_str().to_owned(),
        category: convert::category_pb(m.category).into(),
        status: convert::status_pb(m.status).into(),
        joined_on: m.joined_on.format("%Y-%m-%d").to_string(),
        flags: m
            .flags
            .iter()
            .map(|f| convert::flag_pb(*f).into())
            .collect(),
        sanctions: sanctions.iter().map(sanction_state).collect(),
        version: m.version,
    }
}

/// `MemberChanged` under `routing_key`, with the transfer that caused it if any.
pub fn member_changed(
    routing_key: &str,
    m: &Member,
    sanctions: &[SanctionRecord],
    transfer: Option<&TransferRecord>,
) -> OutgoingEvent {
    let message = ev::MemberChanged {
        member: Some(member_state(m, sanctions)),
        transfer: transfer.map(transfer_state),
    };
    OutgoingEvent {
        routing_key: routing_key.to_owned(),
        subject: m.id.to_string(),
        payload: message.encode_to_vec(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::domain::{Category, Gender, IdCard, OrgKind, PersonName, Phone};
    use chrono::NaiveDate;
    use uuid::Uuid;

    #[test]
    fn member_events_carry_state_but_no_personal_data() {
        let m = Member::new(
            Uuid::now_v7(),
            Uuid::now_v7(),
            "/r/b/".into(),
            OrgKind::Branch,
            PersonName::parse("李四").unwrap(),
            Gender::Female,
            Category::Probationary,
            NaiveDate::from_ymd_opt(2020, 5, 4).unwrap(),
            vec![],
            Some(Phone::parse("13912345678").unwrap()),
            Some(IdCard::parse("11010519491231002X").unwrap()),
        )
        .unwrap();
        let e = member_changed(MEMBER_CREATED, &m, &[], None);
        assert_eq!(e.routing_key, "members.member.created.v1");
        assert_eq!(e.subject, m.id.to_string());
        let decoded = ev::MemberChanged::decode(e.payload.as_slice()).unwrap();
        let state = decoded.member.unwrap();
        assert_eq!(state.version, 1);
        assert_eq!(state.joined_on, "2020-05-04");
        assert_eq!(
            state.status,
            jifen_proto::common::v1::MemberStatus::Active as i32
        );
        let bytes = String::from_utf8_lossy(&e.payload).into_owned();
        assert!(!bytes.contains("13912345678") && !bytes.contains("19491231"));
    }
}

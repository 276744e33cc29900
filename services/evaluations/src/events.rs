//! What the evaluations service publishes, and how it applies what it consumes.
//!
//! Published (through the transactional outbox, in the transaction of the change):
//!
//! | routing key | message |
//! |---|---|
//! | `evaluations.round.opened.v1` | `EvaluationRoundChanged`: version 1, the roster |
//! | `evaluations.round.closed.v1` | `EvaluationRoundChanged`: version 2, every roster member's result |
//!
//! Consumed (each consumer with its own queue and inbox):
//!
//! | consumer | binding | applies |
//! |---|---|---|
//! | `evaluations.members-replica` | `members.#` | organizations and members into the replica (newer versions only) |
//! | `evaluations.standards` | `declarations.standard.published.v1` | the newest standard of each year (newer versions only) |
//! | `evaluations.final-grades` | `grading.member_grade.finalized.v1` | the members whose grade of a year is final (inserted once; a final grade never changes) |
//!
//! Invariants: every published event carries the round's whole state and version; no event
//! carries a code, a code hash, a ticket or anything about a single ballot.

use crate::domain::{MemberResult, Round, RoundStatus};
use crate::store;
use jifen_eventbus::{ConsumerSpec, EventHandler, HandleError, IncomingEvent, OutgoingEvent};
use jifen_platform::final_grades::{FinalGrade, MEMBER_GRADE_FINALIZED};
use jifen_proto::common::v1 as common;
use jifen_proto::events::v1 as ev;
use prost::Message as _;
use sea_orm::DatabaseTransaction;
use uuid::Uuid;

/// `ce-source` of every event of this service.
pub const SOURCE: &str = "evaluations";

pub const ROUND_OPENED: &str = "evaluations.round.opened.v1";
pub const ROUND_CLOSED: &str = "evaluations.round.closed.v1";

/// The routing key of a published standard.
pub const STANDARD_PUBLISHED: &str = "declarations.standard.published.v1";

/// Name of the consumer of `members.#` (its queue is `<prefix>evaluations.members-replica`).
pub const MEMBERS_REPLICA: &str = "evaluations.members-replica";
/// Name of the consumer of published standards.
pub const STANDARDS: &str = "evaluations.standards";
/// Name of the consumer of final grades.
pub const FINAL_GRADES: &str = "evaluations.final-grades";
/// Every consumer of this service (e.g. to remove a test's queues).
pub const CONSUMERS: [&str; 3] = [MEMBERS_REPLICA, STANDARDS, FINAL_GRADES];

/// The consumer of `members.#`.
pub fn members_replica_spec() -> ConsumerSpec {
    ConsumerSpec {
        name: MEMBERS_REPLICA.into(),
        bindings: vec!["members.#".into()],
    }
}

/// The consumer of published standards.
pub fn standards_spec() -> ConsumerSpec {
    ConsumerSpec {
        name: STANDARDS.into(),
        bindings: vec![STANDARD_PUBLISHED.into()],
    }
}

/// The consumer of final grades: `grading.member_grade.finalized.v1` only.
pub fn final_grades_spec() -> ConsumerSpec {
    ConsumerSpec {
        name: FINAL_GRADES.into(),
        bindings: vec![MEMBER_GRADE_FINALIZED.into()],
    }
}

fn rfc3339(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Everything a round event says.
pub struct RoundFacts<'a> {
    pub round: &'a Round,
    pub roster: &'a [Uuid],
    pub invited: i64,
    pub ballots: i64,
    pub results: &'a [MemberResult],
}

/// The event state of a round.
pub fn round_state(f: &RoundFacts<'_>) -> ev::EvaluationRoundState {
    let r = f.round;
    let s = r.settings.unwrap_or(crate::domain::ScoringSettings {
        min_ballots: 0,
        excellent: 0,
        good: 0,
        fair: 0,
        poor: 0,
    });
    ev::EvaluationRoundState {
        id: r.id.to_string(),
        org_id: r.org_id.to_string(),
        org_path: r.org_path.clone(),
        quarter: r.quarter.to_string(),
        status: match r.status {
            RoundStatus::Open => ev::EvaluationRoundStatus::Open,
            RoundStatus::Closed => ev::EvaluationRoundStatus::Closed,
        }
        .into(),
        opened_at: rfc3339(r.opened_at),
        closes_at: r.closes_at.map(rfc3339).unwrap_or_default(),
        closed_at: r.closed_at.map(rfc3339).unwrap_or_default(),
        roster: f.roster.iter().map(Uuid::to_string).collect(),
        invited: f.invited,
        ballots: f.ballots,
        min_ballots: i32::try_from(s.min_ballots).unwrap_or(i32::MAX),
        score_excellent: s.excellent,
        score_good: s.good,
        score_fair: s.fair,
        score_poor: s.poor,
        results: f
            .results
            .iter()
            .map(|m| ev::EvaluationMemberResult {
                member_id: m.member_id.to_string(),
                ballots: i32::try_from(m.ballots).unwrap_or(i32::MAX),
                score_total: m.score_total,
                score: m.score,
                poor_ballots: i32::try_from(m.poor_ballots).unwrap_or(i32::MAX),
                valid: m.valid,
            })
            .collect(),
        version: r.version,
    }
}

/// `EvaluationRoundChanged` under `routing_key`.
pub fn round_changed(routing_key: &str, facts: &RoundFacts<'_>) -> OutgoingEvent {
    let message = ev::EvaluationRoundChanged {
        round: Some(round_state(facts)),
    };
    OutgoingEvent {
        routing_key: routing_key.to_owned(),
        subject: facts.round.id.to_string(),
        payload: message.encode_to_vec(),
    }
}

/// Applies `members.*` events to the replica and published standards to `standards`.
pub struct ReplicaHandler;

fn permanent(what: impl std::fmt::Display) -> HandleError {
    HandleError::Permanent(what.to_string())
}

fn uuid(field: &str, text: &str) -> Result<Uuid, HandleError> {
    Uuid::parse_str(text).map_err(|_| permanent(format!("{field} is not a UUID: {text:?}")))
}

fn org_kind(n: i32) -> &'static str {
    match common::OrgKind::try_from(n) {
        Ok(common::OrgKind::Committee) => "committee",
        Ok(common::OrgKind::GeneralBranch) => "general_branch",
        Ok(common::OrgKind::Branch) => "branch",
        Ok(common::OrgKind::Group) => "group",
        _ => "unknown",
    }
}

fn member_status(n: i32) -> &'static str {
    match common::MemberStatus::try_from(n) {
        Ok(common::MemberStatus::Active) => "active",
        Ok(common::MemberStatus::TransferredOut) => "transferred_out",
        Ok(common::MemberStatus::Deceased) => "deceased",
        Ok(common::MemberStatus::Expelled) => "expelled",
        Ok(common::MemberStatus::Left) => "left",
        _ => "unknown",
    }
}

fn member_category(n: i32) -> &'static str {
    match common::MemberCategory::try_from(n) {
        Ok(common::MemberCategory::Full) => "full",
        Ok(common::MemberCategory::Probationary) => "probationary",
        _ => "unknown",
    }
}

#[async_trait::async_trait]
impl EventHandler for ReplicaHandler {
    async fn handle(
        &self,
        tx: &DatabaseTransaction,
        event: &IncomingEvent,
    ) -> Result<(), HandleError> {
        let key = event.routing_key.as_str();
        if key.starts_with("members.organization.") {
            let message = ev::OrganizationChanged::decode(event.payload.as_slice())
                .map_err(|e| permanent(format!("undecodable OrganizationChanged: {e}")))?;
            let o = message
                .organization
                .ok_or_else(|| permanent("OrganizationChanged without organization"))?;
            let row = store::replica::OrgRow {
                id: uuid("organization.id", &o.id)?,
                parent_id: if o.parent_id.is_empty() {
                    None
                } else {
                    Some(uuid("organization.parent_id", &o.parent_id)?)
                },
                name: o.name,
                kind: org_kind(o.kind).to_owned(),
                path: o.path,
                version: o.version,
            };
            store::replica::upsert_org(tx, &row).await?;
        } else if key.starts_with("members.member.") {
            let message = ev::MemberChanged::decode(event.payload.as_slice())
                .map_err(|e| permanent(format!("undecodable MemberChanged: {e}")))?;
            let m = message
                .member
                .ok_or_else(|| permanent("MemberChanged without member"))?;
            let row = store::replica::MemberRow {
                id: uuid("member.id", &m.id)?,
                org_id: uuid("member.org_id", &m.org_id)?,
                org_path: m.org_path,
                name: m.name,
                category: member_category(m.category).to_owned(),
                status: member_status(m.status).to_owned(),
                version: m.version,
            };
            store::replica::upsert_member(tx, &row).await?;
        } else if key == STANDARD_PUBLISHED {
            let message = ev::StandardPublished::decode(event.payload.as_slice())
                .map_err(|e| permanent(format!("undecodable StandardPublished: {e}")))?;
            let standard = jifen_standard::Standard::parse_json(&message.document_json).map_err(
                |problems| {
                    permanent(format!(
                        "standard {} v{} is invalid: {} problem(s), first: {:?}",
                        message.year,
                        message.version,
                        problems.len(),
                        problems.first()
                    ))
                },
            )?;
            if standard.year() != message.year {
                return Err(permanent(format!(
                    "standard document of {} published as {}",
                    standard.year(),
                    message.year
                )));
            }
            let row = store::standards::StandardRow {
                year: message.year,
                version: message.version,
                document: message.document_json,
            };
            if store::standards::upsert(tx, &row).await? {
                tracing::info!(year = row.year, version = row.version, "standard replaced");
            }
        }
        // Other events under the bindings (none today) are not this service's concern.
        Ok(())
    }
}

/// Keeps `final_grades` from `grading.member_grade.finalized.v1`: a branch with a final grade of
/// a year opens no more rounds of that year (docs/decisions/0006-final-years-evaluations.md).
pub struct FinalGrades;

#[async_trait::async_trait]
impl EventHandler for FinalGrades {
    async fn handle(
        &self,
        tx: &DatabaseTransaction,
        event: &IncomingEvent,
    ) -> Result<(), HandleError> {
        if event.routing_key != MEMBER_GRADE_FINALIZED {
            return Ok(());
        }
        let grade = FinalGrade::decode(&event.payload).map_err(HandleError::Permanent)?;
        store::final_grades::insert(tx, &grade).await?;
        Ok(())
    }
}

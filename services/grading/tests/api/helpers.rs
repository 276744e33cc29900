//! Test harness: the grading service in-process on a fresh database, fed by a **source** — a
//! scratch database with an outbox whose relay publishes the events a test stages, exactly as
//! the members, declarations and evaluations services publish theirs — and a generator of a
//! year of a city's events.
#![allow(dead_code)]

use jifen_eventbus::{BusConfig, OutgoingEvent, Relay};
use jifen_platform::clock::Clock;
use jifen_proto::common::v1 as common;
use jifen_proto::events::v1 as ev;
use prost::Message as _;
use rand::{Rng as _, SeedableRng as _};
use sea_orm::{
    ConnectionTrait as _, DatabaseConnection, DbBackend, Statement, TransactionTrait as _,
};
use sea_orm_migration::MigratorTrait as _;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub fn init_telemetry() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = jifen_platform::telemetry::init("jifen-grading-tests", None);
    });
}

/// A running grading service and the source that feeds it.
pub struct Instance {
    pub grading: jifen_grading::usecases::Grading,
    pub db: DatabaseConnection,
    pub source: DatabaseConnection,
    pub clock: Clock,
    /// The PostgreSQL server's URL and the grading database's name, for a `jifen-grading`
    /// process (`JIFEN_DATABASE_URL`, `JIFEN_GRADING_DATABASE`).
    pub server_url: String,
    pub database: String,
    cancel: CancellationToken,
}

impl Drop for Instance {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

struct SourceMigrator;

impl sea_orm_migration::MigratorTrait for SourceMigrator {
    fn migrations() -> Vec<Box<dyn sea_orm_migration::MigrationTrait>> {
        jifen_eventbus::migration::all()
    }
}

/// January 2027 in Shanghai: the year 2026 is over, every month of it is graded.
pub const AFTER_2026: &str = "2027-01-15T02:00:00Z";

pub async fn spawn(label: &str) -> Instance {
    init_telemetry();
    let keys = tempfile_keys();
    let db = jifen_testkit::fresh_database(label).await.unwrap();
    let source_db = jifen_testkit::fresh_database(&format!("{label}src"))
        .await
        .unwrap();
    let bus =
        BusConfig::new(jifen_testkit::amqp_url()).with_prefix(&jifen_testkit::unique_prefix(label));
    let clock = Clock::manual(AFTER_2026.parse().unwrap());
    let mut settings = jifen_grading::Settings::for_tests(
        db.server_url.clone(),
        db.name.clone(),
        bus.clone(),
        keys,
    );
    settings.clock = clock.clone();
    let app = jifen_grading::Application::build(settings).await.unwrap();
    let grading = app.grading();
    let grading_db = app.db().clone();
    let source = jifen_platform::db::connect(
        &jifen_platform::db::database_url(&source_db.server_url, &source_db.name),
        4,
    )
    .await
    .unwrap();
    SourceMigrator::up(&source, None).await.unwrap();
    let cancel = CancellationToken::new();
    tokio::spawn({
        let cancel = cancel.clone();
        async move {
            if let Err(e) = app.run_until_stopped(cancel).await {
                eprintln!("grading service stopped: {e:#}");
            }
        }
    });
    tokio::spawn({
        let cancel = cancel.clone();
        let relay = Relay::new(source.clone(), bus, "test-source");
        async move {
            let _ = relay.run(cancel).await;
        }
    });
    Instance {
        grading,
        db: grading_db,
        source,
        clock,
        server_url: db.server_url.clone(),
        database: db.name.clone(),
        cancel,
    }
}

fn tempfile_keys() -> jifen_platform::auth::TokenVerifier {
    let (_, public) = jifen_platform::auth::generate_key_pair().unwrap();
    jifen_platform::auth::TokenVerifier::from_pems([("test", public.as_str())]).unwrap()
}

impl Instance {
    /// Stages `events` in the source's outbox, in this order (its relay publishes them).
    pub async fn publish(&self, events: &[OutgoingEvent]) {
        for chunk in events.chunks(200) {
            let txn = self.source.begin().await.unwrap();
            for e in chunk {
                jifen_eventbus::stage(&txn, "test-source", e.clone())
                    .await
                    .unwrap();
            }
            txn.commit().await.unwrap();
        }
    }

    /// Waits until the service has processed `n` events.
    pub async fn wait_processed(&self, n: i64) {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let done = count(&self.db, "SELECT count(*) AS n FROM inbox").await;
            if done >= n {
                assert_eq!(done, n, "more events processed than published");
                return;
            }
            assert!(
                Instant::now() < deadline,
                "only {done} of {n} events processed"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

pub async fn count(db: &DatabaseConnection, sql: &str) -> i64 {
    db.query_one_raw(Statement::from_string(DbBackend::Postgres, sql))
        .await
        .unwrap()
        .and_then(|r| r.try_get::<i64>("", "n").ok())
        .unwrap_or(0)
}

/// The branch `id` moved under another committee (out of its city's subtree), as the members
/// service publishes an organization's new state.
pub fn branch_moved_away(id: Uuid, version: i64) -> OutgoingEvent {
    let elsewhere = Uuid::now_v7();
    event(
        "members.organization.moved.v1",
        id.to_string(),
        ev::OrganizationChanged {
            organization: Some(ev::OrganizationState {
                id: id.to_string(),
                parent_id: elsewhere.to_string(),
                name: format!("组织{}", &id.to_string()[..8]),
                kind: common::OrgKind::Branch.into(),
                unit_type: common::UnitType::Rural.into(),
                path: format!("/{elsewhere}/{id}/"),
                version,
            }),
        }
        .encode_to_vec(),
    )
}

fn event(routing_key: &str, subject: String, payload: Vec<u8>) -> OutgoingEvent {
    OutgoingEvent {
        routing_key: routing_key.into(),
        subject,
        payload,
    }
}

/// A city's year as the source services would publish it: organizations, members (some
/// probationary, one exempt, sanctions), the standard, declarations going through several
/// versions (submitted, approved with adjustments, returned and approved again, rejected),
/// branch records (some revoked, deductions, an X11 and a veto) and four quarters of closed
/// evaluation rounds. Deterministic for a seed.
pub struct City {
    pub root: Uuid,
    pub branches: Vec<Uuid>,
    pub members: Vec<Uuid>,
    /// Every event, each aggregate's versions in order.
    pub events: Vec<OutgoingEvent>,
}

pub fn city(seed: u64, branches: usize, members_per_branch: usize) -> City {
    city_or_more(seed, None, branches, members_per_branch)
}

/// More branches, with their members' year, under the root of a city already published (no
/// root organization and no standard in its events).
pub fn more_branches(seed: u64, root: Uuid, branches: usize, members_per_branch: usize) -> City {
    city_or_more(seed, Some(root), branches, members_per_branch)
}

fn city_or_more(
    seed: u64,
    existing_root: Option<Uuid>,
    branches: usize,
    members_per_branch: usize,
) -> City {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut events = Vec::new();
    let root = existing_root.unwrap_or_else(Uuid::now_v7);
    let root_path = format!("/{root}/");
    let org = |id: Uuid,
               parent: Option<Uuid>,
               kind: common::OrgKind,
               unit: common::UnitType,
               path: &str| {
        event(
            "members.organization.created.v1",
            id.to_string(),
            ev::OrganizationChanged {
                organization: Some(ev::OrganizationState {
                    id: id.to_string(),
                    parent_id: parent.map(|p| p.to_string()).unwrap_or_default(),
                    name: format!("组织{}", &id.to_string()[..8]),
                    kind: kind.into(),
                    unit_type: unit.into(),
                    path: path.to_owned(),
                    version: 1,
                }),
            }
            .encode_to_vec(),
        )
    };
    if existing_root.is_none() {
        events.push(org(
            root,
            None,
            common::OrgKind::Committee,
            common::UnitType::Other,
            &root_path,
        ));
        events.push(event(
            "declarations.standard.published.v1",
            "2026".into(),
            ev::StandardPublished {
                year: 2026,
                document_json: jifen_standard::default_2026()
                    .unwrap()
                    .to_json_value()
                    .unwrap()
                    .to_string(),
                version: 1,
                published_by: "test".into(),
                published_at: "2026-01-01T00:00:00Z".into(),
            }
            .encode_to_vec(),
        ));
    }
    let mut branch_ids = Vec::new();
    let mut member_ids = Vec::new();
    let member_items = [
        "P02", "P03", "P04", "F01", "F02", "F03", "B01", "B06", "D02",
    ];
    let branch_items = ["P01", "O01", "O02", "D01", "X01", "X12", "X02"];
    for b in 0..branches {
        let branch = Uuid::now_v7();
        let path = format!("{root_path}{branch}/");
        let unit = if b % 2 == 0 {
            common::UnitType::StateEnterprise
        } else {
            common::UnitType::Rural
        };
        events.push(org(
            branch,
            Some(root),
            common::OrgKind::Branch,
            unit,
            &path,
        ));
        branch_ids.push(branch);
        let mut roster = Vec::new();
        for m in 0..members_per_branch {
            let member = Uuid::now_v7();
            roster.push(member);
            member_ids.push(member);
            let mut sanctions = Vec::new();
            if m == 1 {
                sanctions.push(ev::SanctionState {
                    id: Uuid::now_v7().to_string(),
                    kind: common::SanctionKind::Warning.into(),
                    decided_on: "2026-05-10".into(),
                    reason: "test".into(),
                });
            }
            let state = |version: i64, sanctions: Vec<ev::SanctionState>| ev::MemberChanged {
                member: Some(ev::MemberState {
                    id: member.to_string(),
                    org_id: branch.to_string(),
                    org_path: path.clone(),
                    name: format!("党员{m}"),
                    category: if m % 4 == 3 {
                        common::MemberCategory::Probationary
                    } else {
                        common::MemberCategory::Full
                    }
                    .into(),
                    status: common::MemberStatus::Active.into(),
                    joined_on: "2010-07-01".into(),
                    flags: if m == 2 {
                        vec![common::MemberFlag::Exempt.into()]
                    } else {
                        Vec::new()
                    },
                    sanctions,
                    version,
                }),
                transfer: None,
            };
            events.push(event(
                "members.member.created.v1",
                member.to_string(),
                state(1, Vec::new()).encode_to_vec(),
            ));
            if !sanctions.is_empty() {
                events.push(event(
                    "members.member.sanctioned.v1",
                    member.to_string(),
                    state(2, sanctions).encode_to_vec(),
                ));
            }
            for month in 1..=12u32 {
                // A declaration: submitted, then approved (sometimes lowered), sometimes
                // returned and approved again, sometimes rejected.
                let id = Uuid::now_v7();
                let lines: Vec<ev::DeclarationLineState> = (0..rng.gen_range(1..=3))
                    .map(|_| {
                        let item = member_items[rng.gen_range(0..member_items.len())];
                        let claimed = 10 * rng.gen_range(1..=3);
                        ev::DeclarationLineState {
                            line_id: Uuid::now_v7().to_string(),
                            item_code: item.into(),
                            quantity: 1,
                            claimed_points: claimed,
                            approved_points: None,
                            ..Default::default()
                        }
                    })
                    .collect();
                let declaration =
                    |version: i64,
                     status: ev::DeclarationStatus,
                     lines: Vec<ev::DeclarationLineState>| {
                        ev::DeclarationChanged {
                            declaration: Some(ev::DeclarationState {
                                id: id.to_string(),
                                member_id: member.to_string(),
                                org_id: branch.to_string(),
                                org_path: path.clone(),
                                month: format!("2026-{month:02}"),
                                status: status.into(),
                                lines,
                                version,
                                ..Default::default()
                            }),
                        }
                        .encode_to_vec()
                    };
                let approve = |lines: &[ev::DeclarationLineState],
                               lower: bool|
                 -> Vec<ev::DeclarationLineState> {
                    lines
                        .iter()
                        .map(|l| ev::DeclarationLineState {
                            approved_points: Some(if lower {
                                l.claimed_points / 2
                            } else {
                                l.claimed_points
                            }),
                            ..l.clone()
                        })
                        .collect()
                };
                events.push(event(
                    "declarations.declaration.submitted.v1",
                    id.to_string(),
                    declaration(1, ev::DeclarationStatus::Submitted, lines.clone()),
                ));
                match rng.gen_range(0..10) {
                    0 => events.push(event(
                        "declarations.declaration.rejected.v1",
                        id.to_string(),
                        declaration(2, ev::DeclarationStatus::Rejected, lines.clone()),
                    )),
                    1 => {
                        events.push(event(
                            "declarations.declaration.approved.v1",
                            id.to_string(),
                            declaration(2, ev::DeclarationStatus::Approved, approve(&lines, false)),
                        ));
                        events.push(event(
                            "declarations.declaration.returned.v1",
                            id.to_string(),
                            declaration(3, ev::DeclarationStatus::Returned, lines.clone()),
                        ));
                        events.push(event(
                            "declarations.declaration.approved.v1",
                            id.to_string(),
                            declaration(4, ev::DeclarationStatus::Approved, approve(&lines, true)),
                        ));
                    }
                    _ => events.push(event(
                        "declarations.declaration.approved.v1",
                        id.to_string(),
                        declaration(
                            2,
                            ev::DeclarationStatus::Approved,
                            approve(&lines, rng.gen_range(0..4) == 0),
                        ),
                    )),
                }
                // Branch records of the month, one of them sometimes revoked.
                for k in 0..rng.gen_range(1..=3) {
                    let item = branch_items[rng.gen_range(0..branch_items.len())];
                    let standard = jifen_standard::default_2026().unwrap();
                    let points = standard
                        .items()
                        .iter()
                        .find(|i| i.code == item)
                        .unwrap()
                        .points
                        .tenths();
                    let id = Uuid::now_v7();
                    let record = |version: i64, revoked: bool, item: &str, points: i32| {
                        ev::BranchRecordChanged {
                            record: Some(ev::BranchRecordState {
                                id: id.to_string(),
                                member_id: member.to_string(),
                                org_id: branch.to_string(),
                                org_path: path.clone(),
                                month: format!("2026-{month:02}"),
                                item_code: item.into(),
                                quantity: 1,
                                points,
                                revoked,
                                version,
                                ..Default::default()
                            }),
                        }
                        .encode_to_vec()
                    };
                    events.push(event(
                        "declarations.branch_record.recorded.v1",
                        id.to_string(),
                        record(1, false, item, points),
                    ));
                    if k == 1 && rng.gen_range(0..3) == 0 {
                        events.push(event(
                            "declarations.branch_record.revoked.v1",
                            id.to_string(),
                            record(2, true, item, points),
                        ));
                    }
                }
                // An X11 for member 4 and a veto for member 5 of each branch.
                if month == 6 && (m == 4 || m == 5) {
                    let (item, points) = if m == 4 { ("X11", -200) } else { ("V02", 0) };
                    let id = Uuid::now_v7();
                    events.push(event(
                        "declarations.branch_record.recorded.v1",
                        id.to_string(),
                        ev::BranchRecordChanged {
                            record: Some(ev::BranchRecordState {
                                id: id.to_string(),
                                member_id: member.to_string(),
                                org_id: branch.to_string(),
                                org_path: path.clone(),
                                month: "2026-06".into(),
                                item_code: item.into(),
                                quantity: 1,
                                points,
                                version: 1,
                                ..Default::default()
                            }),
                        }
                        .encode_to_vec(),
                    ));
                }
            }
        }
        // Four closed rounds; the second quarter has too few ballots for everyone.
        for q in 1..=4 {
            let round = Uuid::now_v7();
            let results: Vec<ev::EvaluationMemberResult> = roster
                .iter()
                .map(|m| {
                    let ballots = if q == 2 { 3 } else { rng.gen_range(5..=12) };
                    let poor = rng.gen_range(0..=ballots / 2);
                    let score_total: i64 = (0..ballots)
                        .map(|i| {
                            if i < poor {
                                0
                            } else {
                                1000 - 200 * rng.gen_range(0..3)
                            }
                        })
                        .sum();
                    ev::EvaluationMemberResult {
                        member_id: m.to_string(),
                        ballots,
                        score_total,
                        score: Some(
                            i32::try_from(
                                (2 * score_total + i64::from(ballots)) / (2 * i64::from(ballots)),
                            )
                            .unwrap(),
                        ),
                        poor_ballots: poor,
                        valid: ballots >= 5,
                    }
                })
                .collect();
            let state = |version: i64, closed: bool| {
                ev::EvaluationRoundChanged {
                    round: Some(ev::EvaluationRoundState {
                        id: round.to_string(),
                        org_id: branch.to_string(),
                        org_path: path.clone(),
                        quarter: format!("2026-Q{q}"),
                        status: if closed {
                            ev::EvaluationRoundStatus::Closed
                        } else {
                            ev::EvaluationRoundStatus::Open
                        }
                        .into(),
                        opened_at: "2026-01-01T00:00:00Z".into(),
                        closed_at: if closed {
                            format!("2026-{:02}-28T00:00:00Z", q * 3)
                        } else {
                            String::new()
                        },
                        roster: roster.iter().map(Uuid::to_string).collect(),
                        results: if closed { results.clone() } else { Vec::new() },
                        version,
                        ..Default::default()
                    }),
                }
                .encode_to_vec()
            };
            events.push(event(
                "evaluations.round.opened.v1",
                round.to_string(),
                state(1, false),
            ));
            events.push(event(
                "evaluations.round.closed.v1",
                round.to_string(),
                state(2, true),
            ));
        }
    }
    City {
        root,
        branches: branch_ids,
        members: member_ids,
        events,
    }
}

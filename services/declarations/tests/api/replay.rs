//! Replaying every declarations event into an empty consumer gives, per member and month, the
//! same approved totals as SQL on the declarations database — whether the events arrive live
//! through RabbitMQ or are replayed from the outbox shuffled and twice over.

use crate::helpers::*;
use jifen_eventbus::{Consumer, ConsumerSpec, EventHandler, HandleError, IncomingEvent};
use jifen_platform::auth::RoleName;
use jifen_proto::declarations::v1 as dpb;
use jifen_proto::events::v1 as ev;
use prost::Message as _;
use rand::seq::SliceRandom as _;
use sea_orm::{
    ConnectionTrait as _, DatabaseConnection, DatabaseTransaction, DbBackend, Statement,
    TransactionTrait as _,
};
use sea_orm_migration::prelude::*;
use std::collections::BTreeMap;
use std::sync::Arc;

struct ProjectionMigrator;

impl MigratorTrait for ProjectionMigrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        jifen_eventbus::migration::all()
    }
}

/// A consumer that knows nothing but the events: keeps each declaration's and each branch
/// record's newest state (by version), as the grading service will.
struct Projection;

#[async_trait::async_trait]
impl EventHandler for Projection {
    async fn handle(
        &self,
        tx: &DatabaseTransaction,
        event: &IncomingEvent,
    ) -> Result<(), HandleError> {
        let db = |e: sea_orm::DbErr| HandleError::Transient(e.into());
        if event.routing_key.starts_with("declarations.declaration.") {
            let d = ev::DeclarationChanged::decode(event.payload.as_slice())
                .map_err(|e| HandleError::Permanent(e.to_string()))?
                .declaration
                .ok_or_else(|| HandleError::Permanent("no declaration".into()))?;
            tx.execute_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "INSERT INTO decl_proj (id, member_id, month, status, approved_total, version) VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (id) DO UPDATE SET status = EXCLUDED.status, approved_total = EXCLUDED.approved_total,
                     version = EXCLUDED.version WHERE decl_proj.version < EXCLUDED.version",
                [
                    d.id.clone().into(),
                    d.member_id.clone().into(),
                    d.month.clone().into(),
                    d.status.into(),
                    d.approved_total.into(),
                    d.version.into(),
                ],
            ))
            .await
            .map_err(db)?;
        } else if event.routing_key.starts_with("declarations.branch_record.") {
            let r = ev::BranchRecordChanged::decode(event.payload.as_slice())
                .map_err(|e| HandleError::Permanent(e.to_string()))?
                .record
                .ok_or_else(|| HandleError::Permanent("no record".into()))?;
            tx.execute_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "INSERT INTO record_proj (id, member_id, month, points, revoked, version) VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (id) DO UPDATE SET revoked = EXCLUDED.revoked, version = EXCLUDED.version
                 WHERE record_proj.version < EXCLUDED.version",
                [r.id.into(), r.member_id.into(), r.month.into(), r.points.into(), r.revoked.into(), r.version.into()],
            ))
            .await
            .map_err(db)?;
        }
        Ok(())
    }
}

async fn projection_db(label: &str) -> (jifen_testkit::TestDatabase, DatabaseConnection) {
    let tdb = jifen_testkit::fresh_database(label).await.unwrap();
    let db = jifen_platform::db::connect(&tdb.url, 4).await.unwrap();
    ProjectionMigrator::up(&db, None).await.unwrap();
    db.execute_unprepared(
        "CREATE TABLE decl_proj (id text PRIMARY KEY, member_id text, month text, status int, approved_total int, version bigint);
         CREATE TABLE record_proj (id text PRIMARY KEY, member_id text, month text, points int, revoked bool, version bigint);",
    )
    .await
    .unwrap();
    (tdb, db)
}

type Totals = BTreeMap<(String, String), i64>;

async fn totals(db: &DatabaseConnection, sql: &str) -> Totals {
    db.query_all_raw(Statement::from_string(DbBackend::Postgres, sql))
        .await
        .unwrap()
        .into_iter()
        .map(|r| {
            let member: String = r.try_get_by_index(0).unwrap();
            let month: String = r.try_get_by_index(1).unwrap();
            let points: i64 = r.try_get_by_index(2).unwrap();
            ((member, month), points)
        })
        .collect()
}

/// Approved points per member and month, straight from the declarations database.
const SOURCE_TOTALS: &str = "SELECT member_id::text, month, sum(points)::bigint FROM (
        SELECT member_id, month, approved_total AS points FROM declarations WHERE status = 'approved'
        UNION ALL SELECT member_id, month, points FROM branch_records WHERE revoked_at IS NULL) t
    GROUP BY 1, 2 ORDER BY 1, 2";

/// The same, from a projection fed only by events (status 3 = approved).
const PROJECTED_TOTALS: &str = "SELECT member_id, month, sum(points)::bigint FROM (
        SELECT member_id, month, approved_total AS points FROM decl_proj WHERE status = 3
        UNION ALL SELECT member_id, month, points FROM record_proj WHERE NOT revoked) t
    GROUP BY 1, 2 ORDER BY 1, 2";

#[tokio::test(flavor = "multi_thread")]
async fn replayed_events_give_the_same_approved_totals_as_the_database() {
    let c = spawn().await;
    // A live consumer of every declarations event, bound before anything happens.
    let (_live_db_guard, live_db) = projection_db("decl_live_proj").await;
    let live = Consumer::new(
        live_db.clone(),
        c.bus.clone(),
        ConsumerSpec {
            name: "test.declarations-projection".into(),
            bindings: vec!["declarations.#".into()],
        },
        Arc::new(Projection),
    );
    live.declare().await.unwrap();
    tokio::spawn(live.run(c.cancel.clone()));

    let branch = c.branch("回放支部").await;
    let mut people = Vec::new();
    for name in ["甲", "乙", "丙", "丁"] {
        people.push(c.member(&branch, name).await);
    }
    c.replicated(&people.iter().map(|m| m.id.as_str()).collect::<Vec<_>>())
        .await;
    let secretary = c.role_token(RoleName::Secretary, &branch);
    let mut sec = c.decl(&secretary).await;

    // Evidence for F02 (volunteering).
    let mut m1 = c.decl(&c.member_token(&people[0])).await;
    let reference = m1
        .upload_evidence(dpb::UploadEvidenceRequest {
            content_type: "image/png".into(),
            file_name: "a.png".into(),
            data: png(1),
        })
        .await
        .unwrap()
        .into_inner()
        .reference;

    async fn declare(
        client: &mut Decl,
        member: &str,
        month: &str,
        lines: Vec<dpb::LineInput>,
    ) -> String {
        let saved = client
            .save_declaration(dpb::SaveDeclarationRequest {
                member_id: member.into(),
                month: month.into(),
                lines,
            })
            .await
            .unwrap()
            .into_inner();
        client
            .submit_declaration(dpb::SubmitDeclarationRequest {
                id: saved.id.clone(),
            })
            .await
            .unwrap();
        saved.id
    }
    let review = |id: &str,
                  decision: dpb::ReviewDecision,
                  lines: Vec<dpb::LineAdjustment>,
                  comment: &str| dpb::ReviewDeclarationRequest {
        id: id.into(),
        decision: decision.into(),
        lines,
        comment: comment.into(),
    };

    // 甲: approved as claimed (F01 1 + F02 2×2 = 5 points).
    let d1 = declare(
        &mut m1,
        &people[0].id,
        "2026-11",
        vec![line("F01", 1, &[]), line("F02", 2, &[&reference])],
    )
    .await;
    sec.review_declaration(review(&d1, dpb::ReviewDecision::Approve, vec![], ""))
        .await
        .unwrap();
    // 乙: approved with F04 lowered to 0 with a reason.
    let mut m2 = c.decl(&c.member_token(&people[1])).await;
    let d2 = declare(
        &mut m2,
        &people[1].id,
        "2026-11",
        vec![line("F01", 1, &[]), line("F04", 1, &[])],
    )
    .await;
    let d2_view = m2
        .get_declaration(dpb::GetDeclarationRequest {
            member_id: people[1].id.clone(),
            month: "2026-11".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let f04 = d2_view
        .lines
        .iter()
        .find(|l| l.item_code == "F04")
        .unwrap()
        .line_id
        .clone();
    sec.review_declaration(review(
        &d2,
        dpb::ReviewDecision::Approve,
        vec![dpb::LineAdjustment {
            line_id: f04,
            approved_points: 0,
            reason: "未见示范岗记录".into(),
        }],
        "",
    ))
    .await
    .unwrap();
    // 丙: rejected.
    let mut m3 = c.decl(&c.member_token(&people[2])).await;
    let d3 = declare(&mut m3, &people[2].id, "2026-11", vec![line("F01", 1, &[])]).await;
    sec.review_declaration(review(
        &d3,
        dpb::ReviewDecision::Reject,
        vec![],
        "与实际不符",
    ))
    .await
    .unwrap();
    // 丁: returned, corrected, approved (a newer version replaces the first).
    let mut m4 = c.decl(&c.member_token(&people[3])).await;
    let d4 = declare(&mut m4, &people[3].id, "2026-11", vec![line("F01", 1, &[])]).await;
    sec.review_declaration(review(
        &d4,
        dpb::ReviewDecision::Return,
        vec![],
        "请补充岗位履职内容",
    ))
    .await
    .unwrap();
    let d4b = declare(
        &mut m4,
        &people[3].id,
        "2026-11",
        vec![line("F01", 1, &[]), line("F04", 1, &[])],
    )
    .await;
    assert_eq!(
        d4, d4b,
        "a correction is a new version of the same declaration"
    );
    sec.review_declaration(review(&d4, dpb::ReviewDecision::Approve, vec![], ""))
        .await
        .unwrap();

    // Branch records: P01 twice for 甲 and 乙, a deduction for 丙, O01 for 丁 then revoked.
    let entry = |m: &str, code: &str, quantity: i32| dpb::BranchEntry {
        member_id: m.into(),
        item_code: code.into(),
        quantity,
        note: String::new(),
    };
    sec.record_branch_entries(dpb::RecordBranchEntriesRequest {
        org_id: branch.id.clone(),
        month: "2026-11".into(),
        entries: vec![
            entry(&people[0].id, "P01", 2),
            entry(&people[1].id, "P01", 2),
            entry(&people[2].id, "X01", 1),
        ],
    })
    .await
    .unwrap();
    let o01 = sec
        .record_branch_entries(dpb::RecordBranchEntriesRequest {
            org_id: branch.id.clone(),
            month: "2026-11".into(),
            entries: vec![entry(&people[3].id, "O01", 1)],
        })
        .await
        .unwrap()
        .into_inner()
        .records
        .remove(0);
    sec.revoke_branch_record(dpb::RevokeBranchRecordRequest {
        id: o01.id,
        reason: "记录错误".into(),
    })
    .await
    .unwrap();

    // October is closed; the branch reopens it and 甲 declares late (补报).
    let until = (c.clock.now() + chrono::Duration::days(2)).to_rfc3339();
    sec.reopen_period(dpb::ReopenPeriodRequest {
        org_id: branch.id.clone(),
        month: "2026-10".into(),
        until,
        reason: "出差补报".into(),
    })
    .await
    .unwrap();
    let late = declare(&mut m1, &people[0].id, "2026-10", vec![line("F01", 1, &[])]).await;
    sec.review_declaration(review(&late, dpb::ReviewDecision::Approve, vec![], ""))
        .await
        .unwrap();

    let expected = totals(&c.decl_db, SOURCE_TOTALS).await;
    // The figures a person would check by hand, in deci-points.
    let key = |m: &MemberPb, month: &str| (m.id.clone(), month.to_owned());
    type MemberPb = jifen_proto::members::v1::Member;
    assert_eq!(
        expected[&key(&people[0], "2026-11")],
        10 + 40 + 40,
        "甲: F01 1 + F02 4 + P01 4"
    );
    assert_eq!(
        expected[&key(&people[1], "2026-11")],
        10 + 40,
        "乙: F01 1 (F04 lowered to 0) + P01 4"
    );
    assert_eq!(
        expected[&key(&people[2], "2026-11")],
        -30,
        "丙: rejected declaration, X01 −3"
    );
    assert_eq!(
        expected[&key(&people[3], "2026-11")],
        20,
        "丁: corrected F01 + F04, O01 revoked"
    );
    assert_eq!(
        expected[&key(&people[0], "2026-10")],
        10,
        "甲's late October declaration"
    );

    // Live: every staged event reaches the consumer once, and the projection agrees.
    let staged = count(
        &c.decl_db,
        "SELECT count(*) FROM outbox WHERE routing_key LIKE 'declarations.%'",
        vec![],
    )
    .await;
    eventually("the live projection to receive every event", || async {
        (count(&live_db, "SELECT count(*) FROM inbox", vec![]).await == staged).then_some(())
    })
    .await;
    assert_eq!(totals(&live_db, PROJECTED_TOTALS).await, expected);

    // Replay: every outbox event, shuffled, twice over, into another empty projection.
    let (_replay_guard, replay_db) = projection_db("decl_replay_proj").await;
    let rows = c
        .decl_db
        .query_all_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT id, routing_key, payload FROM outbox WHERE routing_key LIKE 'declarations.%'",
        ))
        .await
        .unwrap();
    let mut events: Vec<IncomingEvent> = rows
        .iter()
        .map(|r| IncomingEvent {
            id: r.try_get("", "id").unwrap(),
            routing_key: r.try_get("", "routing_key").unwrap(),
            subject: String::new(),
            source: "declarations".into(),
            payload: r.try_get("", "payload").unwrap(),
            traceparent: None,
        })
        .collect();
    let copy = events.clone();
    events.extend(copy);
    events.shuffle(&mut rand::thread_rng());
    for event in &events {
        let txn = replay_db.begin().await.unwrap();
        Projection.handle(&txn, event).await.unwrap();
        txn.commit().await.unwrap();
    }
    assert_eq!(totals(&replay_db, PROJECTED_TOTALS).await, expected);
}

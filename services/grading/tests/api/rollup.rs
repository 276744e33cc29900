//! The dashboard's rollup (docs/decisions/0018-dashboard-rollup.md) against the statements it
//! replaced: a member transferred between branches takes their figures along, a member who
//! leaves takes them out, events delivered again or out of order count nothing twice, and the
//! rollup rebuilt from scratch (the migration's backfill) equals the one kept event by event.

use crate::helpers::*;
use jifen_eventbus::OutgoingEvent;
use jifen_grading::store::dashboard;
use jifen_platform::auth::{Principal, RoleClaim, RoleName};
use jifen_proto::common::v1 as common;
use jifen_proto::events::v1 as ev;
use prost::Message as _;
use sea_orm::{ConnectionTrait, DbBackend, Statement, TransactionTrait as _};
use uuid::Uuid;

fn admin(root: Uuid) -> Principal {
    Principal {
        subject: "rollup-admin".into(),
        username: None,
        member_id: None,
        roles: vec![RoleClaim {
            role: RoleName::Admin,
            org_id: root,
            org_path: format!("/{root}/"),
        }],
        round_id: None,
    }
}

/// A member's new state as the members service publishes it.
fn member_changed(
    member: Uuid,
    org: Uuid,
    path: &str,
    status: common::MemberStatus,
    version: i64,
) -> OutgoingEvent {
    OutgoingEvent {
        routing_key: "members.member.transferred.v1".into(),
        subject: member.to_string(),
        payload: ev::MemberChanged {
            member: Some(ev::MemberState {
                id: member.to_string(),
                org_id: org.to_string(),
                org_path: path.to_owned(),
                name: "调动的党员".into(),
                category: common::MemberCategory::Full.into(),
                status: status.into(),
                joined_on: "2010-07-01".into(),
                version,
                ..Default::default()
            }),
            transfer: None,
        }
        .encode_to_vec(),
    }
}

/// (child, members, declared, points) of a subtree's month, by the statement the dashboard
/// ran before the rollup (0008): straight from `members`, `declaration_months` and
/// `ledger_entries`.
async fn from_the_source(
    db: &impl ConnectionTrait,
    path: &str,
    month: u32,
) -> Vec<(Option<Uuid>, i64, i64, i64)> {
    let sql = format!(
        "SELECT CAST(nullif(substr(m.org_path, {}, 36), '') AS uuid) AS child, \
         count(*) AS members, count(d.member_id) AS declared, \
         CAST(coalesce(sum(p.points), 0) AS bigint) AS points \
         FROM members m \
         LEFT JOIN (SELECT DISTINCT member_id FROM declaration_months \
           WHERE year = 2026 AND month = {month} AND submitted) d ON d.member_id = m.id \
         LEFT JOIN (SELECT member_id, sum(points) AS points FROM ledger_entries \
           WHERE year = 2026 AND month = {month} GROUP BY member_id) p ON p.member_id = m.id \
         WHERE m.org_path LIKE '{path}%' AND m.status = 'active' GROUP BY 1 ORDER BY 1",
        path.len() + 1
    );
    db.query_all_raw(Statement::from_string(DbBackend::Postgres, sql))
        .await
        .unwrap()
        .into_iter()
        .map(|r| {
            (
                r.try_get("", "child").unwrap(),
                r.try_get("", "members").unwrap(),
                r.try_get("", "declared").unwrap(),
                r.try_get("", "points").unwrap(),
            )
        })
        .collect()
}

/// Every month of 2026 of the subtree of `path`: the rollup's figures by child equal the
/// source's.
async fn assert_rollup_is_the_source(db: &impl ConnectionTrait, path: &str) {
    for month in 1..=12 {
        let mut rolled: Vec<_> = dashboard::figures_by_child(db, path, 2026, month)
            .await
            .unwrap()
            .into_iter()
            .filter(|g| g.members > 0)
            .map(|g| (g.child, g.members, g.declared, g.points))
            .collect();
        rolled.sort();
        assert_eq!(
            rolled,
            from_the_source(db, path, month).await,
            "2026-{month:02}"
        );
    }
}

/// The three tables of the rollup, row by row, in order.
async fn rollup_rows(db: &impl ConnectionTrait) -> Vec<String> {
    let sql = "SELECT 'mm|' || concat_ws('|', member_id, year, month, declared, points) AS r \
               FROM dashboard_member_months \
               UNION ALL SELECT 'om|' || concat_ws('|', org_path, year, month, declared, points) \
               FROM dashboard_org_months \
               UNION ALL SELECT 'm|' || concat_ws('|', org_path, members) \
               FROM dashboard_org_members ORDER BY 1";
    db.query_all_raw(Statement::from_string(DbBackend::Postgres, sql))
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.try_get("", "r").unwrap())
        .collect()
}

async fn month_points(db: &impl ConnectionTrait, member: Uuid, month: u32) -> i64 {
    let sql = format!(
        "SELECT CAST(coalesce(sum(points), 0) AS bigint) AS n FROM ledger_entries \
         WHERE member_id = '{member}' AND year = 2026 AND month = {month}"
    );
    db.query_one_raw(Statement::from_string(DbBackend::Postgres, sql))
        .await
        .unwrap()
        .unwrap()
        .try_get("", "n")
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn rollup_follows_transfers_departures_and_stale_events() {
    let city = city(41, 3, 6);
    let instance = spawn("grroll").await;
    let (g, db) = (&instance.grading, &instance.db);
    let mut published = city.events.len();
    instance.publish(&city.events).await;
    instance
        .wait_processed(i64::try_from(published).unwrap())
        .await;
    let root_path = format!("/{}/", city.root);
    let admin = &admin(city.root);
    assert_rollup_is_the_source(db, &root_path).await;

    // Member 0 of the first branch moves to the second; member 1 leaves the party.
    let (b0, b1) = (city.branches[0], city.branches[1]);
    let (b0_path, b1_path) = (format!("{root_path}{b0}/"), format!("{root_path}{b1}/"));
    let (mover, leaver) = (city.members[0], city.members[1]);
    // A month in which both have points, so the test sees them move.
    let mut chosen = None;
    for month in 1..=12 {
        let points = (
            month_points(db, mover, month).await,
            month_points(db, leaver, month).await,
        );
        if points.0 != 0 && points.1 != 0 {
            chosen = Some((month, points));
            break;
        }
    }
    let (month, (mover_points, leaver_points)) =
        chosen.expect("no month in which both members have points");
    let figures = |org| async move { g.dashboard(admin, org, 2026, month).await.unwrap().total };
    let before = (
        figures(city.root).await,
        figures(b0).await,
        figures(b1).await,
    );
    let moves = vec![
        member_changed(mover, b1, &b1_path, common::MemberStatus::Active, 10),
        member_changed(leaver, b0, &b0_path, common::MemberStatus::Left, 10),
    ];
    instance.publish(&moves).await;
    published += moves.len();
    instance
        .wait_processed(i64::try_from(published).unwrap())
        .await;
    let after = (
        figures(city.root).await,
        figures(b0).await,
        figures(b1).await,
    );
    // Every member declared every month in the generated city.
    assert_eq!(
        (after.1.members, after.1.declared, after.1.points),
        (
            before.1.members - 2,
            before.1.declared - 2,
            before.1.points - mover_points - leaver_points
        ),
        "the first branch loses both"
    );
    assert_eq!(
        (after.2.members, after.2.declared, after.2.points),
        (
            before.2.members + 1,
            before.2.declared + 1,
            before.2.points + mover_points
        ),
        "the second branch gains the one transferred"
    );
    assert_eq!(
        (after.0.members, after.0.declared, after.0.points),
        (
            before.0.members - 1,
            before.0.declared - 1,
            before.0.points - leaver_points
        ),
        "the city loses the one who left"
    );
    assert_rollup_is_the_source(db, &root_path).await;
    let trends = |org| async move { g.dashboard_trend(admin, org, 2026).await.unwrap().months };
    let settled = (trends(city.root).await, trends(b0).await, trends(b1).await);
    let rows = rollup_rows(db).await;

    // Every event delivered again, newest first, with an older state of the mover (back in the
    // first branch) and the moves themselves: nothing changes.
    let mut again: Vec<OutgoingEvent> = city.events.clone();
    again.push(member_changed(
        mover,
        b0,
        &b0_path,
        common::MemberStatus::Active,
        9,
    ));
    again.extend(moves.iter().cloned());
    again.reverse();
    instance.publish(&again).await;
    published += again.len();
    instance
        .wait_processed(i64::try_from(published).unwrap())
        .await;
    assert_eq!(
        (trends(city.root).await, trends(b0).await, trends(b1).await),
        settled,
        "stale or repeated events changed the trend"
    );
    assert_eq!(rollup_rows(db).await, rows);
    assert_rollup_is_the_source(db, &root_path).await;

    // The rollup rebuilt from the source tables (the migration's backfill) is the same, row for
    // row (in a transaction rolled back: the service keeps running).
    let tx = db.begin().await.unwrap();
    dashboard::rebuild_rollup(&tx).await.unwrap();
    let rebuilt = rollup_rows(&tx).await;
    tx.rollback().await.unwrap();
    assert!(rebuilt.len() > city.members.len(), "{} rows", rebuilt.len());
    assert_eq!(rebuilt, rows);
}

//! `final-drift`: after a year is final, the members whose final points differ from what their
//! ledger gives now — and only those — are listed; nothing is changed (decision 0010).

use crate::helpers::*;
use jifen_grading::batch::{self, Shard};
use jifen_grading::store::{gradings, projection};
use jifen_platform::auth::{Principal, RoleClaim, RoleName};
use sea_orm::{ConnectionTrait as _, DbBackend, Statement};
use uuid::Uuid;

fn principal(role: RoleName, org_id: Uuid, org_path: &str) -> Principal {
    Principal {
        subject: format!("{role:?}:{org_id}"),
        username: None,
        member_id: None,
        roles: vec![RoleClaim {
            role,
            org_id,
            org_path: org_path.to_owned(),
        }],
        round_id: None,
    }
}

/// The packed quarters of `member_years` rewritten from `quarter_results`, as the service does
/// in the transaction that changes them.
const REPACK: &str = "UPDATE member_years y SET quarters = coalesce((SELECT string_agg(\
    member_year_quarter(q.quarter, q.closed_at, q.round_id, q.score, q.ballots, q.poor_ballots, \
    q.valid, q.score_total), '' ORDER BY q.round_id) FROM quarter_results q \
    WHERE q.member_id = y.member_id AND q.year = y.year), '')";

async fn sql(instance: &Instance, sql: &str) {
    instance
        .db
        .execute_raw(Statement::from_string(DbBackend::Postgres, sql))
        .await
        .unwrap();
}

#[derive(Debug, sea_orm::FromQueryResult)]
struct Quarter {
    member_id: Uuid,
    quarter: i16,
    score: Option<i32>,
    score_total: Option<i64>,
    ballots: i32,
    valid: bool,
}

/// The evaluation points (tenths, weight 20 points) of one member's quarters, computed here
/// apart from the service: from the exact sums, or from the shown 0.1-point means.
fn evaluation(quarters: &[&Quarter], exact: bool) -> i64 {
    let counted: Vec<&&Quarter> = quarters
        .iter()
        .filter(|q| q.valid && q.ballots > 0)
        .collect();
    if counted.is_empty() {
        return 0;
    }
    let n = counted.len() as i128;
    let (numerator, denominator) = if exact {
        let d: i128 = counted.iter().map(|q| i128::from(q.ballots)).product();
        let sum: i128 = counted
            .iter()
            .map(|q| i128::from(q.score_total.unwrap()) * (d / i128::from(q.ballots)))
            .sum();
        (sum * 200, n * 1000 * d)
    } else {
        let sum: i128 = counted.iter().map(|q| i128::from(q.score.unwrap())).sum();
        (sum * 200, n * 1000)
    };
    i64::try_from((2 * numerator + denominator) / (2 * denominator)).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn final_drift_lists_exactly_the_final_members_whose_ledger_now_differs() {
    let city = city(23, 5, 10);
    let instance = spawn("grdrift").await;
    instance.publish(&city.events).await;
    instance
        .wait_processed(i64::try_from(city.events.len()).unwrap())
        .await;
    // The year graded and made final from a projection without the exact sums (one applied
    // before they were kept): the old double rounding.
    sql(
        &instance,
        "CREATE TABLE kept AS SELECT member_id, round_id, score_total FROM quarter_results",
    )
    .await;
    sql(&instance, "UPDATE quarter_results SET score_total = NULL").await;
    sql(&instance, REPACK).await;
    let mut progress = |_: u64, _: u64| {};
    batch::run(
        &instance.grading,
        city.root,
        2026,
        Shard::ALL,
        &mut progress,
    )
    .await
    .unwrap();
    let root_path = format!("/{}/", city.root);
    let admin = principal(RoleName::Admin, city.root, &root_path);
    for &branch in &city.branches {
        let path = projection::find_org(&instance.db, branch)
            .await
            .unwrap()
            .unwrap()
            .path;
        let secretary = principal(RoleName::Secretary, branch, &path);
        instance
            .grading
            .confirm(&secretary, branch, 2026, Vec::new())
            .await
            .unwrap();
    }
    // After the publication period (公示).
    instance.clock.advance(chrono::Duration::days(30));
    for &branch in &city.branches {
        let view = instance
            .grading
            .finalize(&admin, branch, 2026)
            .await
            .unwrap();
        assert_eq!(view.status, "final");
    }
    let finals = gradings::grades_under(&instance.db, &root_path, 2026)
        .await
        .unwrap();
    let report = instance.grading.final_drift(city.root, 2026).await.unwrap();
    assert_eq!(report.finals, finals.len());
    assert!(report.drifts.is_empty(), "{:?}", report.drifts);

    // The sums come back (what republishing the rounds does): the ledger is exact now.
    sql(
        &instance,
        "UPDATE quarter_results q SET score_total = k.score_total FROM kept k \
                    WHERE k.member_id = q.member_id AND k.round_id = q.round_id",
    )
    .await;
    sql(&instance, REPACK).await;
    let report = instance.grading.final_drift(city.root, 2026).await.unwrap();

    // Expected: the members whose two evaluations differ, computed here from their quarters.
    let quarters =
        <Quarter as sea_orm::FromQueryResult>::find_by_statement(Statement::from_string(
            DbBackend::Postgres,
            "SELECT member_id, quarter, score, score_total, ballots, valid FROM quarter_results \
             WHERE year = 2026",
        ))
        .all(&instance.db)
        .await
        .unwrap();
    let mut expected = Vec::new();
    for row in &finals {
        let mine: Vec<&Quarter> = quarters
            .iter()
            .filter(|q| q.member_id == row.member_id)
            .collect();
        let mut seen: Vec<i16> = mine.iter().map(|q| q.quarter).collect();
        seen.dedup();
        assert_eq!(seen.len(), mine.len(), "one round per quarter in this city");
        let (old, exact) = (evaluation(&mine, false), evaluation(&mine, true));
        assert_eq!(
            i64::from(row.evaluation_points),
            old,
            "final from the rounded quarters"
        );
        if old != exact {
            expected.push((row.member_id, row.total, exact));
        }
    }
    assert!(
        !expected.is_empty(),
        "the city has a member at a rounding edge"
    );
    let listed: Vec<(Uuid, i32, i64)> = report
        .drifts
        .iter()
        .map(|d| {
            assert_eq!(
                d.ledger_total - d.final_total,
                d.ledger_evaluation - d.final_evaluation,
                "{d:?}"
            );
            (d.member_id, d.final_total, i64::from(d.ledger_evaluation))
        })
        .collect();
    assert_eq!(listed, expected);
    // Listing changed nothing: the final grades are as they were.
    assert_eq!(
        gradings::grades_under(&instance.db, &root_path, 2026)
            .await
            .unwrap(),
        finals
    );
}

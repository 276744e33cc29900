//! The year-end batch: shards grade every branch exactly once, a re-run changes nothing, and the
//! on-demand computation agrees with the batch to the deci-point.

use crate::helpers::*;
use jifen_grading::batch::{self, Shard};
use jifen_grading::store::gradings;
use jifen_platform::auth::{Principal, RoleClaim, RoleName};

#[tokio::test(flavor = "multi_thread")]
async fn shards_grade_every_branch_once_and_a_rerun_changes_nothing() {
    let city = city(11, 5, 6);
    let instance = spawn("grbt").await;
    instance.publish(&city.events).await;
    instance
        .wait_processed(i64::try_from(city.events.len()).unwrap())
        .await;

    let mut seen = Vec::new();
    let (mut branches, mut stored) = (0, 0);
    for index in 0..3 {
        let mut progress = |done: u64, total: u64| seen.push((index, done, total));
        let report = batch::run(
            &instance.grading,
            city.root,
            2026,
            Shard { index, count: 3 },
            &mut progress,
        )
        .await
        .unwrap();
        branches += report.branches;
        stored += report.stored;
    }
    assert_eq!(
        (branches, stored),
        (5, 5),
        "three shards together: every branch once"
    );
    assert_eq!(
        seen.last().map(|(_, d, t)| d == t),
        Some(true),
        "progress reaches the end"
    );
    assert_eq!(
        count(&instance.db, "SELECT count(*) AS n FROM gradings").await,
        5
    );
    // 6 members per branch, one exempt.
    assert_eq!(
        count(&instance.db, "SELECT count(*) AS n FROM grading_members").await,
        25
    );
    let path = format!("/{}/", city.root);
    let before = gradings::grades_under(&instance.db, &path, 2026)
        .await
        .unwrap();

    let mut progress = |_: u64, _: u64| {};
    let again = batch::run(
        &instance.grading,
        city.root,
        2026,
        Shard::ALL,
        &mut progress,
    )
    .await
    .unwrap();
    assert_eq!((again.stored, again.unchanged), (0, 5));
    assert_eq!(
        gradings::grades_under(&instance.db, &path, 2026)
            .await
            .unwrap(),
        before
    );
    assert_eq!(
        count(
            &instance.db,
            "SELECT count(*) AS n FROM audit WHERE action = 'compute'"
        )
        .await,
        5,
        "a re-run writes no audit line either"
    );

    // ComputeGrading over the city gives the batch's rows.
    let admin = Principal {
        subject: "admin".into(),
        username: None,
        member_id: None,
        roles: vec![RoleClaim {
            role: RoleName::Admin,
            org_id: city.root,
            org_path: path.clone(),
        }],
        round_id: None,
    };
    let view = instance
        .grading
        .compute(&admin, city.root, 2026)
        .await
        .unwrap();
    assert_eq!(view.status, "proposed");
    assert_eq!(view.members, before);
}

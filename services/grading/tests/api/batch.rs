//! The year-end batch: shards grade every branch exactly once, a re-run changes nothing, and the
//! on-demand computation agrees with the batch to the deci-point.

use crate::helpers::*;
use jifen_grading::batch::{self, Shard};
use jifen_grading::store::{gradings, projection};
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

/// The audit's `compute` lines of 2026 under the instance: `(branch, actor)`, one per grading
/// stored (a branch graded again with unchanged inputs writes none).
async fn computed_by(instance: &Instance) -> Vec<(uuid::Uuid, String)> {
    use sea_orm::{ConnectionTrait as _, DbBackend, Statement};
    instance
        .db
        .query_all_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT subject, actor FROM audit WHERE action = 'compute' ORDER BY id",
        ))
        .await
        .unwrap()
        .iter()
        .map(|r| {
            let subject: String = r.try_get("", "subject").unwrap();
            let id = subject
                .strip_prefix("grading:")
                .and_then(|s| s.strip_suffix(":2026"))
                .unwrap()
                .parse()
                .unwrap();
            (id, r.try_get("", "actor").unwrap())
        })
        .collect()
}

/// Shards 0..4 run one after the other while the tree changes between them: after shard 0 ran,
/// two branches with members arrive (one that a later shard owns, one that shard 0 owns) and the
/// first branch (in path order) moves out of the city. Every branch of the city at the end is
/// graded by exactly one shard, the one its id names — except the late branch whose own shard
/// had already run, which no pod of this run grades and a re-run of its shard does. (With
/// contiguous slices of the list each pod read at its start, the removal shifted every later
/// slice and one branch fell between two pods.)
#[tokio::test(flavor = "multi_thread")]
async fn shards_grade_every_branch_once_while_branches_come_and_go() {
    let city = city(21, 8, 4);
    let instance = spawn("grbs").await;
    instance.publish(&city.events).await;
    let mut published = i64::try_from(city.events.len()).unwrap();
    instance.wait_processed(published).await;

    let path = format!("/{}/", city.root);
    // A branch of 4 members under the city that shard `wanted(shard)` owns.
    let late_branch = |wanted: fn(u32) -> bool| {
        (22..)
            .map(|seed| more_branches(seed, city.root, 1, 4))
            .find(|b| wanted(Shard::of(b.branches[0], 4)))
            .unwrap()
    };
    let mut taken = 0;
    let (mut late, mut too_late) = (None, None);
    for index in 0..4 {
        let mut progress = |_: u64, _: u64| {};
        let report = batch::run(
            &instance.grading,
            city.root,
            2026,
            Shard { index, count: 4 },
            &mut progress,
        )
        .await
        .unwrap();
        taken += report.branches;
        if index == 0 {
            let ahead = late_branch(|s| s != 0);
            let behind = late_branch(|s| s == 0);
            late = Some(ahead.branches[0]);
            too_late = Some(behind.branches[0]);
            let first = projection::branches_under(&instance.db, &path)
                .await
                .unwrap()[0]
                .id;
            let mut events = ahead.events;
            events.extend(behind.events);
            events.push(branch_moved_away(first, 2));
            instance.publish(&events).await;
            published += i64::try_from(events.len()).unwrap();
            instance.wait_processed(published).await;
        }
    }
    let (late, too_late) = (late.unwrap(), too_late.unwrap());

    let present: Vec<uuid::Uuid> = projection::branches_under(&instance.db, &path)
        .await
        .unwrap()
        .iter()
        .map(|b| b.id)
        .collect();
    assert_eq!(present.len(), 9, "8 branches, one gone, two come");
    assert!(present.contains(&late) && present.contains(&too_late));
    let computed = computed_by(&instance).await;
    assert_eq!(
        computed.len() as u64,
        taken,
        "no shard took a branch another had already graded"
    );
    let times = |branch: &uuid::Uuid| computed.iter().filter(|(b, _)| b == branch).count();
    assert_eq!(times(&too_late), 0, "its shard had run before it came");
    let none: Vec<_> = present
        .iter()
        .filter(|b| **b != too_late && times(b) == 0)
        .collect();
    let twice: Vec<_> = present.iter().filter(|b| times(b) > 1).collect();
    assert!(
        none.is_empty() && twice.is_empty(),
        "graded by no shard: {none:?}; by several: {twice:?}"
    );
    for branch in present.iter().filter(|b| **b != too_late) {
        let by: Vec<&String> = computed
            .iter()
            .filter(|(b, _)| b == branch)
            .map(|(_, actor)| actor)
            .collect();
        assert_eq!(
            by,
            vec![&format!("batch:{}/4", Shard::of(*branch, 4))],
            "branch {branch} graded once, by the shard its id names"
        );
    }
    assert_eq!(
        count(
            &instance.db,
            &format!("SELECT count(*) AS n FROM grading_members WHERE branch_id = '{late}'")
        )
        .await,
        3,
        "the late branch's members are graded (4, one exempt)"
    );

    // A re-run of shard 0 grades the branch that came after it, and only that one.
    let mut progress = |_: u64, _: u64| {};
    let again = batch::run(
        &instance.grading,
        city.root,
        2026,
        Shard { index: 0, count: 4 },
        &mut progress,
    )
    .await
    .unwrap();
    assert_eq!(again.stored, 1);
    let computed = computed_by(&instance).await;
    assert_eq!(computed.last(), Some(&(too_late, "batch:0/4".to_owned())));
}

/// Runs `jifen-grading batch` over the city of `instance`, as an OS process.
fn batch_process(
    instance: &Instance,
    root: uuid::Uuid,
    shard: Option<&str>,
) -> tokio::process::Child {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_jifen-grading"));
    command
        .args(["batch", "--year", "2026", "--org", &root.to_string()])
        .env("JIFEN_DATABASE_URL", &instance.server_url)
        .env("JIFEN_GRADING_DATABASE", &instance.database)
        .env("RUST_LOG", "warn")
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    if let Some(shard) = shard {
        command.args(["--shard", shard]);
    }
    command.spawn().unwrap()
}

/// Four `jifen-grading batch --shard i/4` processes started together over one city store
/// exactly what one unsharded process stores over the same city: the same member rows (totals,
/// grades, reasons), row for row, and the same gradings.
#[tokio::test(flavor = "multi_thread")]
async fn four_shard_processes_equal_one_unsharded_run() {
    let city = city(31, 8, 4);
    let (sharded, whole) = tokio::join!(spawn("grb4"), spawn("grb1"));
    for instance in [&sharded, &whole] {
        instance.publish(&city.events).await;
    }
    for instance in [&sharded, &whole] {
        instance
            .wait_processed(i64::try_from(city.events.len()).unwrap())
            .await;
    }

    let pods: Vec<_> = (0..4)
        .map(|i| batch_process(&sharded, city.root, Some(&format!("{i}/4"))))
        .collect();
    for mut pod in pods {
        assert!(pod.wait().await.unwrap().success(), "a shard failed");
    }
    assert!(
        batch_process(&whole, city.root, None)
            .wait()
            .await
            .unwrap()
            .success()
    );

    let path = format!("/{}/", city.root);
    let rows = |db| gradings::grades_under(db, &path, 2026);
    let (four, one) = (
        rows(&sharded.db).await.unwrap(),
        rows(&whole.db).await.unwrap(),
    );
    assert_eq!(one.len(), 8 * 3, "8 branches of 4 members, one exempt each");
    assert_eq!(four, one, "the same rows, row for row");
    let summary = "SELECT count(*) AS n FROM gradings WHERE year = 2026 AND status = 'proposed'";
    assert_eq!(count(&sharded.db, summary).await, 8);
    assert_eq!(count(&whole.db, summary).await, 8);
    let totals = "SELECT sum(total)::bigint AS n FROM grading_members WHERE year = 2026";
    assert_eq!(
        count(&sharded.db, totals).await,
        count(&whole.db, totals).await
    );
    // Each shard graded its own branches, as its id names them.
    let by = computed_by(&sharded).await;
    assert_eq!(by.len(), 8);
    for (branch, actor) in by {
        assert_eq!(actor, format!("batch:{}/4", Shard::of(branch, 4)));
    }
}

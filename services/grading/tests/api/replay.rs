//! The same events delivered twice, and in shuffled order, give identical ledgers and grades
//! (DESIGN.md §4: projections are idempotent and order-independent).

use crate::helpers::*;
use jifen_grading::batch::{self, Shard};
use jifen_grading::store::{dashboard, gradings, projection};
use rand::SeedableRng as _;
use rand::seq::SliceRandom as _;

#[tokio::test(flavor = "multi_thread")]
async fn events_twice_and_shuffled_give_identical_ledgers_and_grades() {
    let city = city(7, 2, 12);
    let (once, shuffled) = tokio::join!(spawn("grro"), spawn("grrs"));
    let n = i64::try_from(city.events.len()).unwrap();
    once.publish(&city.events).await;
    let mut twice: Vec<_> = city
        .events
        .iter()
        .chain(city.events.iter())
        .cloned()
        .collect();
    twice.shuffle(&mut rand::rngs::StdRng::seed_from_u64(99));
    shuffled.publish(&twice).await;
    once.wait_processed(n).await;
    shuffled.wait_processed(2 * n).await;

    // Every member's ledger: the same entries, quarters and totals to the deci-point.
    let mut filled = 0;
    for member in &city.members {
        let a = projection::find_member(&once.db, *member)
            .await
            .unwrap()
            .unwrap();
        let b = projection::find_member(&shuffled.db, *member)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(a, b);
        let la = once.grading.ledger_of(&a, 2026).await.unwrap();
        let lb = shuffled.grading.ledger_of(&b, 2026).await.unwrap();
        assert_eq!(la.entries, lb.entries, "entries of {member}");
        assert_eq!(la.quarters, lb.quarters, "quarters of {member}");
        assert_eq!(la.totals, lb.totals, "totals of {member}");
        if !la.entries.is_empty() && la.quarters.len() == 4 {
            filled += 1;
        }
    }
    assert_eq!(
        filled,
        city.members.len(),
        "every member has entries and four quarters"
    );

    // The dashboard's figures of every month (its own projection of the declarations, with its
    // own version guard): the same whatever the order, and something was declared.
    let root = format!("/{}/", city.root);
    let mut declared = 0;
    for month in 1..=12 {
        let mut fa = dashboard::figures_by_child(&once.db, &root, 2026, month)
            .await
            .unwrap();
        let mut fb = dashboard::figures_by_child(&shuffled.db, &root, 2026, month)
            .await
            .unwrap();
        fa.sort_by_key(|f| f.child);
        fb.sort_by_key(|f| f.child);
        assert_eq!(fa, fb, "dashboard figures of month {month}");
        declared += fa.iter().map(|f| f.declared).sum::<i64>();
    }
    assert!(declared > 0, "no declaration counted");

    // The grades of the whole city.
    let mut progress = |_: u64, _: u64| {};
    for instance in [&once, &shuffled] {
        let report = batch::run(
            &instance.grading,
            city.root,
            2026,
            Shard::ALL,
            &mut progress,
        )
        .await
        .unwrap();
        assert_eq!(report.stored, 2);
    }
    let path = format!("/{}/", city.root);
    let a = gradings::grades_under(&once.db, &path, 2026).await.unwrap();
    let b = gradings::grades_under(&shuffled.db, &path, 2026)
        .await
        .unwrap();
    assert_eq!(a, b);
    // 12 members per branch, one of them exempt: 11 graded in each.
    assert_eq!(a.len(), 22);
    let reasons: Vec<String> = a
        .iter()
        .flat_map(jifen_grading::usecases::reasons_of)
        .collect();
    for code in ["veto:V02", "capped:X11", "capped:warning"] {
        assert_eq!(
            reasons.iter().filter(|r| *r == code).count(),
            2,
            "{code} once per branch in {reasons:?}"
        );
    }
    for row in a
        .iter()
        .filter(|r| r.reasons.to_string().contains("veto:V02"))
    {
        assert_eq!(row.proposed_grade, "unqualified");
    }
}

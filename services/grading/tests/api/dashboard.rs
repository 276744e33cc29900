//! The dashboard's set-based reads (docs/decisions/0015-dashboard-trend.md) against the
//! single-organization, single-month reads they must agree with: every month of the trend is
//! `GetDashboard` of that month, every branch line is that branch's own dashboard, the
//! histogram holds exactly the ranking's totals — over a generated city fed through real events.

use crate::helpers::*;
use jifen_grading::usecases::{AppError, Figures};
use jifen_platform::auth::{Principal, RoleClaim, RoleName};
use uuid::Uuid;

fn principal(role: RoleName, org_id: Uuid, org_path: &str, member: Option<Uuid>) -> Principal {
    Principal {
        subject: format!("{role:?}:{org_id}"),
        username: None,
        member_id: member,
        roles: vec![RoleClaim {
            role,
            org_id,
            org_path: org_path.to_owned(),
        }],
        round_id: None,
    }
}

/// The figures a month of the trend or a branch line repeats from a dashboard.
fn same(a: &Figures, b: &Figures) -> bool {
    (
        a.org_id,
        a.members,
        a.declared,
        a.points,
        a.participation_permille,
        a.points_avg,
    ) == (
        b.org_id,
        b.members,
        b.declared,
        b.points,
        b.participation_permille,
        b.points_avg,
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn set_based_reads_agree_with_the_single_reads() {
    let city = city(23, 3, 9);
    let instance = spawn("grdash").await;
    instance.publish(&city.events).await;
    instance
        .wait_processed(i64::try_from(city.events.len()).unwrap())
        .await;
    let g = &instance.grading;
    let root_path = format!("/{}/", city.root);
    let admin = principal(RoleName::Admin, city.root, &root_path, None);

    // The trend of a past year (the clock stands in January 2027): twelve months, each the
    // month's dashboard, for the city and for each branch.
    let mut orgs = vec![city.root];
    orgs.extend(&city.branches);
    let mut declared = 0;
    for org in &orgs {
        let trend = g.dashboard_trend(&admin, *org, 2026).await.unwrap();
        assert_eq!(trend.org_id, *org);
        assert_eq!(
            trend.months.iter().map(|(m, _)| *m).collect::<Vec<_>>(),
            (1..=12).collect::<Vec<_>>()
        );
        for (month, figures) in &trend.months {
            let single = g.dashboard(&admin, *org, 2026, *month).await.unwrap();
            assert!(
                same(figures, &single.total),
                "{org} 2026-{month}: {figures:?} vs {:?}",
                single.total
            );
            declared += figures.declared;
        }
    }
    assert!(
        declared > 0,
        "nothing declared: the test would prove little"
    );
    // The running year up to the current month; a year not begun, none.
    let running = g.dashboard_trend(&admin, city.root, 2027).await.unwrap();
    assert_eq!(running.months.len(), 1);
    assert!(
        g.dashboard_trend(&admin, city.root, 2028)
            .await
            .unwrap()
            .months
            .is_empty()
    );

    // The branches: every branch of the city, each its own dashboard, lowest participation
    // first, lagging below the threshold.
    for month in [3, 7, 12] {
        let view = g
            .dashboard_branches(&admin, city.root, 2026, month)
            .await
            .unwrap();
        let mut ids: Vec<Uuid> = view.items.iter().map(|l| l.figures.org_id).collect();
        ids.sort();
        let mut want = city.branches.clone();
        want.sort();
        assert_eq!(ids, want);
        for line in &view.items {
            let single = g
                .dashboard(&admin, line.figures.org_id, 2026, month)
                .await
                .unwrap();
            assert!(same(&line.figures, &single.total), "{line:?}");
            assert_eq!(line.parent.as_ref().map(|p| p.0), Some(city.root));
            assert_eq!(
                line.lagging,
                line.figures.members > 0
                    && line.figures.participation_permille < view.threshold_permille
            );
        }
        assert!(
            view.items.windows(2).all(|w| {
                w[0].figures.participation_permille <= w[1].figures.participation_permille
            }),
            "lowest participation first"
        );
        let sum: i64 = view.items.iter().map(|l| l.figures.members).sum();
        let city_total = g.dashboard(&admin, city.root, 2026, month).await.unwrap();
        assert_eq!(sum, city_total.total.members, "branches hold every member");
    }

    // The histogram holds the ranking's totals, whatever the number of bins.
    let ranking = g.ranking(&admin, city.root, 2026, 100).await.unwrap();
    assert!(ranking.items.len() < 100, "the ranking lists every member");
    assert!(
        ranking.items.iter().all(|r| r
            .branch
            .as_ref()
            .is_some_and(|(b, _)| city.branches.contains(b))),
        "each ranked member names their branch"
    );
    let totals: Vec<i64> = ranking.items.iter().map(|r| i64::from(r.total)).collect();
    for bins in [1, 3, 10, 50] {
        let h = g
            .dashboard_histogram(&admin, city.root, 2026, bins)
            .await
            .unwrap();
        assert_eq!(h.members, totals.len() as i64);
        assert_eq!(h.bins.len(), bins as usize);
        for b in &h.bins {
            assert_eq!(b.to - b.from, h.bin_width);
            let inside = totals.iter().filter(|t| (b.from..b.to).contains(t)).count();
            assert_eq!(b.count, inside as i64, "{bins} bins: {b:?}");
        }
        assert_eq!(h.bins.iter().map(|b| b.count).sum::<i64>(), h.members);
    }

    // Scope: a branch's secretary reads their branch, not the city nor a sibling; a member
    // nothing. The breadcrumb names only what the caller manages.
    let (b0, b1) = (city.branches[0], city.branches[1]);
    let b0_path = format!("{root_path}{b0}/");
    let secretary = principal(RoleName::Secretary, b0, &b0_path, None);
    let own = g.dashboard(&secretary, b0, 2026, 3).await.unwrap();
    assert!(own.ancestors.is_empty(), "{:?}", own.ancestors);
    assert_eq!(own.parent_id, Some(city.root));
    let seen_by_admin = g.dashboard(&admin, b0, 2026, 3).await.unwrap();
    assert_eq!(
        seen_by_admin
            .ancestors
            .iter()
            .map(|a| a.0)
            .collect::<Vec<_>>(),
        vec![city.root]
    );
    for org in [city.root, b1] {
        assert!(matches!(
            g.dashboard_trend(&secretary, org, 2026).await,
            Err(AppError::NotFound {
                field: "org_id",
                ..
            })
        ));
        assert!(matches!(
            g.dashboard_histogram(&secretary, org, 2026, 10).await,
            Err(AppError::NotFound {
                field: "org_id",
                ..
            })
        ));
        assert!(matches!(
            g.dashboard_branches(&secretary, org, 2026, 3).await,
            Err(AppError::NotFound {
                field: "org_id",
                ..
            })
        ));
    }
    assert!(g.dashboard_branches(&secretary, b0, 2026, 3).await.is_ok());
    let member = principal(RoleName::Member, b0, &b0_path, Some(city.members[0]));
    assert!(matches!(
        g.dashboard_trend(&member, b0, 2026).await,
        Err(AppError::Denied)
    ));
    assert!(matches!(
        g.dashboard_histogram(&member, b0, 2026, 10).await,
        Err(AppError::Denied)
    ));
    assert!(matches!(
        g.dashboard_branches(&member, b0, 2026, 3).await,
        Err(AppError::Denied)
    ));
    assert!(matches!(
        g.dashboard_trend(&admin, city.root, 1999).await,
        Err(AppError::Invalid(v)) if v[0].field == "year"
    ));
}

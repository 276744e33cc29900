//! The ledger export (`ExportLedger`): who may export what, and a generated city exported in
//! small chunks agrees, member by member and to the deci-point, with the one-member ledger
//! (`GetLedger`'s use-case).

use crate::helpers::*;
use jifen_grading::store::projection;
use jifen_grading::usecases::{AppError, LedgerExport};
use jifen_platform::auth::{Principal, RoleClaim, RoleName};
use std::collections::{BTreeMap, BTreeSet};
use uuid::Uuid;

fn principal(role: RoleName, org_id: Uuid, org_path: &str, member: Option<Uuid>) -> Principal {
    Principal {
        subject: format!("{role:?}"),
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

/// Every chunk of an export.
async fn drain(mut export: LedgerExport) -> Vec<Vec<jifen_grading::usecases::ExportedMember>> {
    let mut chunks = Vec::new();
    while let Some(chunk) = export.members.recv().await {
        chunks.push(chunk.unwrap());
    }
    chunks
}

#[tokio::test(flavor = "multi_thread")]
async fn a_city_exports_in_chunks_with_the_ledgers_totals_and_staff_only() {
    let city = city(17, 4, 6);
    let instance = spawn("grex").await;
    instance.publish(&city.events).await;
    instance
        .wait_processed(i64::try_from(city.events.len()).unwrap())
        .await;
    let root_path = format!("/{}/", city.root);
    let admin = principal(RoleName::Admin, city.root, &root_path, None);

    // The whole city in chunks of 5: every member once, in path order, with the ledger's totals.
    let export = instance
        .grading
        .export_ledger(&admin, city.root, 2026, 5)
        .await
        .unwrap();
    assert_eq!(export.year, 2026);
    assert!(
        export
            .items
            .iter()
            .any(|i| i.code == "P01" && !i.name.is_empty())
    );
    let chunks = drain(export).await;
    assert!(chunks.iter().all(|c| !c.is_empty() && c.len() <= 5));
    assert_eq!(chunks.len(), city.members.len().div_ceil(5));
    let exported: Vec<_> = chunks.into_iter().flatten().collect();
    let ids: BTreeSet<Uuid> = exported.iter().map(|m| m.member.id).collect();
    assert_eq!(ids, city.members.iter().copied().collect::<BTreeSet<_>>());
    assert_eq!(ids.len(), exported.len(), "every member once");
    assert!(
        exported
            .windows(2)
            .all(|w| w[0].member.org_path <= w[1].member.org_path),
        "members of one branch together"
    );
    for m in &exported {
        let ledger = instance.grading.ledger_of(&m.member, 2026).await.unwrap();
        assert_eq!(m.totals, ledger.totals, "totals of {}", m.member.id);
        // The same entries: month and item → points.
        let mut want: BTreeMap<(i16, String), i32> = BTreeMap::new();
        for e in &ledger.entries {
            *want.entry((e.month, e.item_code.clone())).or_default() += e.points;
        }
        let mut got: BTreeMap<(i16, String), i32> = BTreeMap::new();
        for e in &m.entries {
            *got.entry((e.month, e.item_code.to_string())).or_default() += e.points;
        }
        assert_eq!(got, want, "entries of {}", m.member.id);
        assert!(m.org_name.starts_with("组织"), "{}", m.org_name);
    }

    // One branch: its secretary exports it; only its members.
    let branch = projection::find_org(&instance.db, city.branches[1])
        .await
        .unwrap()
        .unwrap();
    let secretary = principal(RoleName::Secretary, branch.id, &branch.path, None);
    let export = instance
        .grading
        .export_ledger(&secretary, branch.id, 2026, 200)
        .await
        .unwrap();
    let mine: Vec<_> = drain(export).await.into_iter().flatten().collect();
    assert_eq!(mine.len(), 6);
    assert!(mine.iter().all(|m| m.member.org_id == branch.id));

    // Refusals: the branch's secretary does not see the city (404), another branch's secretary
    // does not see this branch (404), a member of the branch is refused (403), an unknown
    // organization is 404, a year outside the range is a bad field.
    let denied = |r: Result<LedgerExport, AppError>| match r {
        Err(e) => e,
        Ok(_) => panic!("exported"),
    };
    assert!(matches!(
        denied(
            instance
                .grading
                .export_ledger(&secretary, city.root, 2026, 200)
                .await
        ),
        AppError::NotFound {
            field: "org_id",
            ..
        }
    ));
    let elsewhere = projection::find_org(&instance.db, city.branches[2])
        .await
        .unwrap()
        .unwrap();
    let other = principal(RoleName::Secretary, elsewhere.id, &elsewhere.path, None);
    assert!(matches!(
        denied(
            instance
                .grading
                .export_ledger(&other, branch.id, 2026, 200)
                .await
        ),
        AppError::NotFound { .. }
    ));
    let member = principal(
        RoleName::Member,
        branch.id,
        &branch.path,
        Some(mine[0].member.id),
    );
    assert!(matches!(
        denied(
            instance
                .grading
                .export_ledger(&member, branch.id, 2026, 200)
                .await
        ),
        AppError::Denied
    ));
    assert!(matches!(
        denied(
            instance
                .grading
                .export_ledger(&admin, Uuid::now_v7(), 2026, 200)
                .await
        ),
        AppError::NotFound {
            field: "org_id",
            ..
        }
    ));
    match denied(
        instance
            .grading
            .export_ledger(&admin, city.root, 1999, 200)
            .await,
    ) {
        AppError::Invalid(v) => assert_eq!(v[0].field, "year"),
        other => panic!("{other:?}"),
    }
}

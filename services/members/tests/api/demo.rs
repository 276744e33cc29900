//! `seed-demo` is idempotent by its own marker: a second run adds nothing, organizations that
//! carry the demo's names do not confuse it, and a demo member changed since (expelled) stays so.

use crate::helpers::*;
use jifen_members::demo::{self, BRANCHES, COMMITTEES, MEMBERS_PER_BRANCH};
use jifen_proto::common::v1 as common;
use jifen_proto::members::v1 as pb;
use sea_orm::ConnectionTrait as _;

/// (organizations, members, accounts, outbox rows, audit rows).
async fn counts(app: &TestApp) -> [i64; 5] {
    let mut out = [0; 5];
    for (i, table) in [
        "organizations",
        "members",
        "accounts",
        "outbox",
        "audit_log",
    ]
    .iter()
    .enumerate()
    {
        out[i] = query_i64(&app.db, &format!("SELECT count(*) FROM {table}"), vec![]).await;
    }
    out
}

const CITY_ORGS: usize = COMMITTEES.len() * (1 + BRANCHES.len());
const CITY_MEMBERS: usize = COMMITTEES.len() * BRANCHES.len() * MEMBERS_PER_BRANCH;

#[tokio::test(flavor = "multi_thread")]
async fn seeding_twice_adds_nothing_the_second_time() {
    let app = spawn_app().await;
    let settings = settings(&app.database, &app.bus, &app.keys);
    let first = demo::seed(&settings).await.unwrap();
    assert!(!first.already_seeded);
    assert_eq!(first.organizations_created, CITY_ORGS);
    assert_eq!(first.members_created, CITY_MEMBERS);
    let after_first = counts(&app).await;
    assert_eq!(after_first[0], 1 + CITY_ORGS as i64);
    assert_eq!(after_first[1], CITY_MEMBERS as i64);

    let second = demo::seed(&settings).await.unwrap();
    assert!(second.already_seeded);
    assert_eq!(
        (second.organizations_created, second.members_created),
        (0, 0)
    );
    assert_eq!(second.city, first.city);
    assert_eq!(counts(&app).await, after_first);
    assert_eq!(demo::recorded(&app.db).await.unwrap(), Some(first.city));
}

#[tokio::test(flavor = "multi_thread")]
async fn organizations_with_the_demo_names_are_left_alone() {
    let app = spawn_app().await;
    let mut admin = app.root_admin().await;
    // What an API fuzzer left: a committee and a branch with the demo's names, a member in it
    // holding a demo username.
    let committee = create_org(
        &mut admin,
        &app.root,
        COMMITTEES[0],
        common::OrgKind::Committee,
    )
    .await;
    let branch = create_org(&mut admin, &committee, BRANCHES[0], common::OrgKind::Branch).await;
    let mut request = member_request(&branch, "模糊测试");
    request.username = Some("demo0002".into());
    request.password = Some("fuzzer-password-1".into());
    let fuzzed = admin.create_member(request).await.unwrap().into_inner();

    let settings = settings(&app.database, &app.bus, &app.keys);
    let summary = demo::seed(&settings).await.unwrap();
    assert_eq!(summary.organizations_created, CITY_ORGS);
    assert_eq!(summary.members_created, CITY_MEMBERS);
    assert_eq!(summary.usernames_taken, vec!["demo0002".to_owned()]);
    // The demo's own organizations, none of them the fuzzer's.
    let ids: Vec<String> = summary
        .city
        .committees
        .iter()
        .flat_map(|c| std::iter::once(c.id).chain(c.branches.iter().map(|b| b.id)))
        .map(|id| id.to_string())
        .collect();
    assert!(!ids.contains(&committee.id) && !ids.contains(&branch.id));
    // The fuzzer's branch still holds its one member, with its account.
    let listed = admin
        .list_members(pb::ListMembersRequest {
            org_id: branch.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.members.len(), 1);
    assert_eq!(listed.members[0].id, fuzzed.id);
    assert_eq!(
        query_i64(
            &app.db,
            "SELECT count(*) FROM accounts WHERE username = 'demo0002' AND member_id = $1::uuid",
            vec![fuzzed.id.clone().into()]
        )
        .await,
        1
    );
    // A second run changes nothing.
    let before = counts(&app).await;
    assert!(demo::seed(&settings).await.unwrap().already_seeded);
    assert_eq!(counts(&app).await, before);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_expelled_demo_member_stays_expelled() {
    let app = spawn_app().await;
    let settings = settings(&app.database, &app.bus, &app.keys);
    let city = demo::seed(&settings).await.unwrap().city;
    let mut admin = app.root_admin().await;
    // The first branch's secretary and another member are expelled through the API.
    let branch = &city.committees[0].branches[0];
    for m in &branch.members[..2] {
        admin
            .record_sanction(pb::RecordSanctionRequest {
                member_id: m.id.to_string(),
                kind: common::SanctionKind::Expulsion.into(),
                decided_on: "2026-11-01".into(),
                reason: "demo".into(),
            })
            .await
            .unwrap();
    }
    let before = counts(&app).await;
    assert!(demo::seed(&settings).await.unwrap().already_seeded);
    assert_eq!(counts(&app).await, before);

    // An interrupted seed (the marker not complete) carries on from the ids it holds: the
    // expelled members are neither recreated nor touched, and the secretary is not re-granted.
    app.db
        .execute_unprepared("UPDATE demo_seed SET complete = false")
        .await
        .unwrap();
    let again = demo::seed(&settings).await.unwrap();
    assert_eq!((again.organizations_created, again.members_created), (0, 0));
    assert_eq!(again.city, city);
    for m in &branch.members[..2] {
        let got = admin
            .get_member(pb::GetMemberRequest {
                id: m.id.to_string(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(got.status(), common::MemberStatus::Expelled);
    }
    assert_eq!(counts(&app).await, before);
}

/// A database seeded by the earlier seed (by names, before the marker) is not seeded again: a
/// second city would find every demo username taken. The earlier seed is known by its audit
/// rows' actor.
#[tokio::test(flavor = "multi_thread")]
async fn a_city_seeded_before_the_marker_is_left_as_it_is() {
    let app = spawn_app().await;
    let settings = settings(&app.database, &app.bus, &app.keys);
    // Bootstrap the root first (as the service does), then leave what the earlier seed left
    // in the audit log.
    let _ = app.root_admin().await;
    app.db
        .execute_unprepared(
            "INSERT INTO audit_log (id, actor, action, subject_type, subject_id) \
             VALUES (gen_random_uuid(), 'system:seed-demo', 'create', 'organization', 'x')",
        )
        .await
        .unwrap();
    let before = counts(&app).await;
    let summary = demo::seed(&settings).await.unwrap();
    assert!(summary.already_seeded);
    assert_eq!(
        (summary.organizations_created, summary.members_created),
        (0, 0)
    );
    assert_eq!(counts(&app).await, before);
    // And it stays so: the marker records it.
    let again = demo::seed(&settings).await.unwrap();
    assert!(again.already_seeded);
    assert_eq!(counts(&app).await, before);
}

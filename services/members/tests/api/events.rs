use crate::helpers::*;
use jifen_proto::common::v1 as common;
use jifen_proto::events::v1 as ev;
use jifen_proto::members::v1 as pb;
use prost::Message as _;

#[tokio::test(flavor = "multi_thread")]
async fn changes_stage_their_events_with_full_state_and_version() {
    let app = spawn_app().await;
    let (committee, branch) = committee_with_branch(&app, "八局").await;

    let (key, payload, traceparent) = outbox_for(&app.db, &committee.id).await.pop().unwrap();
    assert_eq!(key, "members.organization.created.v1");
    assert!(traceparent.is_some());
    let org = ev::OrganizationChanged::decode(payload.as_slice())
        .unwrap()
        .organization
        .unwrap();
    assert_eq!(
        (org.id, org.parent_id, org.path, org.version),
        (
            committee.id.clone(),
            app.root.id.clone(),
            committee.path.clone(),
            1
        )
    );
    assert_eq!(org.kind, common::OrgKind::Committee as i32);

    let mut admin = app.root_admin().await;
    let m = admin
        .create_member(pb::CreateMemberRequest {
            phone: Some("13700001234".into()),
            flags: vec![common::MemberFlag::Abroad.into()],
            ..member_request(&branch, "钱一")
        })
        .await
        .unwrap()
        .into_inner();
    let events = outbox_for(&app.db, &m.id).await;
    assert_eq!(events.len(), 1);
    let (key, payload, traceparent) = &events[0];
    assert_eq!(key, "members.member.created.v1");
    let tp = traceparent.as_deref().unwrap();
    assert_eq!(tp.split('-').count(), 4, "{tp}");
    let state = ev::MemberChanged::decode(payload.as_slice())
        .unwrap()
        .member
        .unwrap();
    assert_eq!(
        state,
        ev::MemberState {
            id: m.id.clone(),
            org_id: branch.id.clone(),
            org_path: branch.path.clone(),
            name: "钱一".into(),
            category: common::MemberCategory::Full.into(),
            status: common::MemberStatus::Active.into(),
            joined_on: "2010-07-01".into(),
            flags: vec![common::MemberFlag::Abroad.into()],
            sanctions: vec![],
            version: 1,
        }
    );
    assert!(!String::from_utf8_lossy(payload).contains("13700001234"));

    admin
        .update_member(pb::UpdateMemberRequest {
            id: m.id.clone(),
            name: Some("钱二".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    let events = outbox_for(&app.db, &m.id).await;
    assert_eq!(events.len(), 2);
    assert_eq!(events[1].0, "members.member.updated.v1");
    let state = ev::MemberChanged::decode(events[1].1.as_slice())
        .unwrap()
        .member
        .unwrap();
    assert_eq!((state.name.as_str(), state.version), ("钱二", 2));
    // An update that changes nothing stages nothing.
    admin
        .update_member(pb::UpdateMemberRequest {
            id: m.id.clone(),
            name: Some("钱二".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(outbox_for(&app.db, &m.id).await.len(), 2);
    // Every change by a person is audited.
    assert_eq!(
        query_i64(
            &app.db,
            "SELECT count(*) FROM audit_log WHERE subject_id = $1 AND actor <> ''",
            vec![m.id.clone().into()]
        )
        .await,
        2
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_audit_log_is_append_only() {
    let app = spawn_app().await;
    committee_with_branch(&app, "九局").await;
    use sea_orm::ConnectionTrait as _;
    for sql in [
        "UPDATE audit_log SET actor = 'x'",
        "DELETE FROM audit_log",
        "TRUNCATE audit_log",
    ] {
        let err = app.db.execute_unprepared(sql).await.unwrap_err();
        assert!(err.to_string().contains("append-only"), "{sql}: {err}");
    }
    app.stop().await;
}

use crate::helpers::*;
use jifen_platform::auth::RoleName;
use jifen_proto::common::v1 as common;
use jifen_proto::members::v1 as pb;
use tonic::Code;

fn denied(status: &tonic::Status) -> bool {
    matches!(status.code(), Code::NotFound | Code::PermissionDenied)
}

#[tokio::test(flavor = "multi_thread")]
async fn admin_of_a_subtree_acts_inside_it_only() {
    let app = spawn_app().await;
    let (c1, b1) = committee_with_branch(&app, "一局").await;
    let (c2, b2) = committee_with_branch(&app, "二局").await;
    let mut admin1 = app.as_role(RoleName::Admin, &c1).await;
    create_org(&mut admin1, &c1, "第二支部", common::OrgKind::Branch).await;
    let m1 = create_member(&mut admin1, &b1, "甲").await;
    let m2 = create_member(&mut app.root_admin().await, &b2, "乙").await;

    // Outside the subtree, existence stays private.
    let err = admin1
        .create_organization(org_request(&c2, "x", common::OrgKind::Branch))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let err = admin1
        .get_organization(pb::GetOrganizationRequest {
            id: app.root.id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let err = admin1
        .get_member(pb::GetMemberRequest { id: m2.id.clone() })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    // Transfer out of the subtree: the destination is not visible.
    let err = admin1
        .transfer_member(pb::TransferMemberRequest {
            id: m1.id.clone(),
            to_org_id: b2.id.clone(),
            reason: "x".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(
        (err.code(), details(&err).1),
        (Code::NotFound, vec!["to_org_id".to_owned()])
    );
    // The root admin may.
    app.root_admin()
        .await
        .transfer_member(pb::TransferMemberRequest {
            id: m1.id.clone(),
            to_org_id: b2.id.clone(),
            reason: "调出".into(),
        })
        .await
        .unwrap();
    let err = admin1
        .get_member(pb::GetMemberRequest { id: m1.id.clone() })
        .await
        .unwrap_err();
    assert_eq!(
        err.code(),
        Code::NotFound,
        "once transferred out, the member is outside admin1's scope"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn secretary_of_branch_a_is_denied_everything_on_branch_b() {
    let app = spawn_app().await;
    let (committee, branch_a) = committee_with_branch(&app, "三局").await;
    let mut admin = app.root_admin().await;
    let branch_b = create_org(&mut admin, &committee, "第二支部", common::OrgKind::Branch).await;
    let b_member = admin
        .create_member(pb::CreateMemberRequest {
            username: Some("b-member".into()),
            password: Some("password-b".into()),
            ..member_request(&branch_b, "乙支部成员")
        })
        .await
        .unwrap()
        .into_inner();
    let a_member = create_member(&mut admin, &branch_a, "甲支部成员").await;
    let mut sec = app.as_role(RoleName::Secretary, &branch_a).await;

    // Own branch: allowed.
    sec.get_organization(pb::GetOrganizationRequest {
        id: branch_a.id.clone(),
    })
    .await
    .unwrap();
    sec.get_member(pb::GetMemberRequest {
        id: a_member.id.clone(),
    })
    .await
    .unwrap();
    sec.list_members(pb::ListMembersRequest {
        org_id: branch_a.id.clone(),
        ..Default::default()
    })
    .await
    .unwrap();

    let b = || branch_b.id.clone();
    let bm = || b_member.id.clone();
    let results: Vec<(&str, tonic::Status)> = vec![
        (
            "GetOrganization",
            sec.get_organization(pb::GetOrganizationRequest { id: b() })
                .await
                .unwrap_err(),
        ),
        (
            "ListChildOrganizations",
            sec.list_child_organizations(pb::ListChildOrganizationsRequest {
                id: b(),
                ..Default::default()
            })
            .await
            .unwrap_err(),
        ),
        (
            "CreateOrganization",
            sec.create_organization(org_request(&branch_b, "组", common::OrgKind::Group))
                .await
                .unwrap_err(),
        ),
        (
            "AssignRole",
            sec.assign_role(pb::AssignRoleRequest {
                org_id: b(),
                member_id: bm(),
                role: common::Role::Secretary.into(),
            })
            .await
            .unwrap_err(),
        ),
        (
            "CreateMember",
            sec.create_member(member_request(&branch_b, "丙"))
                .await
                .unwrap_err(),
        ),
        (
            "GetMember",
            sec.get_member(pb::GetMemberRequest { id: bm() })
                .await
                .unwrap_err(),
        ),
        (
            "UpdateMember",
            sec.update_member(pb::UpdateMemberRequest {
                id: bm(),
                name: Some("改名".into()),
                ..Default::default()
            })
            .await
            .unwrap_err(),
        ),
        (
            "ListMembers",
            sec.list_members(pb::ListMembersRequest {
                org_id: b(),
                ..Default::default()
            })
            .await
            .unwrap_err(),
        ),
        (
            "TransferMember",
            sec.transfer_member(pb::TransferMemberRequest {
                id: bm(),
                to_org_id: branch_a.id.clone(),
                reason: "x".into(),
            })
            .await
            .unwrap_err(),
        ),
        (
            "ListTransfers",
            sec.list_transfers(pb::ListTransfersRequest { member_id: bm() })
                .await
                .unwrap_err(),
        ),
        (
            "RecordSanction",
            sec.record_sanction(pb::RecordSanctionRequest {
                member_id: bm(),
                kind: common::SanctionKind::Warning.into(),
                decided_on: "2024-01-01".into(),
                reason: "x".into(),
            })
            .await
            .unwrap_err(),
        ),
        (
            "ListSanctions",
            sec.list_sanctions(pb::ListSanctionsRequest { member_id: bm() })
                .await
                .unwrap_err(),
        ),
        (
            "GetPrincipal",
            sec.get_principal(pb::GetPrincipalRequest {
                subject: uuid::Uuid::now_v7().to_string(),
            })
            .await
            .unwrap_err(),
        ),
    ];
    for (rpc, status) in &results {
        assert!(denied(status), "{rpc}: {status:?}");
    }
    // Import: the row naming branch B is reported, nothing is written.
    let csv = format!(
        "name,gender,category,joined_on,phone,id_card,org_id\n丁,,full,2015-01-01,,,{}\n",
        branch_b.id
    );
    let outcome = sec
        .import_members(pb::ImportMembersRequest {
            csv: csv.into_bytes(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(outcome.created, 0);
    assert_eq!(
        (outcome.errors[0].row, outcome.errors[0].field.as_str()),
        (2, "org_id")
    );

    // Nothing in branch B changed.
    let unchanged = admin
        .get_member(pb::GetMemberRequest { id: bm() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (unchanged.version, unchanged.name.as_str()),
        (1, "乙支部成员")
    );
    let count = admin
        .get_organization(pb::GetOrganizationRequest { id: b() })
        .await
        .unwrap()
        .into_inner()
        .member_count;
    assert_eq!(count, 1);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_member_reads_self_and_own_org_only() {
    let app = spawn_app().await;
    let (_, branch) = committee_with_branch(&app, "四局").await;
    let mut admin = app.root_admin().await;
    let me = create_member(&mut admin, &branch, "本人").await;
    let colleague = create_member(&mut admin, &branch, "同事").await;
    let mut client = app.as_member(&me).await;

    client
        .get_member(pb::GetMemberRequest { id: me.id.clone() })
        .await
        .unwrap();
    client
        .list_transfers(pb::ListTransfersRequest {
            member_id: me.id.clone(),
        })
        .await
        .unwrap();
    client
        .list_sanctions(pb::ListSanctionsRequest {
            member_id: me.id.clone(),
        })
        .await
        .unwrap();
    let org = client
        .get_organization(pb::GetOrganizationRequest {
            id: branch.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(org.id, branch.id);

    let err = client
        .get_member(pb::GetMemberRequest {
            id: colleague.id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let err = client
        .get_organization(pb::GetOrganizationRequest {
            id: app.root.id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let err = client
        .update_member(pb::UpdateMemberRequest {
            id: me.id.clone(),
            name: Some("改".into()),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    let err = client
        .list_members(pb::ListMembersRequest {
            org_id: branch.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    let err = client
        .create_member(member_request(&branch, "x"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    let err = client
        .import_members(pb::ImportMembersRequest {
            csv: b"name".to_vec(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_valid_token_only_authenticate_answers() {
    let app = spawn_app().await;
    let mut anonymous = app.client(None).await;
    let id = app.root.id.clone();
    let errs = vec![
        anonymous
            .get_organization(pb::GetOrganizationRequest { id: id.clone() })
            .await
            .unwrap_err(),
        anonymous
            .create_organization(org_request(&app.root, "x", common::OrgKind::Committee))
            .await
            .unwrap_err(),
        anonymous
            .list_members(pb::ListMembersRequest {
                org_id: id.clone(),
                ..Default::default()
            })
            .await
            .unwrap_err(),
        anonymous
            .get_member(pb::GetMemberRequest { id: id.clone() })
            .await
            .unwrap_err(),
        anonymous
            .import_members(pb::ImportMembersRequest { csv: vec![] })
            .await
            .unwrap_err(),
        anonymous
            .get_principal(pb::GetPrincipalRequest {
                subject: id.clone(),
            })
            .await
            .unwrap_err(),
    ];
    for e in errs {
        assert_eq!(e.code(), Code::Unauthenticated, "{e:?}");
    }
    // A token signed by an unknown key is refused too.
    let stranger = Keys::generate();
    let mut forged = app
        .client(Some(&stranger.role_token(RoleName::Admin, &app.root)))
        .await;
    let err = forged
        .get_organization(pb::GetOrganizationRequest { id })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    anonymous
        .authenticate(pb::AuthenticateRequest {
            username: "admin".into(),
            password: "jifen-admin".into(),
        })
        .await
        .unwrap();
    app.stop().await;
}

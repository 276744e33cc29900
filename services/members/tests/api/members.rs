use crate::helpers::*;
use jifen_platform::auth::RoleName;
use jifen_proto::common::v1 as common;
use jifen_proto::members::v1 as pb;
use sea_orm::{ConnectionTrait as _, DbBackend, Statement};
use tonic::Code;

#[tokio::test(flavor = "multi_thread")]
async fn committee_branch_member_with_masked_and_clear_personal_data() {
    let app = spawn_app().await;
    let mut admin = app.root_admin().await;
    let committee = create_org(
        &mut admin,
        &app.root,
        "市发改委机关党委",
        common::OrgKind::Committee,
    )
    .await;
    assert_eq!(committee.parent_id, app.root.id);
    assert_eq!(
        committee.path,
        format!("{}{}/", app.root.path, committee.id)
    );
    let branch = create_org(
        &mut admin,
        &committee,
        "第一党支部",
        common::OrgKind::Branch,
    )
    .await;
    assert_eq!(branch.path, format!("{}{}/", committee.path, branch.id));
    let card = id_card(7);
    let created = admin
        .create_member(pb::CreateMemberRequest {
            phone: Some("13812345678".into()),
            id_card: Some(card.clone()),
            username: Some("Zhang.San".into()),
            password: Some("s3cret-pass".into()),
            flags: vec![common::MemberFlag::Mobile.into()],
            ..member_request(&branch, "张三")
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(created.version, 1);
    assert_eq!(created.status, common::MemberStatus::Active as i32);
    assert_eq!(created.org_path, branch.path);
    assert_eq!(created.phone_masked, "138****5678");
    assert_eq!(
        created.id_card_masked,
        format!("{}***********{}", &card[..3], &card[14..])
    );
    assert_eq!(
        (created.phone.as_deref(), created.id_card.as_deref()),
        (None, None),
        "masked for the admin"
    );
    assert_eq!(created.username.as_deref(), Some("zhang.san"));
    assert!(
        uuid::Uuid::parse_str(&created.id)
            .unwrap()
            .get_version_num()
            == 7
    );

    // The member themself sees clear values; the admin only masked ones.
    let mut me = app.as_member(&created).await;
    let mine = me
        .get_member(pb::GetMemberRequest {
            id: created.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(mine.phone.as_deref(), Some("13812345678"));
    assert_eq!(mine.id_card.as_deref(), Some(card.as_str()));
    let theirs = admin
        .get_member(pb::GetMemberRequest {
            id: created.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(theirs.phone, None);
    assert_eq!(theirs.phone_masked, "138****5678");

    // The account logs in with the implicit member role over its branch.
    let p = app
        .client(None)
        .await
        .authenticate(pb::AuthenticateRequest {
            username: "zhang.san".into(),
            password: "s3cret-pass".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(p.member_id.as_deref(), Some(created.id.as_str()));
    assert_eq!(p.roles.len(), 1);
    assert_eq!(
        (p.roles[0].role, p.roles[0].org_path.as_str()),
        (common::Role::Member as i32, branch.path.as_str())
    );

    // Nothing in the database holds the clear numbers.
    let rows = app
        .db
        .query_all_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT row_to_json(m)::text AS j, phone_cipher, id_card_cipher FROM members m \
             UNION ALL SELECT row_to_json(a)::text, NULL, NULL FROM audit_log a \
             UNION ALL SELECT row_to_json(o)::text, payload, NULL FROM outbox o",
        ))
        .await
        .unwrap();
    assert!(rows.len() >= 3);
    for row in &rows {
        let json: String = row.try_get("", "j").unwrap();
        assert!(
            !json.contains("13812345678") && !json.contains(&card),
            "{json}"
        );
        assert!(
            !json.contains(&card[6..14]),
            "birth date of the ID card in {json}"
        );
        for col in ["phone_cipher", "id_card_cipher"] {
            let bytes: Option<Vec<u8>> = row.try_get("", col).unwrap();
            if let Some(bytes) = bytes {
                assert!(!bytes.windows(11).any(|w| w == b"13812345678"));
                assert!(!bytes.windows(18).any(|w| w == card.as_bytes()));
            }
        }
    }

    // Counts cover the subtree.
    let get = |id: &str| pb::GetOrganizationRequest { id: id.to_owned() };
    assert_eq!(
        admin
            .get_organization(get(&branch.id))
            .await
            .unwrap()
            .into_inner()
            .member_count,
        1
    );
    assert_eq!(
        admin
            .get_organization(get(&committee.id))
            .await
            .unwrap()
            .into_inner()
            .member_count,
        1
    );
    assert_eq!(
        admin
            .get_organization(get(&app.root.id))
            .await
            .unwrap()
            .into_inner()
            .member_count,
        1
    );
    let children = admin
        .list_child_organizations(pb::ListChildOrganizationsRequest {
            id: app.root.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(children.organizations.len(), 1);
    assert_eq!(children.organizations[0].member_count, 1);
    assert_eq!(children.next_page_token, "");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_names_every_field_and_rules_are_enforced() {
    let app = spawn_app().await;
    let (committee, branch) = committee_with_branch(&app, "市教育局").await;
    let mut admin = app.root_admin().await;

    let err = admin
        .create_member(pb::CreateMemberRequest {
            org_id: "not-a-uuid".into(),
            name: " ".into(),
            category: 0,
            joined_on: "2999-01-01".into(),
            phone: Some("23812345678".into()),
            id_card: Some("110105194912310021".into()),
            username: Some("ab".into()),
            password: Some("short".into()),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let (_, fields) = details(&err);
    for f in [
        "org_id",
        "name",
        "category",
        "joined_on",
        "phone",
        "id_card",
        "username",
        "password",
    ] {
        assert!(fields.contains(&f.to_owned()), "{f} in {fields:?}");
    }

    let err = admin
        .create_organization(pb::CreateOrganizationRequest {
            parent_id: "x".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(details(&err).1, vec!["parent_id", "name", "kind"]);

    // Unknown id → NOT_FOUND.
    let err = admin
        .get_member(pb::GetMemberRequest {
            id: uuid::Uuid::now_v7().to_string(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);

    // Shape rules → OUT_OF_RANGE (422).
    let err = admin
        .create_organization(org_request(&committee, "小组", common::OrgKind::Group))
        .await
        .unwrap_err();
    assert_eq!(
        (err.code(), details(&err).0.as_deref()),
        (Code::OutOfRange, Some("kind_not_allowed_under_parent"))
    );
    let group = create_org(&mut admin, &branch, "第一党小组", common::OrgKind::Group).await;
    let err = admin
        .create_organization(org_request(&group, "x", common::OrgKind::Group))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::OutOfRange);
    let err = admin
        .create_member(member_request(&committee, "王五"))
        .await
        .unwrap_err();
    assert_eq!(
        (err.code(), details(&err).0.as_deref()),
        (Code::OutOfRange, Some("org_holds_no_members"))
    );
    assert_eq!(details(&err).1, vec!["org_id"]);
    let in_group = create_member(&mut admin, &group, "赵六").await;
    assert_eq!(in_group.org_path, group.path);

    // Uniqueness → ALREADY_EXISTS with the machine code and the field.
    let card = id_card(11);
    admin
        .create_member(pb::CreateMemberRequest {
            id_card: Some(card.clone()),
            username: Some("wang".into()),
            password: Some("password-1".into()),
            ..member_request(&branch, "王一")
        })
        .await
        .unwrap();
    let err = admin
        .create_member(pb::CreateMemberRequest {
            id_card: Some(card.to_lowercase()),
            ..member_request(&branch, "王二")
        })
        .await
        .unwrap_err();
    assert_eq!(
        (err.code(), details(&err)),
        (
            Code::AlreadyExists,
            (Some("id_card_taken".into()), vec!["id_card".into()])
        )
    );
    let err = admin
        .create_member(pb::CreateMemberRequest {
            username: Some("WANG".into()),
            password: Some("password-2".into()),
            ..member_request(&branch, "王三")
        })
        .await
        .unwrap_err();
    assert_eq!(
        (err.code(), details(&err)),
        (
            Code::AlreadyExists,
            (Some("username_taken".into()), vec!["username".into()])
        )
    );

    // Expelled is not an update; roles need an account.
    let m = create_member(&mut admin, &branch, "孙七").await;
    let err = admin
        .update_member(pb::UpdateMemberRequest {
            id: m.id.clone(),
            status: Some(common::MemberStatus::Expelled.into()),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::OutOfRange);
    let err = admin
        .assign_role(pb::AssignRoleRequest {
            org_id: branch.id.clone(),
            member_id: m.id.clone(),
            role: common::Role::Secretary.into(),
        })
        .await
        .unwrap_err();
    assert_eq!(
        (err.code(), details(&err).0.as_deref()),
        (Code::FailedPrecondition, Some("member_has_no_account"))
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn update_changes_fields_and_bumps_the_version_once_per_change() {
    let app = spawn_app().await;
    let (_, branch) = committee_with_branch(&app, "市卫健委").await;
    let mut secretary = app.as_role(RoleName::Secretary, &branch).await;
    let m = create_member(&mut secretary, &branch, "周八").await;
    let updated = secretary
        .update_member(pb::UpdateMemberRequest {
            id: m.id.clone(),
            category: Some(common::MemberCategory::Probationary.into()),
            phone: Some("13900001111".into()),
            set_flags: true,
            flags: vec![
                common::MemberFlag::Retired.into(),
                common::MemberFlag::Exempt.into(),
            ],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(updated.version, 2);
    assert_eq!(
        updated.category,
        common::MemberCategory::Probationary as i32
    );
    assert_eq!(updated.phone_masked, "139****1111");
    assert_eq!(updated.flags.len(), 2);
    // The same values again change nothing.
    let same = secretary
        .update_member(pb::UpdateMemberRequest {
            id: m.id.clone(),
            category: Some(common::MemberCategory::Probationary.into()),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(same.version, 2);
    // Clearing the phone.
    let cleared = secretary
        .update_member(pb::UpdateMemberRequest {
            id: m.id.clone(),
            phone: Some(String::new()),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((cleared.version, cleared.phone_masked.as_str()), (3, ""));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn transfer_moves_the_member_and_keeps_history() {
    let app = spawn_app().await;
    let (committee, branch_a) = committee_with_branch(&app, "市财政局").await;
    let mut admin = app.as_role(RoleName::Admin, &committee).await;
    let branch_b = create_org(
        &mut admin,
        &committee,
        "第二党支部",
        common::OrgKind::Branch,
    )
    .await;
    let m = create_member(&mut admin, &branch_a, "吴九").await;

    let moved = admin
        .transfer_member(pb::TransferMemberRequest {
            id: m.id.clone(),
            to_org_id: branch_b.id.clone(),
            reason: "工作调动".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (
            moved.org_id.as_str(),
            moved.org_path.as_str(),
            moved.version
        ),
        (branch_b.id.as_str(), branch_b.path.as_str(), 2)
    );
    let history = admin
        .list_transfers(pb::ListTransfersRequest {
            member_id: m.id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .transfers;
    assert_eq!(history.len(), 1);
    assert_eq!(
        (
            history[0].from_org_id.as_str(),
            history[0].to_org_id.as_str()
        ),
        (branch_a.id.as_str(), branch_b.id.as_str())
    );
    assert_eq!(history[0].reason, "工作调动");
    assert!(chrono::DateTime::parse_from_rfc3339(&history[0].transferred_at).is_ok());

    let count = |id: String| pb::GetOrganizationRequest { id };
    assert_eq!(
        admin
            .get_organization(count(branch_a.id.clone()))
            .await
            .unwrap()
            .into_inner()
            .member_count,
        0
    );
    assert_eq!(
        admin
            .get_organization(count(branch_b.id.clone()))
            .await
            .unwrap()
            .into_inner()
            .member_count,
        1
    );

    // The event says where from and where to.
    let events = outbox_for(&app.db, &m.id).await;
    let (key, payload, _) = events.last().unwrap();
    assert_eq!(key, "members.member.transferred.v1");
    let changed =
        <jifen_proto::events::v1::MemberChanged as prost::Message>::decode(payload.as_slice())
            .unwrap();
    assert_eq!(changed.member.unwrap().version, 2);
    let t = changed.transfer.unwrap();
    assert_eq!(
        (t.from_org_id, t.to_org_id, t.reason),
        (
            branch_a.id.clone(),
            branch_b.id.clone(),
            "工作调动".to_owned()
        )
    );

    // Same organization, a committee, or a missing reason are refused.
    let err = admin
        .transfer_member(pb::TransferMemberRequest {
            id: m.id.clone(),
            to_org_id: branch_b.id.clone(),
            reason: "x".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    let err = admin
        .transfer_member(pb::TransferMemberRequest {
            id: m.id.clone(),
            to_org_id: committee.id.clone(),
            reason: "x".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::OutOfRange);
    let err = admin
        .transfer_member(pb::TransferMemberRequest {
            id: m.id.clone(),
            to_org_id: branch_a.id.clone(),
            reason: " ".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(
        (err.code(), details(&err).1),
        (Code::InvalidArgument, vec!["reason".to_owned()])
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sanctions_and_expulsion() {
    let app = spawn_app().await;
    let (committee, branch) = committee_with_branch(&app, "市交通局").await;
    let mut admin = app.as_role(RoleName::Admin, &committee).await;
    let m = create_member(&mut admin, &branch, "郑十").await;
    let warning = admin
        .record_sanction(pb::RecordSanctionRequest {
            member_id: m.id.clone(),
            kind: common::SanctionKind::Warning.into(),
            decided_on: "2024-03-01".into(),
            reason: "违反工作纪律".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(warning.kind, common::SanctionKind::Warning as i32);
    assert_eq!(warning.decided_on, "2024-03-01");
    let still = admin
        .get_member(pb::GetMemberRequest { id: m.id.clone() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (still.status, still.version),
        (common::MemberStatus::Active as i32, 2)
    );

    admin
        .record_sanction(pb::RecordSanctionRequest {
            member_id: m.id.clone(),
            kind: common::SanctionKind::Expulsion.into(),
            decided_on: "2025-01-15".into(),
            reason: "严重违纪".into(),
        })
        .await
        .unwrap();
    let expelled = admin
        .get_member(pb::GetMemberRequest { id: m.id.clone() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (expelled.status, expelled.version),
        (common::MemberStatus::Expelled as i32, 3)
    );
    let list = admin
        .list_sanctions(pb::ListSanctionsRequest {
            member_id: m.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(list.sanctions.len(), 2);

    let (key, payload, _) = outbox_for(&app.db, &m.id).await.pop().unwrap();
    assert_eq!(key, "members.member.sanctioned.v1");
    let state =
        <jifen_proto::events::v1::MemberChanged as prost::Message>::decode(payload.as_slice())
            .unwrap()
            .member
            .unwrap();
    assert_eq!(state.sanctions.len(), 2);
    assert_eq!(
        (state.status, state.version),
        (common::MemberStatus::Expelled as i32, 3)
    );

    // Nothing more can be recorded; a secretary may not sanction; the member is no longer counted.
    let err = admin
        .record_sanction(pb::RecordSanctionRequest {
            member_id: m.id.clone(),
            kind: common::SanctionKind::Warning.into(),
            decided_on: "2025-02-01".into(),
            reason: "x".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(
        (err.code(), details(&err).0.as_deref()),
        (Code::FailedPrecondition, Some("member_expelled"))
    );
    let other = create_member(&mut admin, &branch, "冯十一").await;
    let mut secretary = app.as_role(RoleName::Secretary, &branch).await;
    let err = secretary
        .record_sanction(pb::RecordSanctionRequest {
            member_id: other.id.clone(),
            kind: common::SanctionKind::Warning.into(),
            decided_on: "2025-02-01".into(),
            reason: "x".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    let org = admin
        .get_organization(pb::GetOrganizationRequest {
            id: branch.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(org.member_count, 1);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn listings_page_by_id() {
    let app = spawn_app().await;
    let (committee, branch) = committee_with_branch(&app, "市水利局").await;
    let mut admin = app.root_admin().await;
    let group = create_org(&mut admin, &branch, "第一小组", common::OrgKind::Group).await;
    let mut ids = Vec::new();
    for i in 0..4 {
        ids.push(
            create_member(&mut admin, &branch, &format!("成员{i}"))
                .await
                .id,
        );
    }
    ids.push(create_member(&mut admin, &group, "小组成员").await.id);

    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let page = admin
            .list_members(pb::ListMembersRequest {
                org_id: committee.id.clone(),
                recursive: true,
                page_size: 2,
                page_token: token,
            })
            .await
            .unwrap()
            .into_inner();
        assert!(page.members.len() <= 2);
        seen.extend(page.members.into_iter().map(|m| m.id));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(seen, ids, "all members of the subtree, ordered by id");
    let direct = admin
        .list_members(pb::ListMembersRequest {
            org_id: branch.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        direct.members.len(),
        4,
        "not recursive: the group's member is not listed"
    );
    let err = admin
        .list_members(pb::ListMembersRequest {
            org_id: branch.id.clone(),
            page_token: "%%%".into(),
            page_size: -1,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(details(&err).1, vec!["page_size", "page_token"]);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn roles_granted_show_in_the_principal() {
    let app = spawn_app().await;
    let (_, branch) = committee_with_branch(&app, "市统计局").await;
    let mut admin = app.root_admin().await;
    let m = admin
        .create_member(pb::CreateMemberRequest {
            username: Some("secretary-li".into()),
            password: Some("password-li".into()),
            ..member_request(&branch, "李书记")
        })
        .await
        .unwrap()
        .into_inner();
    let assign = pb::AssignRoleRequest {
        org_id: branch.id.clone(),
        member_id: m.id.clone(),
        role: common::Role::Secretary.into(),
    };
    admin.assign_role(assign.clone()).await.unwrap();
    admin.assign_role(assign).await.unwrap(); // idempotent
    let p = app
        .client(None)
        .await
        .authenticate(pb::AuthenticateRequest {
            username: "secretary-li".into(),
            password: "password-li".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let roles: Vec<(i32, String)> = p.roles.iter().map(|r| (r.role, r.org_id.clone())).collect();
    assert_eq!(
        roles,
        vec![
            (common::Role::Secretary as i32, branch.id.clone()),
            (common::Role::Member as i32, branch.id.clone())
        ]
    );
    // The service identity reads the same principal; nobody else may.
    let service = app
        .client(Some(&app.keys.service_token()))
        .await
        .get_principal(pb::GetPrincipalRequest {
            subject: p.subject.clone(),
        })
        .await;
    assert_eq!(service.unwrap().into_inner(), p);
    let err = admin
        .get_principal(pb::GetPrincipalRequest {
            subject: p.subject.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    // With the granted role the secretary manages the branch.
    let mut secretary = app.client(Some(&app.keys.token_for(&p))).await;
    create_member(&mut secretary, &branch, "新成员").await;
    // An expelled member's account can no longer log in.
    admin
        .record_sanction(pb::RecordSanctionRequest {
            member_id: m.id.clone(),
            kind: common::SanctionKind::Expulsion.into(),
            decided_on: "2025-01-01".into(),
            reason: "x".into(),
        })
        .await
        .unwrap();
    let err = app
        .client(None)
        .await
        .authenticate(pb::AuthenticateRequest {
            username: "secretary-li".into(),
            password: "password-li".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    app.stop().await;
}

/// Defence in depth (issue 15, point 5): the service itself refuses a NUL in text it stores or
/// looks up, naming the field, instead of failing the query (500) — whoever calls it.
#[tokio::test(flavor = "multi_thread")]
async fn a_nul_in_stored_or_looked_up_text_is_invalid_argument() {
    let app = spawn_app().await;
    let mut anonymous = app.client(None).await;
    let status = anonymous
        .authenticate(pb::AuthenticateRequest {
            username: "ad\0min".into(),
            password: "jifen-admin".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(details(&status).1, ["username"]);

    let mut admin = app.root_admin().await;
    let status = admin
        .create_organization(org_request(&app.root, "党\0委", common::OrgKind::Committee))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(details(&status).1, ["name"]);

    let status = admin
        .import_members(pb::ImportMembersRequest {
            csv: b"name,gender,category,joined_on,phone,id_card,org_id\n\0,,,,,,\n".to_vec(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(details(&status).1, ["csv"]);
    app.stop().await;
}

use crate::helpers::*;
use jifen_platform::auth::RoleName;
use jifen_proto::members::v1 as pb;

const HEADER: &str = "name,gender,category,joined_on,phone,id_card,org_id";

async fn member_count(app: &TestApp) -> i64 {
    query_i64(&app.db, "SELECT count(*) FROM members", vec![]).await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_good_file_creates_every_member_with_its_event() {
    let app = spawn_app().await;
    let (_, branch) = committee_with_branch(&app, "五局").await;
    let mut sec = app.as_role(RoleName::Secretary, &branch).await;
    let csv = format!(
        "{HEADER}\n张一,男,full,2001-07-01,13800000001,{},{b}\n李二,female,probationary,2023-05-04,,,{b}\n\"王, 三\",,full,1990-01-01,13800000003,{},{b}\n",
        id_card(101),
        id_card(102),
        b = branch.id
    );
    let outcome = sec
        .import_members(pb::ImportMembersRequest {
            csv: csv.into_bytes(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(outcome.errors, vec![]);
    assert_eq!(outcome.created, 3);
    let listed = sec
        .list_members(pb::ListMembersRequest {
            org_id: branch.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let names: Vec<&str> = listed.members.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, vec!["张一", "李二", "王, 三"]);
    assert_eq!(listed.members[0].phone_masked, "138****0001");
    assert_eq!(
        query_i64(
            &app.db,
            "SELECT count(*) FROM outbox WHERE routing_key = 'members.member.created.v1'",
            vec![]
        )
        .await,
        3
    );
    assert_eq!(
        query_i64(
            &app.db,
            "SELECT count(*) FROM audit_log WHERE action = 'member.import'",
            vec![]
        )
        .await,
        3
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn one_bad_row_and_nothing_is_written() {
    let app = spawn_app().await;
    let (_, branch) = committee_with_branch(&app, "六局").await;
    let mut admin = app.root_admin().await;
    let before = member_count(&app).await;
    let csv = format!(
        "{HEADER}\n张一,male,full,2001-07-01,,,{b}\n李二,female,full,2001-07-01,1380000,,{b}\n王三,male,full,2001-07-01,,,{b}\n",
        b = branch.id
    );
    let outcome = admin
        .import_members(pb::ImportMembersRequest {
            csv: csv.into_bytes(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(outcome.created, 0);
    assert_eq!(outcome.errors.len(), 1);
    assert_eq!(
        (outcome.errors[0].row, outcome.errors[0].field.as_str()),
        (3, "phone")
    );
    assert_eq!(member_count(&app).await, before);
    assert_eq!(
        query_i64(
            &app.db,
            "SELECT count(*) FROM outbox WHERE routing_key LIKE 'members.member.%'",
            vec![]
        )
        .await,
        0
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn several_bad_rows_are_all_reported() {
    let app = spawn_app().await;
    let (committee, branch) = committee_with_branch(&app, "七局").await;
    let mut admin = app.root_admin().await;
    let registered = id_card(201);
    admin
        .create_member(pb::CreateMemberRequest {
            id_card: Some(registered.clone()),
            ..member_request(&branch, "已登记")
        })
        .await
        .unwrap();
    let before = member_count(&app).await;
    let dup = id_card(202);
    let csv = format!(
        "{HEADER}\n\
         好的,male,full,2001-07-01,,{dup},{b}\n\
         ,robot,member,2001-13-01,12,{bad_card},{b}\n\
         重复,male,full,2001-07-01,,{dup},{b}\n\
         已有,male,full,2001-07-01,,{registered},{b}\n\
         党委,male,full,2001-07-01,,,{c}\n\
         无组织,male,full,2001-07-01,,,{missing}\n\
         缺列,male\n",
        b = branch.id,
        c = committee.id,
        bad_card = "110105194912310021",
        missing = uuid::Uuid::now_v7(),
    );
    let outcome = admin
        .import_members(pb::ImportMembersRequest {
            csv: csv.into_bytes(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(outcome.created, 0);
    let got: Vec<(i32, &str)> = outcome
        .errors
        .iter()
        .map(|e| (e.row, e.field.as_str()))
        .collect();
    assert_eq!(
        got,
        vec![
            (3, "name"),
            (3, "gender"),
            (3, "category"),
            (3, "joined_on"),
            (3, "phone"),
            (3, "id_card"),
            (4, "id_card"),
            (5, "id_card"),
            (6, "org_id"),
            (7, "org_id"),
            (8, "row"),
        ]
    );
    assert!(
        outcome.errors[6].message.contains("line 2"),
        "{:?}",
        outcome.errors[6]
    );
    assert_eq!(member_count(&app).await, before);

    // A wrong header is reported as such.
    let outcome = admin
        .import_members(pb::ImportMembersRequest {
            csv: b"name,org_id\n".to_vec(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (
            outcome.created,
            outcome.errors[0].row,
            outcome.errors[0].field.as_str()
        ),
        (0, 1, "header")
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_largest_file_is_imported_in_one_go() {
    let app = spawn_app().await;
    let (_, branch) = committee_with_branch(&app, "十局").await;
    let mut admin = app.root_admin().await;
    let mut csv = String::from(HEADER);
    csv.push('\n');
    for i in 0..10_000u32 {
        csv.push_str(&format!(
            "成员{i},,full,2001-07-01,138{i:08},{},{}\n",
            id_card(i),
            branch.id
        ));
    }
    let started = std::time::Instant::now();
    let outcome = admin
        .import_members(pb::ImportMembersRequest {
            csv: csv.into_bytes(),
        })
        .await
        .unwrap()
        .into_inner();
    eprintln!("10 000 rows imported in {:?}", started.elapsed());
    assert_eq!((outcome.created, outcome.errors.len()), (10_000, 0));
    assert_eq!(member_count(&app).await, 10_000);
    app.stop().await;
}

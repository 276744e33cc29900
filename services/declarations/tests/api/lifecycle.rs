//! The service's own guarantees seen over gRPC: versions and transitions are kept and cannot be
//! rewritten, reminders go out once three days before the deadline, the replica follows members.

use crate::helpers::*;
use jifen_platform::auth::RoleName;
use jifen_proto::declarations::v1 as dpb;
use sea_orm::ConnectionTrait as _;

#[tokio::test(flavor = "multi_thread")]
async fn every_version_and_transition_is_kept_and_cannot_be_rewritten() {
    let c = spawn().await;
    let branch = c.branch("痕迹支部").await;
    let m = c.member(&branch, "李四").await;
    c.replicated(&[&m.id]).await;
    let mut me = c.decl(&c.member_token(&m)).await;
    let mut sec = c.decl(&c.role_token(RoleName::Secretary, &branch)).await;
    let save = |lines| dpb::SaveDeclarationRequest {
        member_id: m.id.clone(),
        month: "2026-11".into(),
        lines,
    };
    let d = me
        .save_declaration(save(vec![line("F01", 1, &[])]))
        .await
        .unwrap()
        .into_inner();
    me.save_declaration(save(vec![line("F01", 1, &[]), line("F04", 1, &[])]))
        .await
        .unwrap();
    me.submit_declaration(dpb::SubmitDeclarationRequest { id: d.id.clone() })
        .await
        .unwrap();
    sec.review_declaration(dpb::ReviewDeclarationRequest {
        id: d.id.clone(),
        decision: dpb::ReviewDecision::Return.into(),
        lines: vec![],
        comment: "补充说明".into(),
    })
    .await
    .unwrap();
    me.save_declaration(save(vec![line("F01", 1, &[])]))
        .await
        .unwrap();
    me.submit_declaration(dpb::SubmitDeclarationRequest { id: d.id.clone() })
        .await
        .unwrap();
    let approved = sec
        .review_declaration(dpb::ReviewDeclarationRequest {
            id: d.id.clone(),
            decision: dpb::ReviewDecision::Approve.into(),
            lines: vec![],
            comment: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        approved.version, 7,
        "two saves, submit, return, save, submit, approve"
    );
    assert_eq!(approved.approved_total, Some(10));

    let versions = count(
        &c.decl_db,
        "SELECT count(*) FROM declaration_versions WHERE declaration_id = $1::uuid",
        vec![d.id.clone().into()],
    )
    .await;
    assert_eq!(versions, 7, "every version is kept");
    let history = me
        .get_declaration_history(dpb::GetDeclarationHistoryRequest { id: d.id.clone() })
        .await
        .unwrap()
        .into_inner();
    let steps: Vec<(String, String)> = history
        .transitions
        .iter()
        .map(|t| (t.from_status.clone(), t.to_status.clone()))
        .collect();
    let expect = [
        ("", "draft"),
        ("draft", "submitted"),
        ("submitted", "returned"),
        ("returned", "draft"),
        ("draft", "submitted"),
        ("submitted", "approved"),
    ];
    assert_eq!(
        steps,
        expect
            .iter()
            .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
            .collect::<Vec<_>>()
    );
    assert_eq!(history.transitions[2].reason, "补充说明");
    assert!(history.transitions[2].actor_id.starts_with("secretary-"));

    for sql in [
        "UPDATE declaration_versions SET state = '{}'::jsonb",
        "DELETE FROM declaration_transitions",
        "TRUNCATE declaration_versions",
        "UPDATE declaration_transitions SET reason = 'x'",
        "DELETE FROM declaration_versions",
    ] {
        let err = c.decl_db.execute_unprepared(sql).await.unwrap_err();
        assert!(err.to_string().contains("append-only"), "{sql}: {err}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn reminders_go_out_once_three_days_before_the_deadline() {
    let c = spawn().await;
    let branch = c.branch("提醒支部").await;
    let done = c.member(&branch, "已报").await;
    let draft_only = c.member(&branch, "草稿").await;
    let silent = c.member(&branch, "未报").await;
    c.replicated(&[&done.id, &draft_only.id, &silent.id]).await;
    let mut d = c.decl(&c.member_token(&done)).await;
    let saved = d
        .save_declaration(dpb::SaveDeclarationRequest {
            member_id: done.id.clone(),
            month: "2026-11".into(),
            lines: vec![line("F01", 1, &[])],
        })
        .await
        .unwrap()
        .into_inner();
    d.submit_declaration(dpb::SubmitDeclarationRequest { id: saved.id })
        .await
        .unwrap();
    c.decl(&c.member_token(&draft_only))
        .await
        .save_declaration(dpb::SaveDeclarationRequest {
            member_id: draft_only.id.clone(),
            month: "2026-11".into(),
            lines: vec![line("F01", 1, &[])],
        })
        .await
        .unwrap();

    let app = reminder_app(&c).await;
    // 2026-12-01 (Shanghai) is four days before the deadline of 5 December: nothing yet.
    c.clock.set(at("2026-12-01T02:00:00Z"));
    assert_eq!(app.send_reminders().await.unwrap(), 0);
    // 2026-12-02 is three days before: the draft-only and the silent member, not the one who submitted.
    c.clock.set(at("2026-12-02T02:00:00Z"));
    assert_eq!(app.send_reminders().await.unwrap(), 2);
    c.clock.set(at("2026-12-02T10:00:00Z"));
    assert_eq!(
        app.send_reminders().await.unwrap(),
        0,
        "once per member and month"
    );
    let due = count(
        &c.decl_db,
        "SELECT count(*) FROM outbox WHERE routing_key = 'declarations.reminder.due.v1' AND subject = ANY($1)",
        vec![vec![draft_only.id.clone(), silent.id.clone()].into()],
    )
    .await;
    assert_eq!(due, 2);
}

/// The use-cases over the cluster's database and clock (the `remind` command does the same).
async fn reminder_app(c: &Cluster) -> jifen_declarations::usecases::Declarations {
    jifen_declarations::usecases::Declarations::new(
        c.decl_db.clone(),
        c.clock.clone(),
        jifen_declarations::usecases::EvidenceStore {
            dir: std::env::temp_dir(),
            max_bytes: 1024,
        },
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn publishing_a_standard_emits_the_whole_document_with_its_version() {
    use prost::Message as _;
    let c = spawn().await;
    let mut doc = jifen_standard::default_2026()
        .unwrap()
        .to_json_value()
        .unwrap();
    let mut extra = doc["items"][0].clone();
    extra["code"] = serde_json::json!("P99");
    extra["name"] = serde_json::json!("新增学习项目");
    doc["items"].as_array_mut().unwrap().push(extra);
    let published = c
        .decl(&c.admin_token())
        .await
        .put_standard(dpb::PutStandardRequest {
            year: 2026,
            document_json: doc.to_string(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((published.version, published.items.len()), (1, 51));

    let row = c
        .decl_db
        .query_one_raw(sea_orm::Statement::from_string(
            sea_orm::DbBackend::Postgres,
            "SELECT payload FROM outbox WHERE routing_key = 'declarations.standard.published.v1'",
        ))
        .await
        .unwrap()
        .expect("the publication staged its event");
    let payload: Vec<u8> = row.try_get("", "payload").unwrap();
    let event = jifen_proto::events::v1::StandardPublished::decode(payload.as_slice()).unwrap();
    assert_eq!((event.year, event.version), (2026, 1));
    let carried = jifen_standard::Standard::parse_json(&event.document_json).unwrap();
    assert_eq!(carried.items().len(), 51, "the whole document travels");
    assert!(carried.items().iter().any(|i| i.code == "P99"));
}

/// Saves and a submission of the same declaration at the same moment (each an unlocked read and
/// one guarded write): every acknowledged write is exactly one version, versions have no gap, the
/// row is the newest version, and a submission hands in the lines of a save that was answered.
#[tokio::test(flavor = "multi_thread")]
async fn concurrent_saves_and_a_submit_keep_one_gapless_history() {
    let c = spawn().await;
    let branch = c.branch("并发支部").await;
    let m = c.member(&branch, "王五").await;
    c.replicated(&[&m.id]).await;
    let me = c.decl(&c.member_token(&m)).await;
    let save = |tag: usize| dpb::SaveDeclarationRequest {
        member_id: m.id.clone(),
        month: "2026-11".into(),
        lines: vec![dpb::LineInput {
            note: format!("第{tag}次保存"),
            ..line("F01", 1, &[])
        }],
    };
    let first = me
        .clone()
        .save_declaration(save(0))
        .await
        .unwrap()
        .into_inner();
    let id = first.id.clone();

    let saves: Vec<_> = (1..=6)
        .map(|tag| {
            let (mut client, request) = (me.clone(), save(tag));
            tokio::spawn(async move { client.save_declaration(request).await })
        })
        .collect();
    let (mut submitter, request) = (me.clone(), dpb::SubmitDeclarationRequest { id: id.clone() });
    let submitted = tokio::spawn(async move { submitter.submit_declaration(request).await })
        .await
        .unwrap();
    let mut saved = Vec::new();
    for task in saves {
        saved.push(task.await.unwrap());
    }

    let mut acknowledged = 1; // the first save
    let mut saved_notes = vec!["第0次保存".to_owned()];
    for answer in &saved {
        match answer {
            Ok(d) => {
                acknowledged += 1;
                saved_notes.push(d.get_ref().lines[0].note.clone());
            }
            // The submission won first (`not_editable`), or the save lost three races in a row.
            Err(status) => assert!(
                ["not_editable", "concurrent_change"].contains(&code_of(status).as_str()),
                "{status:?}"
            ),
        }
    }
    match &submitted {
        Ok(_) => acknowledged += 1,
        Err(status) => assert_eq!(code_of(status), "concurrent_change", "{status:?}"),
    }

    // One version per acknowledged write, numbered 1..=n, the row at the newest.
    let rows = c
        .decl_db
        .query_all_raw(sea_orm::Statement::from_sql_and_values(
            sea_orm::DbBackend::Postgres,
            "SELECT version, state->>'status' AS status, state->'lines'->0->>'note' AS note
             FROM declaration_versions WHERE declaration_id = $1::uuid ORDER BY version",
            [id.clone().into()],
        ))
        .await
        .unwrap();
    let versions: Vec<(i64, String, String)> = rows
        .iter()
        .map(|r| {
            (
                r.try_get("", "version").unwrap(),
                r.try_get("", "status").unwrap(),
                r.try_get("", "note").unwrap(),
            )
        })
        .collect();
    let numbers: Vec<i64> = versions.iter().map(|v| v.0).collect();
    assert_eq!(
        numbers,
        (1..=acknowledged).collect::<Vec<i64>>(),
        "{versions:?}"
    );
    let row_version = count(
        &c.decl_db,
        "SELECT version FROM declarations WHERE id = $1::uuid",
        vec![id.clone().into()],
    )
    .await;
    assert_eq!(row_version, acknowledged);

    // Every version's lines are those of an answered save; a submission keeps the lines of the
    // version before it, and nothing changes them after it.
    for (version, _, note) in &versions {
        assert!(saved_notes.contains(note), "version {version}: {note}");
    }
    if submitted.is_ok() {
        let at = versions.iter().position(|v| v.1 == "submitted").unwrap();
        assert_eq!(at, versions.len() - 1, "nothing is saved over a submission");
        assert_eq!(versions[at].2, versions[at - 1].2);
    } else {
        assert!(versions.iter().all(|v| v.1 == "draft"), "{versions:?}");
    }
}

/// Three first saves of the same month at the same moment: each is answered, in some order, as
/// one version of one declaration (a save that loses the race to create it saves over it). With
/// three writers a save loses at most twice, so its third attempt always lands.
#[tokio::test(flavor = "multi_thread")]
async fn simultaneous_first_saves_of_a_month_make_one_declaration() {
    let c = spawn().await;
    let branch = c.branch("同时支部").await;
    let m = c.member(&branch, "赵六").await;
    c.replicated(&[&m.id]).await;
    let me = c.decl(&c.member_token(&m)).await;
    let saves: Vec<_> = (0..3)
        .map(|tag| {
            let mut client = me.clone();
            let request = dpb::SaveDeclarationRequest {
                member_id: m.id.clone(),
                month: "2026-11".into(),
                lines: vec![dpb::LineInput {
                    note: format!("同时{tag}"),
                    ..line("F01", 1, &[])
                }],
            };
            tokio::spawn(async move { client.save_declaration(request).await })
        })
        .collect();
    let mut ids = Vec::new();
    let mut versions = Vec::new();
    for task in saves {
        let saved = task
            .await
            .unwrap()
            .expect("every save is answered")
            .into_inner();
        ids.push(saved.id);
        versions.push(saved.version);
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "one declaration: {ids:?}");
    versions.sort_unstable();
    assert_eq!(versions, vec![1, 2, 3]);
    let kept = count(
        &c.decl_db,
        "SELECT count(*) FROM declaration_versions WHERE declaration_id = $1::uuid",
        vec![ids[0].clone().into()],
    )
    .await;
    assert_eq!(kept, 3);
}

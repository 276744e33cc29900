//! The batch paths: declaring a branch-month in one transaction (`declare_batch`, the demo
//! history's use case) writes what saving and submitting one by one writes; a refused entry names
//! itself and its field and nothing is written; a batch approval approves the submitted ones and
//! skips the others with their reason.

use crate::helpers::*;
use jifen_declarations::domain::{LineInput, Month};
use jifen_declarations::usecases::{BatchEntry, BatchError, Declarations, EvidenceStore};
use jifen_platform::auth::RoleName;
use jifen_proto::declarations::v1 as dpb;
use jifen_proto::events::v1 as ev;
use jifen_proto::members::v1 as mpb;
use prost::Message as _;
use sea_orm::{ConnectionTrait as _, DbBackend, Statement};
use uuid::Uuid;

/// The use cases over the cluster's declarations database and clock (the gRPC service runs the
/// same ones; the batch is not offered over gRPC).
fn usecases(c: &Cluster, evidence: &tempfile::TempDir) -> Declarations {
    Declarations::new(
        c.decl_db.clone(),
        c.clock.clone(),
        EvidenceStore {
            dir: evidence.path().to_owned(),
            max_bytes: 1024 * 1024,
        },
    )
}

fn input(code: &str, quantity: i64, note: &str, evidence: &[&str]) -> LineInput {
    LineInput {
        item_code: code.into(),
        quantity,
        note: note.into(),
        evidence: evidence.iter().map(|e| (*e).to_owned()).collect(),
    }
}

fn to_pb(l: &LineInput) -> dpb::LineInput {
    dpb::LineInput {
        item_code: l.item_code.clone(),
        quantity: i32::try_from(l.quantity).unwrap(),
        note: l.note.clone(),
        evidence: l.evidence.clone(),
    }
}

/// `text` with every UUID replaced: the member's id and name by placeholders, the declaration's
/// id by another, any other (line ids, event ids) by `<uuid>`.
fn normalize(text: &str, member: &mpb::Member, declaration: &str) -> String {
    let text = text
        .replace(&member.id, "<member>")
        .replace(declaration, "<declaration>")
        .replace(&member.name, "<name>");
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        let candidate = text.get(i..i + 36);
        if let Some(c) = candidate
            && [8, 13, 18, 23].iter().all(|&k| bytes[i + k] == b'-')
            && Uuid::parse_str(c).is_ok()
        {
            out.push_str("<uuid>");
            i += 36;
            continue;
        }
        let ch = text[i..].chars().next().unwrap();
        out.push(ch);
        i += ch.len_utf8();
    }
    out
}

/// Everything the service wrote about one member's declaration of a month, with ids and the
/// member's name replaced ([`normalize`]): the row, every version's snapshot, every transition,
/// the audit rows the member's actions left, and every staged event (type, subject, source,
/// decoded payload). Timestamps are kept: both paths run at the same manual instant.
async fn written(c: &Cluster, member: &mpb::Member, month: &str) -> Vec<String> {
    let rows = |sql: &str, values: Vec<sea_orm::Value>| {
        let statement = Statement::from_sql_and_values(DbBackend::Postgres, sql, values);
        async move { c.decl_db.query_all_raw(statement).await.unwrap() }
    };
    let declaration = rows(
        "SELECT id, to_jsonb(d) - 'id' - 'created_at' - 'updated_at' AS row FROM declarations d
         WHERE member_id = $1::uuid AND month = $2",
        vec![member.id.clone().into(), month.into()],
    )
    .await;
    assert_eq!(declaration.len(), 1, "one declaration of {month}");
    let id: Uuid = declaration[0].try_get("", "id").unwrap();
    let id_text = id.to_string();
    let mut out = Vec::new();
    let row: serde_json::Value = declaration[0].try_get("", "row").unwrap();
    out.push(format!("declaration {row}"));
    for r in rows(
        "SELECT version, state, recorded_at FROM declaration_versions
         WHERE declaration_id = $1 ORDER BY version",
        vec![id.into()],
    )
    .await
    {
        let version: i64 = r.try_get("", "version").unwrap();
        let state: serde_json::Value = r.try_get("", "state").unwrap();
        let at: chrono::DateTime<chrono::Utc> = r.try_get("", "recorded_at").unwrap();
        out.push(format!("version {version} {at} {state}"));
    }
    for r in rows(
        "SELECT version, actor_id, actor_name, from_status, to_status, reason, at
         FROM declaration_transitions WHERE declaration_id = $1 ORDER BY id",
        vec![id.into()],
    )
    .await
    {
        let t: (i64, String, String, String, String, String) = (
            r.try_get("", "version").unwrap(),
            r.try_get("", "actor_id").unwrap(),
            r.try_get("", "actor_name").unwrap(),
            r.try_get("", "from_status").unwrap(),
            r.try_get("", "to_status").unwrap(),
            r.try_get("", "reason").unwrap(),
        );
        let at: chrono::DateTime<chrono::Utc> = r.try_get("", "at").unwrap();
        out.push(format!("transition {t:?} {at}"));
    }
    for r in rows(
        "SELECT action, subject_type, subject_id, detail, reason, at FROM audit_log
         WHERE actor_id = $1 OR subject_id IN ($2, $3) ORDER BY id",
        vec![
            format!("member-{}", member.id).into(),
            member.id.clone().into(),
            id_text.clone().into(),
        ],
    )
    .await
    {
        let a: (String, String, String, serde_json::Value, String) = (
            r.try_get("", "action").unwrap(),
            r.try_get("", "subject_type").unwrap(),
            r.try_get("", "subject_id").unwrap(),
            r.try_get("", "detail").unwrap(),
            r.try_get("", "reason").unwrap(),
        );
        out.push(format!("audit {a:?}"));
    }
    for r in rows(
        "SELECT routing_key, subject, source, payload FROM outbox WHERE subject = $1 ORDER BY id",
        vec![id_text.clone().into()],
    )
    .await
    {
        let routing_key: String = r.try_get("", "routing_key").unwrap();
        let subject: String = r.try_get("", "subject").unwrap();
        let source: String = r.try_get("", "source").unwrap();
        let payload: Vec<u8> = r.try_get("", "payload").unwrap();
        let message = ev::DeclarationChanged::decode(payload.as_slice()).unwrap();
        out.push(format!(
            "event {routing_key} {subject} {source} {message:?}"
        ));
    }
    out.into_iter()
        .map(|line| normalize(&line, member, &id_text))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_batch_writes_what_saving_and_submitting_one_by_one_writes() {
    let c = spawn().await;
    let branch = c.branch("批量支部").await;
    // Two groups in the same starting states: one declares one by one over gRPC, the other in
    // one batch. [0] has nothing yet, [1] a saved draft, [2] a declaration the secretary
    // returned, [3] branch records of the month and a line that needs evidence.
    let mut single = Vec::new();
    let mut batch = Vec::new();
    for name in ["甲", "乙", "丙", "丁"] {
        single.push(c.member(&branch, &format!("单{name}")).await);
        batch.push(c.member(&branch, &format!("批{name}")).await);
    }
    let ids: Vec<&str> = single.iter().chain(&batch).map(|m| m.id.as_str()).collect();
    c.replicated(&ids).await;
    let mut sec = c.decl(&c.role_token(RoleName::Secretary, &branch)).await;
    let month = "2026-11";
    let save = |m: &mpb::Member, lines: &[LineInput]| dpb::SaveDeclarationRequest {
        member_id: m.id.clone(),
        month: month.into(),
        lines: lines.iter().map(to_pb).collect(),
    };
    let mut reference = String::new();
    for group in [&single, &batch] {
        let mut m1 = c.decl(&c.member_token(&group[1])).await;
        m1.save_declaration(save(&group[1], &[input("F04", 1, "草稿", &[])]))
            .await
            .unwrap();
        let mut m2 = c.decl(&c.member_token(&group[2])).await;
        let d2 = m2
            .save_declaration(save(&group[2], &[input("F01", 1, "", &[])]))
            .await
            .unwrap()
            .into_inner();
        m2.submit_declaration(dpb::SubmitDeclarationRequest { id: d2.id.clone() })
            .await
            .unwrap();
        sec.review_declaration(dpb::ReviewDeclarationRequest {
            id: d2.id,
            decision: dpb::ReviewDecision::Return.into(),
            lines: vec![],
            comment: "请补充说明".into(),
        })
        .await
        .unwrap();
        sec.record_branch_entries(dpb::RecordBranchEntriesRequest {
            org_id: branch.id.clone(),
            month: month.into(),
            entries: vec![dpb::BranchEntry {
                member_id: group[3].id.clone(),
                item_code: "P01".into(),
                quantity: 2,
                note: String::new(),
            }],
        })
        .await
        .unwrap();
        reference = c
            .decl(&c.member_token(&group[3]))
            .await
            .upload_evidence(dpb::UploadEvidenceRequest {
                content_type: "image/png".into(),
                file_name: "志愿服务.png".into(),
                data: png(7),
            })
            .await
            .unwrap()
            .into_inner()
            .reference;
    }
    let lines = |i: usize| match i {
        0 => vec![input("F01", 1, "学习强国", &[]), input("F04", 1, "", &[])],
        1 => vec![input("F04", 1, "改过的草稿", &[])],
        2 => vec![input("F01", 1, "已补充说明", &[])],
        _ => vec![
            input("F02", 2, "社区志愿服务", &[reference.as_str()]),
            input("F01", 1, "", &[]),
        ],
    };

    for (i, m) in single.iter().enumerate() {
        let mut me = c.decl(&c.member_token(m)).await;
        let saved = me
            .save_declaration(save(m, &lines(i)))
            .await
            .unwrap()
            .into_inner();
        me.submit_declaration(dpb::SubmitDeclarationRequest { id: saved.id })
            .await
            .unwrap();
    }
    let evidence = tempfile::tempdir().unwrap();
    let app = usecases(&c, &evidence);
    let entries: Vec<BatchEntry> = batch
        .iter()
        .enumerate()
        .map(|(i, m)| BatchEntry {
            actor: member_principal(m),
            member_id: m.id.parse().unwrap(),
            lines: lines(i),
        })
        .collect();
    let views = app
        .declare_batch(
            branch.id.parse().unwrap(),
            Month::parse(month).unwrap(),
            &entries,
        )
        .await
        .unwrap();
    let answered: Vec<(String, i64, i32, usize)> = views
        .iter()
        .map(|v| {
            (
                v.member_id.to_string(),
                v.version,
                v.claimed_total,
                v.branch_lines.len(),
            )
        })
        .collect();
    assert_eq!(
        answered,
        vec![
            (batch[0].id.clone(), 2, 20, 0),
            (batch[1].id.clone(), 3, 10, 0),
            (batch[2].id.clone(), 5, 10, 0),
            (batch[3].id.clone(), 2, 50, 1),
        ],
        "each entry's answer in entry order: its version, claimed points and branch lines"
    );

    for (one, many) in single.iter().zip(&batch) {
        let expected = written(&c, one, month).await;
        let got = written(&c, many, month).await;
        assert!(
            expected
                .iter()
                .any(|l| l.contains("declarations.declaration.submitted.v1")),
            "{expected:#?}"
        );
        assert_eq!(got, expected, "{} against {}", many.name, one.name);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_entry_names_itself_and_its_field_and_nothing_is_written() {
    let c = spawn().await;
    let branch = c.branch("拒绝支部").await;
    let mut people = Vec::new();
    for name in ["甲", "乙", "丙"] {
        people.push(c.member(&branch, name).await);
    }
    let ids: Vec<&str> = people.iter().map(|m| m.id.as_str()).collect();
    c.replicated(&ids).await;
    let evidence = tempfile::tempdir().unwrap();
    let app = usecases(&c, &evidence);
    let entry = |m: &mpb::Member, lines: Vec<LineInput>| BatchEntry {
        actor: member_principal(m),
        member_id: m.id.parse().unwrap(),
        lines,
    };
    // 甲 is fine; 乙 declares a quantity of 0 (a bad field); 丙 passes F01's monthly cap of one
    // point (a rule checked at submission, after the save would have passed).
    let entries = vec![
        entry(&people[0], vec![input("F01", 1, "", &[])]),
        entry(
            &people[1],
            vec![input("F04", 1, "", &[]), input("F01", 0, "", &[])],
        ),
        entry(&people[2], vec![input("F01", 2, "", &[])]),
    ];
    let err = app
        .declare_batch(
            branch.id.parse().unwrap(),
            Month::parse("2026-11").unwrap(),
            &entries,
        )
        .await
        .unwrap_err();
    let BatchError::Entries(refused) = &err else {
        panic!("expected refused entries, got {err:?}");
    };
    let named: Vec<(usize, String, &str, Vec<String>)> = refused
        .iter()
        .map(|e| (e.index, e.member_id.to_string(), e.code(), e.fields()))
        .collect();
    assert_eq!(
        named,
        vec![
            (
                1,
                people[1].id.clone(),
                "invalid",
                vec!["entries[1].lines[1].quantity".to_owned()]
            ),
            (
                2,
                people[2].id.clone(),
                "monthly_cap_exceeded",
                vec!["entries[2].lines[0].quantity".to_owned()]
            ),
        ]
    );
    let text = err.to_string();
    assert!(
        text.contains(&people[1].id) && text.contains("entries[1].lines[1].quantity: must be"),
        "{text}"
    );
    for (table, sql) in [
        ("declarations", "SELECT count(*) FROM declarations"),
        ("versions", "SELECT count(*) FROM declaration_versions"),
        (
            "transitions",
            "SELECT count(*) FROM declaration_transitions",
        ),
        (
            "events",
            "SELECT count(*) FROM outbox WHERE routing_key LIKE 'declarations.declaration.%'",
        ),
    ] {
        assert_eq!(count(&c.decl_db, sql, vec![]).await, 0, "{table}");
    }

    // Without the refused entries the same batch goes through.
    let views = app
        .declare_batch(
            branch.id.parse().unwrap(),
            Month::parse("2026-11").unwrap(),
            &entries[..1],
        )
        .await
        .unwrap();
    assert_eq!(views.len(), 1);
    assert_eq!(
        count(
            &c.decl_db,
            "SELECT count(*) FROM declarations WHERE status = 'submitted'",
            vec![]
        )
        .await,
        1
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_batch_approval_approves_the_submitted_and_skips_the_others_with_their_reason() {
    let c = spawn().await;
    let branch = c.branch("审核支部").await;
    let other = c.branch("别的支部").await;
    let mut people = Vec::new();
    for name in ["甲", "乙", "丙", "丁"] {
        people.push(c.member(&branch, name).await);
    }
    let stranger = c.member(&other, "外人").await;
    let mut ids: Vec<&str> = people.iter().map(|m| m.id.as_str()).collect();
    ids.push(&stranger.id);
    c.replicated(&ids).await;
    let declare = |m: mpb::Member, submit: bool| {
        let c = &c;
        async move {
            let mut me = c.decl(&c.member_token(&m)).await;
            let d = me
                .save_declaration(dpb::SaveDeclarationRequest {
                    member_id: m.id.clone(),
                    month: "2026-11".into(),
                    lines: vec![line("F01", 1, &[])],
                })
                .await
                .unwrap()
                .into_inner();
            if submit {
                me.submit_declaration(dpb::SubmitDeclarationRequest { id: d.id.clone() })
                    .await
                    .unwrap();
            }
            d.id
        }
    };
    let a = declare(people[0].clone(), true).await;
    let b = declare(people[1].clone(), true).await;
    let draft = declare(people[2].clone(), false).await;
    let final_year = declare(people[3].clone(), true).await;
    let outside = declare(stranger.clone(), true).await;
    // 丁's grade of 2026 is final (as the grading service's event would record it).
    c.decl_db
        .execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "INSERT INTO final_grades (member_id, year, org_id, org_path, finalized_at)
             VALUES ($1::uuid, 2026, $2::uuid, $3, now())",
            [
                people[3].id.clone().into(),
                branch.id.clone().into(),
                people[3].org_path.clone().into(),
            ],
        ))
        .await
        .unwrap();
    let unknown = Uuid::now_v7().to_string();

    let mut sec = c.decl(&c.role_token(RoleName::Secretary, &branch)).await;
    let answer = sec
        .batch_approve(dpb::BatchApproveRequest {
            org_id: branch.id.clone(),
            month: "2026-11".into(),
            declaration_ids: vec![
                a.clone(),
                draft.clone(),
                b.clone(),
                a.clone(),
                unknown.clone(),
                outside.clone(),
                final_year.clone(),
            ],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(answer.approved, 2);
    let skipped: Vec<(String, String)> = answer
        .skipped
        .iter()
        .map(|s| (s.id.clone(), s.reason.clone()))
        .collect();
    assert_eq!(
        skipped,
        vec![
            (draft.clone(), "not_submitted".to_owned()),
            (unknown, "not_found".to_owned()),
            (outside, "not_found".to_owned()),
            (final_year.clone(), "grading_final".to_owned()),
        ]
    );
    for (id, status) in [
        (&a, "approved"),
        (&b, "approved"),
        (&draft, "draft"),
        (&final_year, "submitted"),
    ] {
        let row = count(
            &c.decl_db,
            "SELECT count(*) FROM declarations WHERE id = $1::uuid AND status = $2",
            vec![id.clone().into(), status.into()],
        )
        .await;
        assert_eq!(row, 1, "{id} is {status}");
    }
    for id in [&a, &b] {
        let approved = count(
            &c.decl_db,
            "SELECT count(*) FROM declarations d
             JOIN declaration_transitions t ON t.declaration_id = d.id AND t.version = d.version
             JOIN declaration_versions v ON v.declaration_id = d.id AND v.version = d.version
             WHERE d.id = $1::uuid AND d.version = 3 AND d.approved_total = 10
               AND t.from_status = 'submitted' AND t.to_status = 'approved'
               AND v.state->>'status' = 'approved'",
            vec![id.clone().into()],
        )
        .await;
        assert_eq!(
            approved, 1,
            "{id}: version 3 with its transition and snapshot"
        );
        let rows = c
            .decl_db
            .query_all_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT payload FROM outbox
                 WHERE subject = $1 AND routing_key = 'declarations.declaration.approved.v1'",
                [id.clone().into()],
            ))
            .await
            .unwrap();
        assert_eq!(rows.len(), 1, "{id}: one approval event");
        let payload: Vec<u8> = rows[0].try_get("", "payload").unwrap();
        let state = ev::DeclarationChanged::decode(payload.as_slice())
            .unwrap()
            .declaration
            .unwrap();
        assert_eq!(
            (state.id.as_str(), state.version, state.approved_total),
            (id.as_str(), 3, Some(10))
        );
        assert_eq!(state.status(), ev::DeclarationStatus::Approved);
    }
}

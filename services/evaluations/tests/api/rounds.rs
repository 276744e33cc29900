//! Opening, scope, closing and the events of a round.
use crate::helpers::*;
use jifen_eventbus::OutgoingEvent;
use jifen_platform::auth::RoleName;
use jifen_platform::final_grades::MEMBER_GRADE_FINALIZED;
use jifen_proto::evaluations::v1 as pb;
use jifen_proto::events::v1 as ev;
use pb::Rating::{Excellent, Fair, Good, Poor};
use prost::Message as _;
use tonic::Code;

#[tokio::test(flavor = "multi_thread")]
async fn closing_computes_each_members_result_and_publishes_it() {
    let app = spawn_app().await;
    let b = app.branch(3).await;
    let round = app.open(&b, "2026-Q3").await;
    assert_eq!(
        (round.status(), round.roster_size, round.version),
        (pb::RoundStatus::Open, 3, 1)
    );
    let (m1, m2, m3) = (&b.members[0], &b.members[1], &b.members[2]);

    let codes = app.issue(&b, &round, 6, pb::EvaluatorKind::Masses).await;
    assert_eq!(codes.len(), 6);
    let ballots = [
        vec![rate(m1, Excellent), rate(m2, Good)],
        vec![rate(m1, Excellent), rate(m2, Poor)],
        vec![rate(m1, Good), rate(m2, Fair)],
        vec![rate(m1, Good)],
        vec![rate(m1, Fair), rate(m2, Poor)],
    ];
    for (code, ratings) in codes.iter().zip(ballots) {
        let (mut evaluator, _) = app.evaluator(code).await;
        evaluator.cast_ballot(cast(&round, ratings)).await.unwrap();
    }

    let mut secretary = app.as_role(RoleName::Secretary, &b.org).await;
    let closed = secretary
        .close_round(pb::CloseRoundRequest {
            id: round.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (closed.status(), closed.version),
        (pb::RoundStatus::Closed, 2)
    );
    assert_eq!(
        (closed.invited, closed.ballots, closed.min_ballots),
        (6, 5, 5)
    );
    let result = |m: &jifen_proto::members::v1::Member| {
        closed
            .results
            .iter()
            .find(|r| r.member_id == m.id)
            .unwrap()
            .clone()
    };
    // 成员01: 100 + 100 + 80 + 80 + 60 = 420 over 5 → 84.0, valid (5 ≥ min_ballots 5).
    let r1 = result(m1);
    assert_eq!(
        (
            r1.ballots,
            r1.score_total,
            r1.score,
            r1.poor_ballots,
            r1.valid
        ),
        (5, 4200, Some(840), 0, true)
    );
    // 成员02: 80 + 0 + 60 + 0 = 140 over 4 → 35.0, 2 poor of 4, not valid.
    let r2 = result(m2);
    assert_eq!(
        (
            r2.ballots,
            r2.score_total,
            r2.score,
            r2.poor_ballots,
            r2.valid
        ),
        (4, 1400, Some(350), 2, false)
    );
    // 成员03: nobody rated them.
    let r3 = result(m3);
    assert_eq!((r3.ballots, r3.score, r3.valid), (0, None, false));

    // The results are fixed: reading again answers the same, closing again is a conflict.
    let again = secretary
        .get_round(pb::GetRoundRequest {
            id: round.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again, closed);
    let err = secretary
        .close_round(pb::CloseRoundRequest {
            id: round.id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(
        (err.code(), details(&err).0.as_deref()),
        (Code::FailedPrecondition, Some("round_closed"))
    );
    use sea_orm::ConnectionTrait as _;
    for sql in [
        "UPDATE round_results SET score = 1000",
        "DELETE FROM ballots",
        "UPDATE rounds SET status = 'open'",
    ] {
        let e = app.db.execute_unprepared(sql).await.unwrap_err();
        assert!(
            e.to_string().contains("immutable") || e.to_string().contains("append-only"),
            "{sql}: {e}"
        );
    }

    // Events: opened (version 1, the roster) then closed (version 2, every result).
    let events = app.outbox_for(&round.id).await;
    let keys: Vec<&str> = events.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        ["evaluations.round.opened.v1", "evaluations.round.closed.v1"]
    );
    let opened = ev::EvaluationRoundChanged::decode(events[0].1.as_slice())
        .unwrap()
        .round
        .unwrap();
    assert_eq!(
        (opened.version, opened.roster.len(), opened.results.len()),
        (1, 3, 0)
    );
    let state = ev::EvaluationRoundChanged::decode(events[1].1.as_slice())
        .unwrap()
        .round
        .unwrap();
    assert_eq!(state.status(), ev::EvaluationRoundStatus::Closed);
    assert_eq!(
        (
            state.version,
            state.ballots,
            state.invited,
            state.min_ballots
        ),
        (2, 5, 6, 5)
    );
    assert_eq!(
        (
            state.score_excellent,
            state.score_good,
            state.score_fair,
            state.score_poor
        ),
        (1000, 800, 600, 0)
    );
    let e1 = state.results.iter().find(|r| r.member_id == m1.id).unwrap();
    assert_eq!((e1.ballots, e1.score, e1.valid), (5, Some(840), true));
    assert_eq!(state.results.len(), 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn opening_rules_and_scope() {
    let app = spawn_app().await;
    let b = app.branch(2).await;
    let other = app.branch(1).await;

    // Outside the caller's scope the branch does not exist; a member may not open at all.
    let err = app
        .as_role(RoleName::Secretary, &other.org)
        .await
        .open_round(pb::OpenRoundRequest {
            org_id: b.org.id.clone(),
            quarter: "2026-Q3".into(),
            closes_at: None,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let err = app
        .client(&app.member_token(&b.members[0]))
        .await
        .open_round(pb::OpenRoundRequest {
            org_id: b.org.id.clone(),
            quarter: "2026-Q3".into(),
            closes_at: None,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);

    // An admin of the committee above may; the quarter is then taken.
    let mut admin = app.as_role(RoleName::Admin, &b.committee).await;
    let round = admin
        .open_round(pb::OpenRoundRequest {
            org_id: b.org.id.clone(),
            quarter: "2026-Q2".into(),
            closes_at: None,
        })
        .await
        .unwrap()
        .into_inner();
    let err = app
        .as_role(RoleName::Secretary, &b.org)
        .await
        .open_round(pb::OpenRoundRequest {
            org_id: b.org.id.clone(),
            quarter: "2026-Q2".into(),
            closes_at: None,
        })
        .await
        .unwrap_err();
    assert_eq!(
        (err.code(), details(&err).0.as_deref()),
        (Code::AlreadyExists, Some("round_exists"))
    );

    // Bad input names every field; a committee holds no rounds; the future is not open yet.
    let err = admin
        .open_round(pb::OpenRoundRequest {
            org_id: "x".into(),
            quarter: "2026-Q9".into(),
            closes_at: Some("tomorrow".into()),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(details(&err).1, ["org_id", "quarter", "closes_at"]);
    let err = admin
        .open_round(pb::OpenRoundRequest {
            org_id: b.committee.id.clone(),
            quarter: "2026-Q3".into(),
            closes_at: None,
        })
        .await
        .unwrap_err();
    assert_eq!(
        (err.code(), details(&err).0.as_deref()),
        (Code::OutOfRange, Some("not_a_branch"))
    );
    let err = admin
        .open_round(pb::OpenRoundRequest {
            org_id: b.org.id.clone(),
            quarter: "2999-Q1".into(),
            closes_at: None,
        })
        .await
        .unwrap_err();
    assert_eq!(
        (err.code(), details(&err).0.as_deref()),
        (Code::OutOfRange, Some("quarter_not_started"))
    );
    let err = admin
        .open_round(pb::OpenRoundRequest {
            org_id: b.org.id.clone(),
            quarter: "2026-Q1".into(),
            closes_at: Some("2020-01-01T00:00:00Z".into()),
        })
        .await
        .unwrap_err();
    assert_eq!(
        (err.code(), details(&err).1),
        (Code::InvalidArgument, vec!["closes_at".to_owned()])
    );

    // Reading, issuing and closing follow the same scope.
    let mut stranger = app.as_role(RoleName::Secretary, &other.org).await;
    let err = stranger
        .get_round(pb::GetRoundRequest {
            id: round.id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let err = stranger
        .issue_invitations(pb::IssueInvitationsRequest {
            round_id: round.id.clone(),
            count: 1,
            evaluator_kind: pb::EvaluatorKind::Masses.into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let err = stranger
        .close_round(pb::CloseRoundRequest {
            id: round.id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let listed = admin
        .list_rounds(pb::ListRoundsRequest {
            org_id: b.org.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.rounds.len(), 1);
    assert_eq!(listed.rounds[0].quarter, "2026-Q2");
}

/// Once a grade of a year is final (定档) in a branch, the branch opens no round of that year:
/// refused before the quarter's uniqueness, but not for another year nor in another branch; a
/// round opened before still takes codes and ballots and closes
/// (docs/decisions/0006-final-years-evaluations.md).
#[tokio::test(flavor = "multi_thread")]
async fn a_branch_whose_grades_are_final_opens_no_round_of_that_year() {
    let app = spawn_app().await;
    let a = app.branch(2).await;
    let other = app.branch(1).await;
    let opened_before = app.open(&a, "2025-Q4").await;

    // The grading service finalizes the branch's 2025 grading: one event per member, and one of
    // them twice (a republish): the table keeps one row per member and year.
    let finalized = |m: &jifen_proto::members::v1::Member| OutgoingEvent {
        routing_key: MEMBER_GRADE_FINALIZED.into(),
        subject: m.id.clone(),
        payload: ev::MemberGradeFinalized {
            member_id: m.id.clone(),
            org_id: a.org.id.clone(),
            org_path: a.org.path.clone(),
            year: 2025,
            grade: "qualified".into(),
            finalized_at: "2026-01-20T02:00:00.000Z".into(),
            finalized_by: "test".into(),
            version: 1,
            ..Default::default()
        }
        .encode_to_vec(),
    };
    let events = vec![
        finalized(&a.members[0]),
        finalized(&a.members[1]),
        finalized(&a.members[0]),
    ];
    publish(&app, "grading", events).await;
    wait_until("the final grades", || async {
        app.count(
            "SELECT count(*) FROM inbox WHERE consumer = 'evaluations.final-grades'",
            vec![],
        )
        .await
            == 3
    })
    .await;
    assert_eq!(
        app.count("SELECT count(*) FROM final_grades", vec![]).await,
        2
    );

    // A quarter without a round, and the one with a round: the final year is the answer.
    let mut secretary = app.as_role(RoleName::Secretary, &a.org).await;
    for quarter in ["2025-Q1", "2025-Q4"] {
        let err = secretary
            .open_round(pb::OpenRoundRequest {
                org_id: a.org.id.clone(),
                quarter: quarter.into(),
                closes_at: None,
            })
            .await
            .unwrap_err();
        assert_eq!(
            (err.code(), details(&err)),
            (
                Code::FailedPrecondition,
                (Some("grading_final".into()), vec!["quarter".into()])
            ),
            "{quarter}: {err:?}"
        );
    }
    // The branch's next year, and the same year in a branch whose grades are not final.
    app.open(&a, "2026-Q1").await;
    app.open(&other, "2025-Q1").await;

    // The round opened before the finalization lives on: codes, a ballot, closing.
    let code = app
        .issue(&a, &opened_before, 1, pb::EvaluatorKind::Masses)
        .await
        .remove(0);
    let (mut evaluator, _) = app.evaluator(&code).await;
    evaluator
        .cast_ballot(cast(&opened_before, vec![rate(&a.members[0], Good)]))
        .await
        .unwrap();
    let closed = secretary
        .close_round(pb::CloseRoundRequest {
            id: opened_before.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (closed.status(), closed.ballots),
        (pb::RoundStatus::Closed, 1)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_round_past_its_closing_instant_closes_itself() {
    let app = spawn_app().await;
    let b = app.branch(1).await;
    let closes_at = chrono::Utc::now() + chrono::TimeDelta::seconds(3);
    let round = app
        .as_role(RoleName::Secretary, &b.org)
        .await
        .open_round(pb::OpenRoundRequest {
            org_id: b.org.id.clone(),
            quarter: "2026-Q3".into(),
            closes_at: Some(closes_at.to_rfc3339()),
        })
        .await
        .unwrap()
        .into_inner();
    let codes = app.issue(&b, &round, 2, pb::EvaluatorKind::Masses).await;
    let (mut evaluator, _) = app.evaluator(&codes[0]).await;
    evaluator
        .cast_ballot(cast(&round, vec![rate(&b.members[0], Good)]))
        .await
        .unwrap();
    let (mut late, _) = app.evaluator(&codes[1]).await;

    // Nobody closes it: the sweep does, once the instant has passed.
    let id: uuid::Uuid = round.id.parse().unwrap();
    wait_until("the round to close itself", || async {
        app.count(
            "SELECT count(*) FROM rounds WHERE id = $1 AND status = 'closed'",
            vec![id.into()],
        )
        .await
            == 1
    })
    .await;
    let closed = app
        .as_role(RoleName::Secretary, &b.org)
        .await
        .get_round(pb::GetRoundRequest {
            id: round.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(closed.closed_at, round.closes_at);
    assert_eq!(
        (
            closed.ballots,
            closed.results[0].ballots,
            closed.results[0].score
        ),
        (1, 1, Some(800))
    );
    let err = late
        .cast_ballot(cast(&round, vec![rate(&b.members[0], Poor)]))
        .await
        .unwrap_err();
    assert_eq!(
        (err.code(), details(&err).0.as_deref()),
        (Code::FailedPrecondition, Some("round_closed"))
    );
    assert_eq!(app.outbox_for(&round.id).await.len(), 2);
}

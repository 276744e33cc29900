//! The evaluations database holds nothing from which a ballot can be tied to a code.
use crate::helpers::*;
use jifen_proto::evaluations::v1 as pb;
use pb::Rating::{Excellent, Fair, Good};
use sea_orm::{ConnectionTrait as _, DbBackend, Statement};

async fn columns(app: &TestApp, table: &str) -> Vec<(String, String)> {
    let rows = app
        .db
        .query_all_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT column_name::text, data_type::text FROM information_schema.columns \
             WHERE table_schema = 'public' AND table_name = $1 ORDER BY ordinal_position",
            [table.into()],
        ))
        .await
        .unwrap();
    rows.iter()
        .map(|r| {
            (
                r.try_get_by_index(0).unwrap(),
                r.try_get_by_index(1).unwrap(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn no_column_ties_a_ballot_to_a_code() {
    let app = spawn_app().await;
    let b = app.branch(2).await;
    let round = app.open(&b, "2026-Q3").await;
    let codes = app.issue(&b, &round, 5, pb::EvaluatorKind::Masses).await;
    for (code, rating) in codes.iter().take(3).zip([Excellent, Good, Fair]) {
        let (mut evaluator, _) = app.evaluator(code).await;
        evaluator
            .cast_ballot(cast(&round, vec![rate(&b.members[0], rating)]))
            .await
            .unwrap();
    }

    // A ballot is its random id, its round and the evaluator kind; its ratings add members.
    let ballots = columns(&app, "ballots").await;
    assert_eq!(
        ballots,
        [
            ("id".into(), "uuid".into()),
            ("round_id".into(), "uuid".into()),
            ("evaluator_kind".into(), "text".into())
        ]
    );
    let ratings: Vec<String> = columns(&app, "ballot_ratings")
        .await
        .into_iter()
        .map(|(c, _)| c)
        .collect();
    assert_eq!(ratings, ["ballot_id", "round_id", "member_id", "rating"]);
    // No timestamp, no hash, no person anywhere near a ballot.
    for (name, ty) in ballots {
        assert!(!ty.contains("time") && ty != "bytea", "{name} {ty}");
    }
    // Ballot ids are random (version 4), not time-ordered.
    let versions = app
        .count(
            "SELECT count(*) FROM ballots WHERE substr(id::text, 15, 1) <> '4'",
            vec![],
        )
        .await;
    assert_eq!(versions, 0);
    // Which codes were spent is visible only as the absence of their unused row: the invitation
    // rows are untouched since issuance, so none shares a transaction with a ballot.
    assert_eq!(
        app.count("SELECT count(*) FROM unused_codes", vec![]).await,
        2
    );
    assert_eq!(
        app.count("SELECT count(DISTINCT xmin::text) FROM invitations", vec![])
            .await,
        1
    );
    let linked = app
        .count(
            "SELECT count(*) FROM ballots b WHERE EXISTS (SELECT 1 FROM invitations i \
             WHERE i.xmin::text = b.xmin::text OR i.xmax::text = b.xmin::text) \
             OR EXISTS (SELECT 1 FROM unused_codes u WHERE u.xmin::text = b.xmin::text OR u.xmax::text = b.xmin::text)",
            vec![],
        )
        .await;
    assert_eq!(linked, 0);
    // No other table mentions a ballot.
    let mentions = app
        .count(
            "SELECT count(*) FROM information_schema.columns WHERE table_schema = 'public' \
             AND column_name = 'ballot_id' AND table_name <> 'ballot_ratings'",
            vec![],
        )
        .await;
    assert_eq!(mentions, 0);
}

//! The newest published standard of a year decides the tally; the shipped default otherwise.
use crate::helpers::*;
use jifen_eventbus::OutgoingEvent;
use jifen_proto::evaluations::v1 as pb;
use jifen_proto::events::v1 as ev;
use prost::Message as _;

/// Publishes `StandardPublished` for `year` with `min_ballots`, as the declarations service.
async fn publish_standard(app: &TestApp, year: i32, version: i64, min_ballots: u32) {
    let mut doc = jifen_standard::default_2026()
        .unwrap()
        .to_json_value()
        .unwrap();
    doc["year"] = year.into();
    doc["evaluation"]["min_ballots"] = min_ballots.into();
    let message = ev::StandardPublished {
        year,
        document_json: doc.to_string(),
        version,
        published_by: "test".into(),
        published_at: "2026-01-01T00:00:00Z".into(),
    };
    let event = OutgoingEvent {
        routing_key: "declarations.standard.published.v1".into(),
        subject: year.to_string(),
        payload: message.encode_to_vec(),
    };
    publish(app, "declarations", vec![event]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_newest_standard_of_the_year_sets_min_ballots() {
    let app = spawn_app().await;
    publish_standard(&app, 2025, 2, 1).await;
    wait_until("the standard to arrive", || async {
        app.count(
            "SELECT count(*) FROM standards WHERE year = 2025 AND version = 2",
            vec![],
        )
        .await
            == 1
    })
    .await;
    // An older version arriving later changes nothing.
    publish_standard(&app, 2025, 1, 9).await;
    wait_until("the stale standard to be consumed", || async {
        app.count(
            "SELECT count(*) FROM inbox WHERE consumer = 'evaluations.standards'",
            vec![],
        )
        .await
            == 2
    })
    .await;

    let b = app.branch(1).await;
    let r2025 = app.open(&b, "2025-Q4").await;
    let r2026 = app.open(&b, "2026-Q1").await;
    for round in [&r2025, &r2026] {
        let code = app
            .issue(&b, round, 1, pb::EvaluatorKind::Masses)
            .await
            .remove(0);
        let (mut evaluator, _) = app.evaluator(&code).await;
        evaluator
            .cast_ballot(cast(round, vec![rate(&b.members[0], pb::Rating::Good)]))
            .await
            .unwrap();
    }
    let mut secretary = app
        .as_role(jifen_platform::auth::RoleName::Secretary, &b.org)
        .await;
    let closed = secretary
        .close_round(pb::CloseRoundRequest {
            id: r2025.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((closed.min_ballots, closed.results[0].valid), (1, true));
    // No standard published for 2026: the shipped default (min_ballots 5).
    let closed = secretary
        .close_round(pb::CloseRoundRequest {
            id: r2026.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((closed.min_ballots, closed.results[0].valid), (5, false));
}

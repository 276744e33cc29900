//! Codes and ballots: once per code, only in its own round, only the roster, members skip
//! themselves.
use crate::helpers::*;
use jifen_platform::auth::RoleName;
use jifen_proto::evaluations::v1 as pb;
use pb::Rating::{Excellent, Good, Poor};
use std::sync::Arc;
use tonic::Code;

#[tokio::test(flavor = "multi_thread")]
async fn fifty_concurrent_ballots_with_one_code_count_once() {
    let app = spawn_app().await;
    let b = app.branch(2).await;
    let round = app.open(&b, "2026-Q3").await;
    let code = app
        .issue(&b, &round, 1, pb::EvaluatorKind::Masses)
        .await
        .remove(0);
    let (_, redemption) = app.evaluator(&code).await;
    let token = Arc::new(app.evaluator_token(&redemption));

    let mut tasks = Vec::new();
    for _ in 0..50 {
        let client = app.client(&token).await;
        let request = cast(&round, vec![rate(&b.members[0], Excellent)]);
        tasks.push(tokio::spawn(async move {
            let mut client = client;
            client.cast_ballot(request).await.map(|_| ())
        }));
    }
    let mut accepted = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(()) => accepted += 1,
            Err(s) => assert_eq!(
                (s.code(), details(&s).0.as_deref()),
                (Code::FailedPrecondition, Some("code_used")),
                "{s:?}"
            ),
        }
    }
    assert_eq!(accepted, 1);
    let round_id: uuid::Uuid = round.id.parse().unwrap();
    assert_eq!(
        app.count(
            "SELECT count(*) FROM ballots WHERE round_id = $1",
            vec![round_id.into()]
        )
        .await,
        1
    );

    // The used code is refused at the door too.
    let err = app
        .client(&app.service_token())
        .await
        .redeem_invitation(pb::RedeemInvitationRequest { code: code.clone() })
        .await
        .unwrap_err();
    assert_eq!(
        (err.code(), details(&err).0.as_deref()),
        (Code::FailedPrecondition, Some("code_used"))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_code_is_good_for_its_own_round_and_roster_only() {
    let app = spawn_app().await;
    let b = app.branch(2).await;
    let other = app.branch(1).await;
    let round = app.open(&b, "2026-Q3").await;
    let other_round = app.open(&other, "2026-Q3").await;
    let code = app
        .issue(&b, &round, 1, pb::EvaluatorKind::Masses)
        .await
        .remove(0);
    let (mut evaluator, r) = app.evaluator(&code.to_lowercase()).await;
    assert_eq!(
        (r.round_id.as_str(), r.quarter.as_str()),
        (round.id.as_str(), "2026-Q3")
    );

    let ballot = evaluator
        .get_ballot(pb::GetBallotRequest {
            round_id: round.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    let names: Vec<&str> = ballot.members.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["成员01", "成员02"]);
    assert_eq!(ballot.ratings.len(), 4);

    // Another round: refused.
    let err = evaluator
        .get_ballot(pb::GetBallotRequest {
            round_id: other_round.id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    let err = evaluator
        .cast_ballot(cast(&other_round, vec![rate(&other.members[0], Good)]))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    // Nothing else either.
    let err = evaluator
        .get_round(pb::GetRoundRequest {
            id: round.id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);

    // Members off the roster, duplicates and unknown ratings are bad input, and spend nothing.
    let err = evaluator
        .cast_ballot(cast(
            &round,
            vec![rate(&b.members[0], Good), rate(&other.members[0], Good)],
        ))
        .await
        .unwrap_err();
    assert_eq!(
        (err.code(), details(&err).1),
        (
            Code::InvalidArgument,
            vec!["ratings[1].member_id".to_owned()]
        )
    );
    let err = evaluator
        .cast_ballot(cast(
            &round,
            vec![
                rate(&b.members[0], Good),
                rate(&b.members[0], Poor),
                pb::RatingEntry {
                    member_id: b.members[1].id.clone(),
                    rating: 9,
                },
            ],
        ))
        .await
        .unwrap_err();
    assert_eq!(
        details(&err).1,
        ["ratings[1].member_id", "ratings[2].rating"]
    );
    let err = evaluator
        .cast_ballot(cast(&round, vec![]))
        .await
        .unwrap_err();
    assert_eq!(details(&err).1, ["ratings"]);

    evaluator
        .cast_ballot(cast(&round, vec![rate(&b.members[1], Excellent)]))
        .await
        .unwrap();
    let err = evaluator
        .cast_ballot(cast(&round, vec![rate(&b.members[0], Good)]))
        .await
        .unwrap_err();
    assert_eq!(details(&err).0.as_deref(), Some("code_used"));

    // Unknown and malformed codes.
    let mut gateway = app.client(&app.service_token()).await;
    let err = gateway
        .redeem_invitation(pb::RedeemInvitationRequest {
            code: "ZZZZ-ZZZZ-ZZZZ".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(
        (err.code(), details(&err).0.as_deref()),
        (Code::Unauthenticated, Some("invalid_code"))
    );
    let err = gateway
        .redeem_invitation(pb::RedeemInvitationRequest {
            code: "0000".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(
        (err.code(), details(&err).1),
        (Code::InvalidArgument, vec!["code".to_owned()])
    );
}

/// A member of the branch who redeems a masses (群众) code while logged in would rate themself:
/// refused, and the code stays usable; a member of another branch (masses to this one) may use it.
#[tokio::test(flavor = "multi_thread")]
async fn a_member_of_the_branch_cannot_redeem_a_masses_code() {
    let app = spawn_app().await;
    let b = app.branch(3).await;
    let outsider = app.branch(1).await;
    let round = app.open(&b, "2026-Q3").await;
    let codes = app.issue(&b, &round, 1, pb::EvaluatorKind::Masses).await;

    let err = app
        .client(&app.member_token(&b.members[1]))
        .await
        .redeem_invitation(pb::RedeemInvitationRequest {
            code: codes[0].clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(
        (err.code(), details(&err).0.as_deref()),
        (Code::PermissionDenied, Some("masses_code_for_member"))
    );
    let r = app
        .client(&app.member_token(&outsider.members[0]))
        .await
        .redeem_invitation(pb::RedeemInvitationRequest {
            code: codes[0].clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.evaluator_kind(), pb::EvaluatorKind::Masses);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_member_evaluator_logs_in_and_never_rates_themself() {
    let app = spawn_app().await;
    let b = app.branch(3).await;
    let outsider = app.branch(1).await;
    let round = app.open(&b, "2026-Q3").await;
    let codes = app.issue(&b, &round, 3, pb::EvaluatorKind::Member).await;

    // Without a member login, or as someone off the roster: refused.
    let err = app
        .client(&app.service_token())
        .await
        .redeem_invitation(pb::RedeemInvitationRequest {
            code: codes[0].clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(
        (err.code(), details(&err).0.as_deref()),
        (Code::PermissionDenied, Some("member_login_required"))
    );
    let err = app
        .client(&app.member_token(&outsider.members[0]))
        .await
        .redeem_invitation(pb::RedeemInvitationRequest {
            code: codes[0].clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(
        (err.code(), details(&err).0.as_deref()),
        (Code::PermissionDenied, Some("not_on_roster"))
    );

    let me = &b.members[1];
    let r = app
        .client(&app.member_token(me))
        .await
        .redeem_invitation(pb::RedeemInvitationRequest {
            code: codes[0].clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.evaluator_kind(), pb::EvaluatorKind::Member);
    let mut evaluator = app.client(&app.evaluator_token(&r)).await;
    let ballot = evaluator
        .get_ballot(pb::GetBallotRequest {
            round_id: round.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    let ids: Vec<&str> = ballot
        .members
        .iter()
        .map(|m| m.member_id.as_str())
        .collect();
    assert_eq!(ids, [b.members[0].id.as_str(), b.members[2].id.as_str()]);
    let err = evaluator
        .cast_ballot(cast(&round, vec![rate(me, Excellent)]))
        .await
        .unwrap_err();
    assert_eq!(
        (err.code(), details(&err).1),
        (
            Code::InvalidArgument,
            vec!["ratings[0].member_id".to_owned()]
        )
    );
    evaluator
        .cast_ballot(cast(&round, vec![rate(&b.members[0], Good)]))
        .await
        .unwrap();

    // A token for a member code that lost its exclusion (forged without the gateway) is refused.
    let (_, masses) = {
        let code = app
            .issue(&b, &round, 1, pb::EvaluatorKind::Masses)
            .await
            .remove(0);
        app.evaluator(&code).await
    };
    let forged = pb::RedeemInvitationResponse {
        ticket: r.ticket.split('.').next().unwrap().to_owned(),
        ..r.clone()
    };
    let err = app
        .client(&app.evaluator_token(&forged))
        .await
        .get_ballot(pb::GetBallotRequest {
            round_id: round.id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    assert!(!masses.ticket.contains('.'));
    let secretary_counts = app
        .as_role(RoleName::Secretary, &b.org)
        .await
        .get_round(pb::GetRoundRequest {
            id: round.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((secretary_counts.invited, secretary_counts.ballots), (4, 1));
}

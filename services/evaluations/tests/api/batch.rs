//! The batch of ballots (`Evaluations::cast_batch`, the demo history's seeding): the same rows,
//! results and events as ballots cast one by one, the same rules all or nothing, and the same
//! anonymity.
use crate::helpers::*;
use jifen_evaluations::crypto::CodeHasher;
use jifen_evaluations::domain::{Code, EvaluatorKind, InvitationCount, Quarter, Rating, RuleError};
use jifen_evaluations::usecases::{AppError, BatchBallot, Evaluations, Redemption};
use jifen_platform::auth::{Principal, RoleClaim, RoleName};
use jifen_proto::events::v1 as ev;
use jifen_proto::members::v1 as mpb;
use prost::Message as _;
use sea_orm::{ConnectionTrait as _, DbBackend, Statement};
use uuid::Uuid;

/// The use cases over the test's database, with a key of their own (codes issued and redeemed
/// here only).
fn use_cases(app: &TestApp) -> Evaluations {
    Evaluations::new(app.db.clone(), CodeHasher::new(&[7; 32]).unwrap())
}

fn principal(
    role: RoleName,
    org_id: &str,
    org_path: &str,
    member: Option<&mpb::Member>,
) -> Principal {
    Principal {
        subject: Uuid::now_v7().to_string(),
        username: None,
        member_id: member.map(|m| m.id.parse().unwrap()),
        roles: vec![RoleClaim {
            role,
            org_id: org_id.parse().unwrap(),
            org_path: org_path.to_owned(),
        }],
        round_id: None,
    }
}

fn secretary(b: &Branch) -> Principal {
    principal(RoleName::Secretary, &b.org.id, &b.org.path, None)
}

/// The gateway redeeming a 群众 code.
fn gateway(app: &TestApp) -> Principal {
    principal(RoleName::Service, &app.root.id, &app.root.path, None)
}

/// A member logged in, redeeming a member code.
fn member(m: &mpb::Member) -> Principal {
    principal(RoleName::Member, &m.org_id, &m.org_path, Some(m))
}

/// The principal the gateway signs for a redemption.
fn evaluator(r: &Redemption) -> Principal {
    Principal {
        subject: format!("evaluator:{}", r.ticket),
        username: None,
        member_id: None,
        roles: vec![RoleClaim {
            role: RoleName::Evaluator,
            org_id: r.org_id,
            org_path: r.org_path.clone(),
        }],
        round_id: Some(r.round_id),
    }
}

async fn open(uc: &Evaluations, b: &Branch, quarter: &str) -> Uuid {
    uc.open_round(
        &secretary(b),
        b.org.id.parse().unwrap(),
        Quarter::parse(quarter).unwrap(),
        None,
    )
    .await
    .unwrap()
    .round
    .id
}

async fn issue(
    uc: &Evaluations,
    b: &Branch,
    round: Uuid,
    n: u32,
    kind: EvaluatorKind,
) -> Vec<Code> {
    uc.issue_invitations(
        &secretary(b),
        round,
        InvitationCount::parse(i64::from(n)).unwrap(),
        kind,
    )
    .await
    .unwrap()
}

fn id(m: &mpb::Member) -> Uuid {
    m.id.parse().unwrap()
}

fn ratings(b: &Branch, who: &[usize], of: &[Rating]) -> Vec<(Uuid, Rating)> {
    who.iter()
        .zip(of)
        .map(|(i, r)| (id(&b.members[*i]), *r))
        .collect()
}

/// Each ballot of the round as (kind, its ratings sorted), sorted.
async fn stored_ballots(app: &TestApp, round: Uuid) -> Vec<(String, Vec<(Uuid, String)>)> {
    let rows = app
        .db
        .query_all_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT b.id, b.evaluator_kind, r.member_id, r.rating FROM ballots b \
             JOIN ballot_ratings r ON r.ballot_id = b.id WHERE b.round_id = $1",
            [round.into()],
        ))
        .await
        .unwrap();
    let mut by_ballot: std::collections::BTreeMap<Uuid, (String, Vec<(Uuid, String)>)> =
        Default::default();
    for r in rows {
        let ballot: Uuid = r.try_get_by_index(0).unwrap();
        let entry = by_ballot
            .entry(ballot)
            .or_insert_with(|| (r.try_get_by_index(1).unwrap(), Vec::new()));
        entry.1.push((
            r.try_get_by_index(2).unwrap(),
            r.try_get_by_index(3).unwrap(),
        ));
    }
    let mut out: Vec<_> = by_ballot
        .into_values()
        .map(|(kind, mut rs)| {
            rs.sort();
            (kind, rs)
        })
        .collect();
    out.sort();
    out
}

/// The round's closed event with what differs between two rounds (id, quarter, instants)
/// blanked.
async fn closed_event(app: &TestApp, round: Uuid) -> ev::EvaluationRoundState {
    let events = app.outbox_for(&round.to_string()).await;
    let keys: Vec<&str> = events.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        ["evaluations.round.opened.v1", "evaluations.round.closed.v1"]
    );
    let mut state = ev::EvaluationRoundChanged::decode(events[1].1.as_slice())
        .unwrap()
        .round
        .unwrap();
    state.id.clear();
    state.quarter.clear();
    state.opened_at.clear();
    state.closed_at.clear();
    state
}

async fn ballot_count(app: &TestApp, round: Uuid) -> i64 {
    app.count(
        "SELECT count(*) FROM ballots WHERE round_id = $1",
        vec![round.into()],
    )
    .await
}

async fn unused_codes(app: &TestApp, round: Uuid) -> i64 {
    app.count(
        "SELECT count(*) FROM unused_codes u JOIN invitations i USING (code_hash) \
         WHERE i.round_id = $1",
        vec![round.into()],
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_batch_stores_the_rows_results_and_events_of_single_ballots() {
    use Rating::{Excellent as E, Fair as F, Good as G, Poor as P};
    let app = spawn_app().await;
    let uc = use_cases(&app);
    let b = app.branch(4).await;
    // Three 群众 ballots rating everyone, two members rating the others.
    let masses = [
        ratings(&b, &[0, 1, 2, 3], &[E, G, F, P]),
        ratings(&b, &[0, 1, 2, 3], &[G, G, E, F]),
        ratings(&b, &[0, 1, 2, 3], &[P, F, G, E]),
    ];
    let by_members = [
        (0, ratings(&b, &[1, 2, 3], &[E, E, F])),
        (1, ratings(&b, &[0, 2, 3], &[G, F, P])),
    ];

    let mut rounds = Vec::new();
    for (quarter, batched) in [("2025-Q3", false), ("2025-Q4", true)] {
        let round = open(&uc, &b, quarter).await;
        let mut masses_codes = issue(&uc, &b, round, 3, EvaluatorKind::Masses).await;
        let mut member_codes = issue(&uc, &b, round, 2, EvaluatorKind::Member).await;
        let mut ballots = Vec::new();
        for r in &masses {
            let code = masses_codes.pop().unwrap();
            let redeemed = uc.redeem(&gateway(&app), &code).await.unwrap();
            ballots.push((evaluator(&redeemed), r.clone()));
        }
        for (i, r) in &by_members {
            let code = member_codes.pop().unwrap();
            let redeemed = uc.redeem(&member(&b.members[*i]), &code).await.unwrap();
            ballots.push((evaluator(&redeemed), r.clone()));
        }
        if batched {
            let batch: Vec<BatchBallot> = ballots
                .into_iter()
                .map(|(evaluator, ratings)| BatchBallot { evaluator, ratings })
                .collect();
            assert_eq!(uc.cast_batch(round, &batch).await.unwrap(), 5);
        } else {
            for (evaluator, ratings) in &ballots {
                uc.cast(evaluator, round, ratings).await.unwrap();
            }
        }
        rounds.push(round);
    }
    let (single, batched) = (rounds[0], rounds[1]);

    let stored = stored_ballots(&app, single).await;
    assert_eq!(stored.len(), 5);
    assert_eq!(stored_ballots(&app, batched).await, stored);
    assert_eq!(
        (
            unused_codes(&app, single).await,
            unused_codes(&app, batched).await
        ),
        (0, 0),
        "every code spent"
    );

    let closed_single = uc.close_round(&secretary(&b), single).await.unwrap();
    let closed_batched = uc.close_round(&secretary(&b), batched).await.unwrap();
    assert_eq!(
        (
            closed_batched.invited,
            closed_batched.ballots,
            closed_batched.roster_size
        ),
        (5, 5, 4)
    );
    assert_eq!(
        (
            closed_single.invited,
            closed_single.ballots,
            closed_single.roster_size
        ),
        (5, 5, 4)
    );
    assert_eq!(closed_batched.results, closed_single.results);
    assert_eq!(closed_batched.results.len(), 4);
    // Member 0: E, G, P from the masses and G from member 1.
    let first = closed_batched
        .results
        .iter()
        .find(|r| r.result.member_id == id(&b.members[0]))
        .unwrap();
    assert_eq!(first.result.ballots, 4);

    let event = closed_event(&app, batched).await;
    assert_eq!(
        (event.ballots, event.invited, event.results.len()),
        (5, 5, 4)
    );
    assert_eq!(event, closed_event(&app, single).await);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_batch_keeps_the_rules_of_a_single_ballot_all_or_nothing() {
    use Rating::{Excellent as E, Good as G};
    let app = spawn_app().await;
    let uc = use_cases(&app);
    let b = app.branch(3).await;
    let round = open(&uc, &b, "2025-Q4").await;
    let codes = issue(&uc, &b, round, 4, EvaluatorKind::Masses).await;
    let member_code = issue(&uc, &b, round, 1, EvaluatorKind::Member)
        .await
        .remove(0);
    let mut masses = Vec::new();
    for code in &codes {
        masses.push(evaluator(&uc.redeem(&gateway(&app), code).await.unwrap()));
    }
    let m0 = evaluator(
        &uc.redeem(&member(&b.members[0]), &member_code)
            .await
            .unwrap(),
    );
    let ok = |who: &Principal| BatchBallot {
        evaluator: who.clone(),
        ratings: ratings(&b, &[1, 2], &[E, G]),
    };

    // Code 0 is cast alone first.
    uc.cast(&masses[0], round, &ratings(&b, &[0], &[E]))
        .await
        .unwrap();

    // A spent code refuses the batch: nothing of it is stored, code 1 stays unused.
    let err = uc
        .cast_batch(round, &[ok(&masses[1]), ok(&masses[0])])
        .await
        .unwrap_err();
    assert_eq!(err.index, Some(1));
    assert!(
        matches!(
            err.error,
            AppError::Rule {
                rule: RuleError::CodeUsed,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(ballot_count(&app, round).await, 1);
    assert_eq!(unused_codes(&app, round).await, 4);

    // One code twice in a batch counts once: the second is refused, so the batch is.
    let err = uc
        .cast_batch(round, &[ok(&masses[1]), ok(&masses[1])])
        .await
        .unwrap_err();
    assert!(
        matches!(
            err.error,
            AppError::Rule {
                rule: RuleError::CodeUsed,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(ballot_count(&app, round).await, 1);

    // A member does not rate themself, in a batch either.
    let err = uc
        .cast_batch(
            round,
            &[
                ok(&masses[1]),
                BatchBallot {
                    evaluator: m0.clone(),
                    ratings: ratings(&b, &[2, 0], &[G, E]),
                },
            ],
        )
        .await
        .unwrap_err();
    assert_eq!(err.index, Some(1));
    match &err.error {
        AppError::Invalid(v) => assert_eq!(
            v.iter().map(|v| v.field.as_str()).collect::<Vec<_>>(),
            ["ratings[1].member_id"]
        ),
        other => panic!("{other:?}"),
    }
    assert_eq!(ballot_count(&app, round).await, 1);

    // A ticket of another round, or no evaluator at all, is denied.
    let other = open(&uc, &b, "2025-Q3").await;
    let err = uc.cast_batch(other, &[ok(&masses[1])]).await.unwrap_err();
    assert!(matches!(err.error, AppError::Denied), "{err}");
    let err = uc
        .cast_batch(round, &[ok(&member(&b.members[1]))])
        .await
        .unwrap_err();
    assert_eq!(err.index, Some(0));
    assert!(matches!(err.error, AppError::Denied), "{err}");
    assert_eq!(ballot_count(&app, round).await, 1);

    // The good ones together.
    let batch = [
        ok(&masses[1]),
        ok(&masses[2]),
        BatchBallot {
            evaluator: m0.clone(),
            ratings: ratings(&b, &[1, 2], &[G, G]),
        },
    ];
    assert_eq!(uc.cast_batch(round, &batch).await.unwrap(), 3);
    assert_eq!(ballot_count(&app, round).await, 4);
    assert_eq!(unused_codes(&app, round).await, 1);

    // A closed round takes no batch.
    uc.close_round(&secretary(&b), round).await.unwrap();
    let err = uc.cast_batch(round, &[ok(&masses[3])]).await.unwrap_err();
    assert_eq!(err.index, None);
    assert!(
        matches!(
            err.error,
            AppError::Rule {
                rule: RuleError::RoundClosed,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(ballot_count(&app, round).await, 4);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_batch_leaves_nothing_that_ties_a_ballot_to_a_code() {
    use Rating::{Excellent as E, Fair as F, Good as G};
    let app = spawn_app().await;
    let uc = use_cases(&app);
    let b = app.branch(3).await;
    let round = open(&uc, &b, "2025-Q4").await;
    let codes = issue(&uc, &b, round, 5, EvaluatorKind::Masses).await;
    let mut batch = Vec::new();
    for (code, rating) in codes.iter().take(3).zip([E, G, F]) {
        batch.push(BatchBallot {
            evaluator: evaluator(&uc.redeem(&gateway(&app), code).await.unwrap()),
            ratings: ratings(&b, &[0], &[rating]),
        });
    }
    assert_eq!(uc.cast_batch(round, &batch).await.unwrap(), 3);

    // Random (version 4) ids, as a single ballot's.
    assert_eq!(
        app.count(
            "SELECT count(*) FROM ballots WHERE substr(id::text, 15, 1) <> '4'",
            vec![]
        )
        .await,
        0
    );
    // The invitations are untouched since issuance; no visible invitation or unused code
    // shares a transaction with a ballot of the batch.
    assert_eq!(unused_codes(&app, round).await, 2);
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
}

/// A redemption: who redeems which code.
type Request = (Principal, Code);
/// Whether an error is the one expected.
type Expected = fn(&AppError) -> bool;

#[tokio::test(flavor = "multi_thread")]
async fn redeeming_in_a_batch_answers_what_single_redemptions_answer() {
    let app = spawn_app().await;
    let uc = use_cases(&app);
    let b = app.branch(3).await;
    let round = open(&uc, &b, "2025-Q4").await;
    let masses = issue(&uc, &b, round, 2, EvaluatorKind::Masses).await;
    let members = issue(&uc, &b, round, 2, EvaluatorKind::Member).await;
    let requests = vec![
        (gateway(&app), masses[0].clone()),
        (member(&b.members[0]), members[0].clone()),
        (gateway(&app), masses[1].clone()),
        (member(&b.members[2]), members[1].clone()),
    ];
    let batched = uc.redeem_batch(&requests).await.unwrap();
    let mut single = Vec::new();
    for (who, code) in &requests {
        single.push(uc.redeem(who, code).await.unwrap());
    }
    assert_eq!(batched, single);
    assert_eq!(batched[1].kind, EvaluatorKind::Member);
    assert!(
        batched[1].ticket.ends_with(&b.members[0].id),
        "a member ticket names the member"
    );

    // The refusals of a single redemption, at the request that earns them.
    let unknown = Code::parse("2345-6789-ABCD").unwrap();
    let cases: Vec<(Request, Expected)> = vec![
        ((gateway(&app), unknown), |e| {
            matches!(e, AppError::InvalidCode)
        }),
        ((member(&b.members[1]), masses[0].clone()), |e| {
            matches!(
                e,
                AppError::Rule {
                    rule: RuleError::MassesCodeForRosterMember,
                    ..
                }
            )
        }),
        ((gateway(&app), members[0].clone()), |e| {
            matches!(
                e,
                AppError::Rule {
                    rule: RuleError::MemberLoginRequired,
                    ..
                }
            )
        }),
    ];
    for ((who, code), expected) in cases {
        let alone = uc.redeem(&who, &code).await.unwrap_err();
        assert!(expected(&alone), "{alone:?}");
        let err = uc
            .redeem_batch(&[requests[0].clone(), (who, code)])
            .await
            .unwrap_err();
        assert_eq!(err.index, Some(1));
        assert!(expected(&err.error), "{err:?}");
    }

    // A spent code, and a closed round, are refused as alone.
    let ballot = BatchBallot {
        evaluator: evaluator(&batched[0]),
        ratings: ratings(&b, &[0], &[Rating::Good]),
    };
    uc.cast_batch(round, &[ballot]).await.unwrap();
    let err = uc.redeem_batch(&requests).await.unwrap_err();
    assert_eq!(err.index, Some(0));
    assert!(
        matches!(
            err.error,
            AppError::Rule {
                rule: RuleError::CodeUsed,
                ..
            }
        ),
        "{err:?}"
    );
    uc.close_round(&secretary(&b), round).await.unwrap();
    let err = uc.redeem_batch(&requests[1..]).await.unwrap_err();
    assert!(
        matches!(
            err.error,
            AppError::Rule {
                rule: RuleError::RoundClosed,
                ..
            }
        ),
        "{err:?}"
    );
}

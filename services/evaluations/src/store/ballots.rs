//! Anonymous ballots: a random id, the round, the evaluator kind, the ratings — nothing else.

use super::{placeholders, stmt};
use sea_orm::{ConnectionTrait, DbErr, FromQueryResult, Value};
use uuid::Uuid;

/// One rating of a stored ballot.
#[derive(Debug, Clone, PartialEq, Eq, FromQueryResult)]
pub struct RatingRow {
    pub member_id: Uuid,
    pub rating: String,
}

/// Inserts a ballot with a random (v4) id and its ratings `(member, rating)`.
pub async fn insert(
    conn: &impl ConnectionTrait,
    round_id: Uuid,
    kind: &str,
    ratings: &[(Uuid, &str)],
) -> Result<(), DbErr> {
    insert_many(conn, round_id, &[(kind, ratings.to_vec())]).await
}

/// Inserts several ballots of the round `(kind, ratings)`, each with a random (v4) id, in the
/// order given: one statement for the ballots and one for their ratings (a few more past
/// PostgreSQL's 65 535 parameters).
pub async fn insert_many(
    conn: &impl ConnectionTrait,
    round_id: Uuid,
    ballots: &[(&str, Vec<(Uuid, &str)>)],
) -> Result<(), DbErr> {
    // v4, not v7: a time-ordered id would record when the ballot was cast.
    let ids: Vec<Uuid> = ballots.iter().map(|_| Uuid::new_v4()).collect();
    let heads: Vec<(Uuid, &str)> = ids
        .iter()
        .zip(ballots)
        .map(|(id, (kind, _))| (*id, *kind))
        .collect();
    for chunk in heads.chunks(20_000) {
        let mut values: Vec<Value> = Vec::with_capacity(chunk.len() * 3);
        for (id, kind) in chunk {
            values.extend([(*id).into(), round_id.into(), (*kind).into()]);
        }
        conn.execute_raw(stmt(
            format!(
                "INSERT INTO ballots (id, round_id, evaluator_kind) VALUES {}",
                placeholders(chunk.len(), 3, 1)
            ),
            values,
        ))
        .await?;
    }
    let ratings: Vec<(Uuid, Uuid, &str)> = ids
        .iter()
        .zip(ballots)
        .flat_map(|(id, (_, rs))| rs.iter().map(move |(m, r)| (*id, *m, *r)))
        .collect();
    for chunk in ratings.chunks(15_000) {
        let mut values: Vec<Value> = Vec::with_capacity(chunk.len() * 4);
        for (id, member, rating) in chunk {
            values.extend([
                (*id).into(),
                round_id.into(),
                (*member).into(),
                (*rating).into(),
            ]);
        }
        conn.execute_raw(stmt(
            format!(
                "INSERT INTO ballot_ratings (ballot_id, round_id, member_id, rating) VALUES {}",
                placeholders(chunk.len(), 4, 1)
            ),
            values,
        ))
        .await?;
    }
    Ok(())
}

/// Every rating of every ballot of the round.
pub async fn ratings(conn: &impl ConnectionTrait, round_id: Uuid) -> Result<Vec<RatingRow>, DbErr> {
    RatingRow::find_by_statement(stmt(
        "SELECT member_id, rating FROM ballot_ratings WHERE round_id = $1",
        [round_id.into()],
    ))
    .all(conn)
    .await
}

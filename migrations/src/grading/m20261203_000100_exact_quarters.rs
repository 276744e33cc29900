//! The exact quarter scores (群众评议, RULES.md §4): `quarter_results.score_total`, the sum of a
//! member's ballots' rating scores in tenths, so that the evaluation points are computed from
//! the exact means `score_total / ballots` and rounded once (RULES.md §5 step 4).
//!
//! Rows applied before this migration have no sum (NULL): grading counts their rounded `score`
//! until the rounds are republished (`jifen-evaluations republish-rounds`), which fills it;
//! `jifen-grading reconcile` reports every quarter still without one. The packed quarters of
//! `member_years` gain the sum (a presence flag and an int8 after `valid`: 49 bytes a quarter)
//! and are rewritten here.

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261203_000100_exact_quarters"
    }
}

/// Rewrites every packed quarter string from `quarter_results` with the current function.
const REPACK: &str = r#"
UPDATE member_years y SET quarters = coalesce((
    SELECT string_agg(member_year_quarter(q.quarter, q.closed_at, q.round_id, q.score,
        q.ballots, q.poor_ballots, q.valid, q.score_total), '' ORDER BY q.round_id)
    FROM quarter_results q WHERE q.member_id = y.member_id AND q.year = y.year), '')
WHERE quarters <> '';
"#;

const UP: &str = r#"
ALTER TABLE quarter_results ADD COLUMN score_total bigint CHECK (score_total >= 0);
DROP FUNCTION member_year_quarter(smallint, timestamptz, uuid, integer, integer, integer, boolean);
CREATE FUNCTION member_year_quarter(quarter smallint, closed_at timestamptz, round uuid,
        score integer, ballots integer, poor integer, valid boolean, score_total bigint)
    RETURNS bytea LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT int2send(quarter) || int8send((extract(epoch FROM closed_at) * 1000000)::bigint)
        || uuid_send(round) || boolsend(score IS NOT NULL) || int4send(coalesce(score, 0))
        || int4send(ballots) || int4send(poor) || boolsend(valid)
        || boolsend(score_total IS NOT NULL) || int8send(coalesce(score_total, 0))
$$;
"#;

const DOWN: &str = r#"
DROP FUNCTION member_year_quarter(smallint, timestamptz, uuid, integer, integer, integer, boolean,
    bigint);
CREATE FUNCTION member_year_quarter(quarter smallint, closed_at timestamptz, round uuid,
        score integer, ballots integer, poor integer, valid boolean)
    RETURNS bytea LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT int2send(quarter) || int8send((extract(epoch FROM closed_at) * 1000000)::bigint)
        || uuid_send(round) || boolsend(score IS NOT NULL) || int4send(coalesce(score, 0))
        || int4send(ballots) || int4send(poor) || boolsend(valid)
$$;
UPDATE member_years y SET quarters = coalesce((
    SELECT string_agg(member_year_quarter(q.quarter, q.closed_at, q.round_id, q.score,
        q.ballots, q.poor_ballots, q.valid), '' ORDER BY q.round_id)
    FROM quarter_results q WHERE q.member_id = y.member_id AND q.year = y.year), '')
WHERE quarters <> '';
ALTER TABLE quarter_results DROP COLUMN score_total;
"#;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        db.execute_unprepared(UP).await?;
        db.execute_unprepared(REPACK).await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.get_connection().execute_unprepared(DOWN).await?;
        Ok(())
    }
}

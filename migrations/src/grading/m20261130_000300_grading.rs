//! The grading service tables.
//!
//! Projections carry the version of the source aggregate they were built from: an event applies
//! only when its version is newer (DESIGN.md §4), so a replay, a redelivery or a shuffled order
//! leaves the same rows. The ledger keeps one row per approved declaration line and per standing
//! branch record; applying a newer version of a declaration or record replaces its rows.
//!
//! Invariants the schema enforces as a backstop:
//! * one grading per branch and year, and one row per member in it;
//! * a final grading and its members' grades never change (trigger);
//! * at most one open appeal per member and year;
//! * the audit trail is append-only (trigger).

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261130_000300_grading"
    }
}

const UP: &str = r#"
-- Projection of members.organization.* events.
CREATE TABLE organizations (
    id          uuid    PRIMARY KEY,
    parent_id   uuid,
    name        text    NOT NULL,
    kind        text    NOT NULL,
    unit_type   text    NOT NULL,
    path        text    NOT NULL,
    version     bigint  NOT NULL
);
CREATE INDEX organizations_path_idx ON organizations (path text_pattern_ops);

-- Projection of members.member.* events: what grading needs, no personal data but the name.
CREATE TABLE members (
    id          uuid    PRIMARY KEY,
    org_id      uuid    NOT NULL,
    org_path    text    NOT NULL,
    name        text    NOT NULL,
    category    text    NOT NULL,
    status      text    NOT NULL,
    exempt      boolean NOT NULL,
    -- [{"kind": "warning", "decided_on": "2026-03-01"}, …]
    sanctions   jsonb   NOT NULL DEFAULT '[]',
    version     bigint  NOT NULL
);
CREATE INDEX members_org_idx ON members (org_id);
CREATE INDEX members_path_idx ON members (org_path text_pattern_ops);

-- The newest published standard of each year (declarations.standard.published.v1).
CREATE TABLE standards (
    year        integer PRIMARY KEY,
    version     bigint  NOT NULL,
    document    text    NOT NULL
);

-- Version guards of the source aggregates whose lines are in the ledger.
CREATE TABLE source_versions (
    id          uuid    PRIMARY KEY,
    kind        text    NOT NULL CHECK (kind IN ('declaration', 'branch_record')),
    member_id   uuid    NOT NULL,
    version     bigint  NOT NULL
);

-- The points ledger 积分台账: approved declaration lines and standing branch records.
CREATE TABLE ledger_entries (
    member_id   uuid     NOT NULL,
    year        smallint NOT NULL,
    month       smallint NOT NULL CHECK (month BETWEEN 1 AND 12),
    source      text     NOT NULL CHECK (source IN ('declaration', 'branch')),
    ref         uuid     NOT NULL,
    line        smallint NOT NULL,
    item_code   text     NOT NULL,
    points      integer  NOT NULL,
    note        text     NOT NULL DEFAULT '',
    PRIMARY KEY (member_id, year, ref, line)
);
CREATE INDEX ledger_entries_ref_idx ON ledger_entries (ref);

-- Per member and year, the ledger entries and quarter results packed as bytes: what grading
-- reads. Rewritten from ledger_entries / quarter_results in the transaction that changes them, so
-- it always agrees with them; the year-end batch reads one row per member instead of every line,
-- and two byte strings instead of a dozen arrays (PostgreSQL sends an array element by element,
-- which cost more than the rest of the batch's read). The layouts are those of the two functions
-- below, concatenated in (ref, line) and round order; integers are big-endian:
-- * an entry: month int2, branch (source = 'branch') bool, points int4, item code length int2,
--   item code UTF-8 (9 bytes and the code);
-- * a quarter result: quarter int2, closed_at int8 (microseconds since the Unix epoch), round
--   uuid, score present bool, score int4 (0 when absent), ballots int4, poor ballots int4,
--   valid bool (40 bytes).
CREATE TABLE member_years (
    member_id      uuid       NOT NULL,
    year           smallint   NOT NULL,
    entries        bytea      NOT NULL DEFAULT '',
    quarters       bytea      NOT NULL DEFAULT '',
    PRIMARY KEY (member_id, year)
);
CREATE FUNCTION member_year_entry(month smallint, branch boolean, points integer, item_code text)
    RETURNS bytea LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT int2send(month) || boolsend(branch) || int4send(points)
        || int2send(octet_length(item_code)::smallint) || convert_to(item_code, 'UTF8')
$$;
CREATE FUNCTION member_year_quarter(quarter smallint, closed_at timestamptz, round uuid,
        score integer, ballots integer, poor integer, valid boolean)
    RETURNS bytea LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT int2send(quarter) || int8send((extract(epoch FROM closed_at) * 1000000)::bigint)
        || uuid_send(round) || boolsend(score IS NOT NULL) || int4send(coalesce(score, 0))
        || int4send(ballots) || int4send(poor) || boolsend(valid)
$$;

-- Version guards of evaluation rounds, and the per-member quarter results of closed rounds.
CREATE TABLE rounds (
    id          uuid    PRIMARY KEY,
    org_id      uuid    NOT NULL,
    quarter     text    NOT NULL,
    closed_at   timestamptz,
    version     bigint  NOT NULL
);
CREATE TABLE quarter_results (
    member_id    uuid     NOT NULL,
    round_id     uuid     NOT NULL,
    year         smallint NOT NULL,
    quarter      smallint NOT NULL CHECK (quarter BETWEEN 1 AND 4),
    closed_at    timestamptz NOT NULL,
    score        integer,
    ballots      integer  NOT NULL,
    poor_ballots integer  NOT NULL,
    valid        boolean  NOT NULL,
    PRIMARY KEY (member_id, year, round_id)
);

-- A branch's grading of a year.
CREATE TABLE gradings (
    branch_id       uuid        NOT NULL,
    year            integer     NOT NULL,
    branch_path     text        NOT NULL,
    status          text        NOT NULL CHECK (status IN ('proposed', 'confirmed', 'final')),
    computed_at     timestamptz NOT NULL,
    computed_by     text        NOT NULL,
    confirmed_at    timestamptz,
    confirmed_by    text,
    finalizable_at  timestamptz,
    finalized_at    timestamptz,
    finalized_by    text,
    PRIMARY KEY (branch_id, year)
);
CREATE INDEX gradings_path_idx ON gradings (year, branch_path text_pattern_ops);

CREATE TABLE grading_members (
    branch_id        uuid    NOT NULL,
    year             integer NOT NULL,
    member_id        uuid    NOT NULL,
    base_points      integer NOT NULL,
    bonus_points     integer NOT NULL,
    deduction_points integer NOT NULL,
    evaluation_points integer NOT NULL,
    total            integer NOT NULL CHECK (total BETWEEN 0 AND 1000),
    proposed_grade   text    NOT NULL,
    grade            text,
    reasons          jsonb   NOT NULL,
    override_reason  text    NOT NULL DEFAULT '',
    -- No foreign key to gradings: the service writes the grading first in the same
    -- transaction, and a per-row key check made the first year-end batch of a fresh database
    -- (statistics saying gradings is empty) scan gradings once per member.
    PRIMARY KEY (branch_id, year, member_id)
);
CREATE INDEX grading_members_member_idx ON grading_members (member_id, year);

CREATE FUNCTION gradings_final_is_immutable() RETURNS trigger AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') AND OLD.status = 'final' THEN
        RAISE EXCEPTION 'a final grading never changes' USING ERRCODE = 'check_violation';
    END IF;
    RETURN COALESCE(NEW, OLD);
END $$ LANGUAGE plpgsql;
CREATE TRIGGER gradings_final_immutable BEFORE UPDATE OR DELETE ON gradings
    FOR EACH ROW EXECUTE FUNCTION gradings_final_is_immutable();

CREATE FUNCTION grading_members_final_is_immutable() RETURNS trigger AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM gradings g WHERE g.branch_id = OLD.branch_id AND g.year = OLD.year
               AND g.status = 'final') THEN
        RAISE EXCEPTION 'a final grade never changes' USING ERRCODE = 'check_violation';
    END IF;
    RETURN COALESCE(NEW, OLD);
END $$ LANGUAGE plpgsql;
CREATE TRIGGER grading_members_final_immutable BEFORE UPDATE OR DELETE ON grading_members
    FOR EACH ROW EXECUTE FUNCTION grading_members_final_is_immutable();

-- Appeals 申诉 of a confirmed grade.
CREATE TABLE appeals (
    id              uuid        PRIMARY KEY,
    member_id       uuid        NOT NULL,
    branch_id       uuid        NOT NULL,
    branch_path     text        NOT NULL,
    year            integer     NOT NULL,
    status          text        NOT NULL CHECK (status IN ('open', 'upheld', 'changed')),
    reason          text        NOT NULL,
    filed_at        timestamptz NOT NULL,
    decision_reason text,
    grade           text,
    decided_by      text,
    decided_at      timestamptz
);
CREATE UNIQUE INDEX appeals_one_open_idx ON appeals (member_id, year) WHERE status = 'open';
CREATE INDEX appeals_branch_idx ON appeals (branch_id, year);

-- Append-only audit trail 痕迹管理 of every change by a person.
CREATE TABLE audit (
    id          bigserial   PRIMARY KEY,
    at          timestamptz NOT NULL,
    actor       text        NOT NULL,
    action      text        NOT NULL,
    subject     text        NOT NULL,
    from_state  text,
    to_state    text,
    reason      text,
    detail      jsonb       NOT NULL DEFAULT '{}'
);
CREATE FUNCTION audit_is_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'the audit trail is append-only' USING ERRCODE = 'check_violation';
END $$ LANGUAGE plpgsql;
CREATE TRIGGER audit_append_only BEFORE UPDATE OR DELETE ON audit
    FOR EACH ROW EXECUTE FUNCTION audit_is_append_only();
"#;

const DOWN: &str = r#"
DROP TABLE audit, appeals, grading_members, gradings, member_years, quarter_results, rounds,
    ledger_entries,
    source_versions, standards, members, organizations;
DROP FUNCTION audit_is_append_only(), grading_members_final_is_immutable(),
    gradings_final_is_immutable(), member_year_entry(smallint, boolean, integer, text),
    member_year_quarter(smallint, timestamptz, uuid, integer, integer, integer, boolean);
"#;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.get_connection().execute_unprepared(UP).await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.get_connection().execute_unprepared(DOWN).await?;
        Ok(())
    }
}

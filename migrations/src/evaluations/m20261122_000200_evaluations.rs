//! The evaluations service tables.
//!
//! Invariants the schema itself enforces (the service checks first and answers precisely; these
//! are the backstop):
//! * one round per organization and quarter; a closed round never changes again;
//! * rosters, invitations, ballots, ratings and results are append-only (no UPDATE, no DELETE);
//! * a ballot is only inserted into an open round, and only rates members of the round's roster;
//! * **anonymity**: a ballot row holds its round, the evaluator kind and the ratings — no code,
//!   no code hash, no ticket, no person, no timestamp, and a random (v4, not time-ordered) id.
//!   A code is spent by deleting its row from `unused_codes`; the `invitations` row of a code is
//!   never touched after issuance, so no visible row shares a transaction with a ballot
//!   (docs/evaluator-anonymity.md).

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261122_000200_evaluations"
    }
}

const UP: &str = r#"
-- Replica of the members service (members.* events): no personal data.
CREATE TABLE replica_organizations (
    id          uuid    PRIMARY KEY,
    parent_id   uuid,
    name        text    NOT NULL,
    kind        text    NOT NULL,
    path        text    NOT NULL,
    version     bigint  NOT NULL
);
CREATE INDEX replica_organizations_path_idx ON replica_organizations (path text_pattern_ops);

CREATE TABLE replica_members (
    id          uuid    PRIMARY KEY,
    org_id      uuid    NOT NULL,
    org_path    text    NOT NULL,
    name        text    NOT NULL,
    category    text    NOT NULL,
    status      text    NOT NULL,
    version     bigint  NOT NULL
);
CREATE INDEX replica_members_path_idx ON replica_members (org_path text_pattern_ops);

-- The newest published standard of each year (declarations.standard.published.v1).
CREATE TABLE standards (
    year        integer PRIMARY KEY,
    version     bigint  NOT NULL,
    document    text    NOT NULL
);

CREATE TABLE rounds (
    id              uuid        PRIMARY KEY,
    org_id          uuid        NOT NULL,
    org_path        text        NOT NULL,
    quarter         text        NOT NULL CHECK (quarter ~ '^[0-9]{4}-Q[1-4]$'),
    status          text        NOT NULL CHECK (status IN ('open', 'closed')),
    opened_at       timestamptz NOT NULL,
    opened_by       text        NOT NULL,
    closes_at       timestamptz,
    closed_at       timestamptz,
    closed_by       text,
    min_ballots     integer,
    score_excellent integer,
    score_good      integer,
    score_fair      integer,
    score_poor      integer,
    version         bigint      NOT NULL CHECK (version >= 1),
    CONSTRAINT rounds_one_per_quarter UNIQUE (org_id, quarter),
    CHECK ((status = 'closed') = (closed_at IS NOT NULL)),
    CHECK (status = 'open' OR min_ballots IS NOT NULL)
);
CREATE INDEX rounds_due_idx ON rounds (closes_at) WHERE status = 'open' AND closes_at IS NOT NULL;
CREATE INDEX rounds_org_idx ON rounds (org_id, quarter);

-- The branch's active members when the round opened.
CREATE TABLE round_roster (
    round_id    uuid    NOT NULL REFERENCES rounds (id),
    member_id   uuid    NOT NULL,
    name        text    NOT NULL,
    PRIMARY KEY (round_id, member_id)
);

CREATE TABLE invitation_batches (
    id              uuid        PRIMARY KEY,
    round_id        uuid        NOT NULL REFERENCES rounds (id),
    evaluator_kind  text        NOT NULL CHECK (evaluator_kind IN ('masses', 'member')),
    count           integer     NOT NULL CHECK (count > 0),
    issued_at       timestamptz NOT NULL,
    issued_by       text        NOT NULL
);

-- One row per code: its keyed hash (HMAC-SHA-256), never the code. Never updated.
CREATE TABLE invitations (
    code_hash       bytea   PRIMARY KEY CHECK (length(code_hash) = 32),
    round_id        uuid    NOT NULL REFERENCES rounds (id),
    batch_id        uuid    NOT NULL REFERENCES invitation_batches (id),
    evaluator_kind  text    NOT NULL CHECK (evaluator_kind IN ('masses', 'member'))
);
CREATE INDEX invitations_round_idx ON invitations (round_id);

-- Codes not spent yet. Casting a ballot deletes the code's row (exactly one concurrent DELETE
-- wins); nothing else records that or when a code was used.
CREATE TABLE unused_codes (
    code_hash   bytea   PRIMARY KEY REFERENCES invitations (code_hash)
);

-- Anonymous ballots: no code, no person, no time; a random id.
CREATE TABLE ballots (
    id              uuid    PRIMARY KEY,
    round_id        uuid    NOT NULL REFERENCES rounds (id),
    evaluator_kind  text    NOT NULL CHECK (evaluator_kind IN ('masses', 'member'))
);
CREATE INDEX ballots_round_idx ON ballots (round_id);

CREATE TABLE ballot_ratings (
    ballot_id   uuid    NOT NULL REFERENCES ballots (id),
    round_id    uuid    NOT NULL,
    member_id   uuid    NOT NULL,
    rating      text    NOT NULL CHECK (rating IN ('excellent', 'good', 'fair', 'poor')),
    PRIMARY KEY (ballot_id, member_id),
    FOREIGN KEY (round_id, member_id) REFERENCES round_roster (round_id, member_id)
);
CREATE INDEX ballot_ratings_round_idx ON ballot_ratings (round_id);

-- Computed once, at closing; immutable.
CREATE TABLE round_results (
    round_id        uuid    NOT NULL REFERENCES rounds (id),
    member_id       uuid    NOT NULL,
    ballots         integer NOT NULL CHECK (ballots >= 0),
    score_total     bigint  NOT NULL,
    score           integer,
    poor_ballots    integer NOT NULL CHECK (poor_ballots >= 0 AND poor_ballots <= ballots),
    valid           boolean NOT NULL,
    PRIMARY KEY (round_id, member_id),
    FOREIGN KEY (round_id, member_id) REFERENCES round_roster (round_id, member_id)
);

CREATE FUNCTION evaluations_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only', TG_TABLE_NAME USING ERRCODE = 'integrity_constraint_violation';
END;
$$;

CREATE TRIGGER round_roster_append_only BEFORE UPDATE OR DELETE ON round_roster
    FOR EACH ROW EXECUTE FUNCTION evaluations_append_only();
CREATE TRIGGER invitation_batches_append_only BEFORE UPDATE OR DELETE ON invitation_batches
    FOR EACH ROW EXECUTE FUNCTION evaluations_append_only();
CREATE TRIGGER invitations_append_only BEFORE UPDATE OR DELETE ON invitations
    FOR EACH ROW EXECUTE FUNCTION evaluations_append_only();
CREATE TRIGGER ballots_append_only BEFORE UPDATE OR DELETE ON ballots
    FOR EACH ROW EXECUTE FUNCTION evaluations_append_only();
CREATE TRIGGER ballot_ratings_append_only BEFORE UPDATE OR DELETE ON ballot_ratings
    FOR EACH ROW EXECUTE FUNCTION evaluations_append_only();
CREATE TRIGGER round_results_append_only BEFORE UPDATE OR DELETE ON round_results
    FOR EACH ROW EXECUTE FUNCTION evaluations_append_only();
CREATE TRIGGER unused_codes_no_update BEFORE UPDATE ON unused_codes
    FOR EACH ROW EXECUTE FUNCTION evaluations_append_only();

-- A closed round never changes; a round is never deleted.
CREATE FUNCTION evaluations_round_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' OR OLD.status = 'closed' THEN
        RAISE EXCEPTION 'round % is closed and immutable', OLD.id USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER rounds_guard BEFORE UPDATE OR DELETE ON rounds
    FOR EACH ROW EXECUTE FUNCTION evaluations_round_guard();

-- Ballots only into open rounds.
CREATE FUNCTION evaluations_ballot_round_open() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM rounds WHERE id = NEW.round_id AND status = 'open') THEN
        RAISE EXCEPTION 'round % is not open', NEW.round_id USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER ballots_round_open BEFORE INSERT ON ballots
    FOR EACH ROW EXECUTE FUNCTION evaluations_ballot_round_open();
"#;

const DOWN: &str = r#"
DROP TABLE IF EXISTS round_results, ballot_ratings, ballots, unused_codes, invitations,
    invitation_batches, round_roster, rounds, standards, replica_members, replica_organizations;
DROP FUNCTION IF EXISTS evaluations_append_only();
DROP FUNCTION IF EXISTS evaluations_round_guard();
DROP FUNCTION IF EXISTS evaluations_ballot_round_open();
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

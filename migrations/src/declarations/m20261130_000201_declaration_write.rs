//! `declaration_write(...)`: a declaration's new version written in one round trip, with the
//! guards the service's hot paths (save and submit) need, instead of a transaction of several
//! statements holding row locks between round trips.
//!
//! The service reads what it needs without locks, decides in Rust, and calls this function with
//! the version it read. The function (one implicit transaction):
//! 1. when creating the first declaration of a month, takes the year's shared advisory lock (the
//!    standard's publication holds it exclusively) and returns `standard_changed` unless the
//!    newest published version is still the one the caller checked against;
//! 2. when counting branch records (submit), takes the member-month advisory lock (branch
//!    recordings hold it too) and returns `records_changed` unless the unrevoked records of the
//!    month are still exactly the ones the caller counted;
//! 3. inserts the row (a duplicate member-month raises `declarations_member_month_key`), or
//!    updates it only if its version is still `p_expected` (else returns `changed`);
//! 4. appends the version snapshot and the transition (when there is one), and stages the event
//!    (when there is one) through `outbox_stage`;
//! 5. returns `written`.
//!
//! Each statement of a PL/pgSQL function takes a fresh snapshot under READ COMMITTED, so the
//! checks after a lock see everything committed before the lock was granted.

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261130_000201_declaration_write"
    }
}

const UP: &str = r#"
CREATE FUNCTION declaration_write(
    p_id uuid, p_member_id uuid, p_month text, p_year integer, p_org_id uuid, p_org_path text,
    p_status text, p_lines jsonb, p_claimed_total integer, p_approved_total integer,
    p_submitted_at timestamptz, p_reviewed_at timestamptz, p_reviewer_id text, p_comment text,
    p_version bigint, p_created_at timestamptz, p_updated_at timestamptz,
    p_expected bigint,        -- the version the caller read; 0 to create
    p_snapshot jsonb,         -- the state kept in declaration_versions
    p_year_lock bigint,       -- creating: the year's advisory lock key
    p_standard bigint,        -- creating: the standard version the caller checked against (0: none)
    p_month_lock text,        -- submitting: the member-month advisory lock key
    p_records uuid[],         -- submitting: the unrevoked branch records the caller counted
    p_transition boolean, p_actor_id text, p_actor_name text, p_from_status text,
    p_to_status text, p_reason text,
    p_event_id uuid, p_routing_key text, p_subject text, p_source text, p_payload bytea,
    p_traceparent text, p_tracestate text
) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    IF p_year_lock IS NOT NULL THEN
        PERFORM pg_advisory_xact_lock_shared(p_year_lock);
        IF coalesce((SELECT max(version) FROM standards WHERE year = p_year), 0) <> p_standard THEN
            RETURN 'standard_changed';
        END IF;
    END IF;
    IF p_month_lock IS NOT NULL THEN
        PERFORM pg_advisory_xact_lock(hashtextextended(p_month_lock, 0));
        IF (SELECT coalesce(array_agg(id ORDER BY id), '{}') FROM branch_records
            WHERE member_id = p_member_id AND month = p_month AND revoked_at IS NULL)
           IS DISTINCT FROM
           (SELECT coalesce(array_agg(r ORDER BY r), '{}') FROM unnest(p_records) r) THEN
            RETURN 'records_changed';
        END IF;
    END IF;
    IF p_expected = 0 THEN
        INSERT INTO declarations (id, member_id, month, year, org_id, org_path, status, lines,
            claimed_total, approved_total, submitted_at, reviewed_at, reviewer_id, comment,
            version, created_at, updated_at)
        VALUES (p_id, p_member_id, p_month, p_year, p_org_id, p_org_path, p_status, p_lines,
            p_claimed_total, p_approved_total, p_submitted_at, p_reviewed_at, p_reviewer_id,
            p_comment, p_version, p_created_at, p_updated_at);
    ELSE
        UPDATE declarations SET status = p_status, lines = p_lines,
            claimed_total = p_claimed_total, approved_total = p_approved_total,
            submitted_at = p_submitted_at, reviewed_at = p_reviewed_at,
            reviewer_id = p_reviewer_id, comment = p_comment, version = p_version,
            updated_at = p_updated_at
        WHERE id = p_id AND version = p_expected;
        IF NOT FOUND THEN
            RETURN 'changed';
        END IF;
    END IF;
    INSERT INTO declaration_versions (declaration_id, version, state, recorded_at)
    VALUES (p_id, p_version, p_snapshot, p_updated_at);
    IF p_transition THEN
        INSERT INTO declaration_transitions
            (declaration_id, version, actor_id, actor_name, from_status, to_status, reason, at)
        VALUES (p_id, p_version, p_actor_id, p_actor_name, p_from_status, p_to_status, p_reason,
            p_updated_at);
    END IF;
    IF p_event_id IS NOT NULL THEN
        PERFORM outbox_stage(p_event_id, p_routing_key, p_subject, p_source, p_payload,
            p_traceparent, p_tracestate);
    END IF;
    RETURN 'written';
END;
$$;
"#;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.get_connection().execute_unprepared(UP).await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared("DROP FUNCTION IF EXISTS declaration_write")
            .await?;
        Ok(())
    }
}

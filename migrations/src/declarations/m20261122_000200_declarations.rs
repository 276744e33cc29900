//! The declarations service tables.
//!
//! Invariants the schema enforces (the service checks first and answers precisely; these are the
//! backstop):
//! * one declaration per member and month; statuses and month format are the API's;
//! * `standards`, `declaration_versions`, `declaration_transitions` and `audit_log` are
//!   append-only (UPDATE, DELETE and TRUNCATE raise): a standard or a declaration is never edited
//!   in place, a change is a new version next to the old ones;
//! * `declarations` holds the newest version of each declaration (the row the API reads), and its
//!   `version` always equals the newest row of `declaration_versions`;
//! * replica rows carry the members service's version; only a newer version replaces them.

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261122_000200_declarations"
    }
}

const UP: &str = r#"
CREATE FUNCTION append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only', TG_TABLE_NAME;
END;
$$;

CREATE TABLE standards (
    year          integer     NOT NULL CHECK (year BETWEEN 2000 AND 2999),
    version       bigint      NOT NULL CHECK (version > 0),
    document      jsonb       NOT NULL,
    published_by  text        NOT NULL,
    published_at  timestamptz NOT NULL,
    PRIMARY KEY (year, version)
);

CREATE TABLE org_replica (
    id         uuid   PRIMARY KEY,
    parent_id  uuid,
    path       text   NOT NULL,
    name       text   NOT NULL,
    kind       text   NOT NULL,
    unit_type  text   NOT NULL,
    version    bigint NOT NULL
);
CREATE INDEX org_replica_path_idx ON org_replica (path text_pattern_ops);

CREATE TABLE member_replica (
    id        uuid   PRIMARY KEY,
    org_id    uuid   NOT NULL,
    org_path  text   NOT NULL,
    name      text   NOT NULL,
    category  text   NOT NULL,
    status    text   NOT NULL,
    version   bigint NOT NULL
);
CREATE INDEX member_replica_path_idx ON member_replica (org_path text_pattern_ops);

CREATE TABLE declarations (
    id              uuid        PRIMARY KEY,
    member_id       uuid        NOT NULL,
    month           text        NOT NULL CHECK (month ~ '^[0-9]{4}-(0[1-9]|1[0-2])$'),
    year            integer     NOT NULL,
    org_id          uuid        NOT NULL,
    org_path        text        NOT NULL,
    status          text        NOT NULL CHECK (status IN ('draft', 'submitted', 'approved', 'rejected', 'returned')),
    lines           jsonb       NOT NULL,
    claimed_total   integer     NOT NULL,
    approved_total  integer,
    submitted_at    timestamptz,
    reviewed_at     timestamptz,
    reviewer_id     text,
    comment         text        NOT NULL DEFAULT '',
    version         bigint      NOT NULL CHECK (version > 0),
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    CONSTRAINT declarations_member_month_key UNIQUE (member_id, month)
);
CREATE INDEX declarations_org_month_idx ON declarations (org_path text_pattern_ops, month);
CREATE INDEX declarations_year_idx ON declarations (year);

CREATE TABLE declaration_versions (
    declaration_id  uuid        NOT NULL REFERENCES declarations (id),
    version         bigint      NOT NULL,
    state           jsonb       NOT NULL,
    recorded_at     timestamptz NOT NULL,
    PRIMARY KEY (declaration_id, version)
);

CREATE TABLE declaration_transitions (
    id              bigserial   PRIMARY KEY,
    declaration_id  uuid        NOT NULL REFERENCES declarations (id),
    version         bigint      NOT NULL,
    actor_id        text        NOT NULL,
    actor_name      text        NOT NULL,
    from_status     text        NOT NULL,
    to_status       text        NOT NULL,
    reason          text        NOT NULL,
    at              timestamptz NOT NULL
);
CREATE INDEX declaration_transitions_decl_idx ON declaration_transitions (declaration_id, id);

CREATE TABLE branch_records (
    id             uuid        PRIMARY KEY,
    member_id      uuid        NOT NULL,
    org_id         uuid        NOT NULL,
    org_path       text        NOT NULL,
    month          text        NOT NULL CHECK (month ~ '^[0-9]{4}-(0[1-9]|1[0-2])$'),
    year           integer     NOT NULL,
    item_code      text        NOT NULL,
    category       text        NOT NULL,
    kind           text        NOT NULL CHECK (kind IN ('base', 'bonus', 'deduction', 'veto')),
    quantity       integer     NOT NULL CHECK (quantity > 0),
    points         integer     NOT NULL,
    note           text        NOT NULL,
    recorded_by    text        NOT NULL,
    recorded_at    timestamptz NOT NULL,
    revoked_by     text,
    revoked_at     timestamptz,
    revoke_reason  text,
    version        bigint      NOT NULL CHECK (version > 0)
);
CREATE INDEX branch_records_member_month_idx ON branch_records (member_id, month);
CREATE INDEX branch_records_org_month_idx ON branch_records (org_path text_pattern_ops, month);

CREATE TABLE reopenings (
    id           uuid        PRIMARY KEY,
    org_id       uuid        NOT NULL,
    org_path     text        NOT NULL,
    month        text        NOT NULL,
    until        timestamptz NOT NULL,
    reason       text        NOT NULL,
    reopened_by  text        NOT NULL,
    reopened_at  timestamptz NOT NULL
);
CREATE INDEX reopenings_month_idx ON reopenings (month, until);

CREATE TABLE evidence (
    reference     text        PRIMARY KEY,
    content_type  text        NOT NULL,
    size          bigint      NOT NULL,
    stored_at     timestamptz NOT NULL
);

-- Who uploaded a file: the uploader and the managers of their organization may read it.
CREATE TABLE evidence_uploads (
    reference    text        NOT NULL REFERENCES evidence (reference),
    uploaded_by  text        NOT NULL,
    org_path     text        NOT NULL,
    uploaded_at  timestamptz NOT NULL,
    PRIMARY KEY (reference, uploaded_by)
);

CREATE TABLE reminders_sent (
    member_id  uuid        NOT NULL,
    month      text        NOT NULL,
    sent_at    timestamptz NOT NULL,
    PRIMARY KEY (member_id, month)
);

CREATE TABLE audit_log (
    id            bigserial   PRIMARY KEY,
    at            timestamptz NOT NULL,
    actor_id      text        NOT NULL,
    action        text        NOT NULL,
    subject_type  text        NOT NULL,
    subject_id    text        NOT NULL,
    detail        jsonb       NOT NULL,
    reason        text        NOT NULL DEFAULT ''
);
CREATE INDEX audit_log_subject_idx ON audit_log (subject_type, subject_id, id);

CREATE TRIGGER standards_append_only BEFORE UPDATE OR DELETE ON standards
    FOR EACH ROW EXECUTE FUNCTION append_only();
CREATE TRIGGER declaration_versions_append_only BEFORE UPDATE OR DELETE ON declaration_versions
    FOR EACH ROW EXECUTE FUNCTION append_only();
CREATE TRIGGER declaration_transitions_append_only BEFORE UPDATE OR DELETE ON declaration_transitions
    FOR EACH ROW EXECUTE FUNCTION append_only();
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION append_only();
CREATE TRIGGER standards_no_truncate BEFORE TRUNCATE ON standards
    FOR EACH STATEMENT EXECUTE FUNCTION append_only();
CREATE TRIGGER declaration_versions_no_truncate BEFORE TRUNCATE ON declaration_versions
    FOR EACH STATEMENT EXECUTE FUNCTION append_only();
CREATE TRIGGER declaration_transitions_no_truncate BEFORE TRUNCATE ON declaration_transitions
    FOR EACH STATEMENT EXECUTE FUNCTION append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION append_only();
"#;

const DOWN: &str = r#"
DROP TABLE IF EXISTS audit_log;
DROP TABLE IF EXISTS reminders_sent;
DROP TABLE IF EXISTS evidence_uploads;
DROP TABLE IF EXISTS evidence;
DROP TABLE IF EXISTS reopenings;
DROP TABLE IF EXISTS branch_records;
DROP TABLE IF EXISTS declaration_transitions;
DROP TABLE IF EXISTS declaration_versions;
DROP TABLE IF EXISTS declarations;
DROP TABLE IF EXISTS member_replica;
DROP TABLE IF EXISTS org_replica;
DROP TABLE IF EXISTS standards;
DROP FUNCTION IF EXISTS append_only();
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

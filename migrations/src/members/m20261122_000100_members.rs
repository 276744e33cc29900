//! The members service tables.
//!
//! Invariants the schema itself enforces (the service checks them first and answers with a
//! precise error; these are the backstop):
//! * exactly one root organization (`parent_id IS NULL`), and only a committee may be the root;
//! * `path` is unique and every enum column holds one of the API's values;
//! * a member's ID card keyed hash is unique (the clear number is never stored);
//! * usernames are unique, one account per member;
//! * `audit_log` is append-only: UPDATE, DELETE and TRUNCATE raise an error.

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261122_000100_members"
    }
}

const UP: &str = r#"
CREATE TABLE organizations (
    id          uuid        PRIMARY KEY,
    parent_id   uuid        REFERENCES organizations (id),
    name        text        NOT NULL CHECK (length(name) > 0),
    kind        text        NOT NULL CHECK (kind IN ('committee', 'general_branch', 'branch', 'group')),
    unit_type   text        NOT NULL CHECK (unit_type IN ('government_organ', 'public_institution',
                                'state_enterprise', 'private_enterprise', 'social_organization', 'rural',
                                'community', 'university', 'other')),
    path        text        NOT NULL UNIQUE,
    version     bigint      NOT NULL CHECK (version >= 1),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CHECK (parent_id IS NOT NULL OR kind = 'committee')
);
-- Exactly one root: every row with a NULL parent has the same index key.
CREATE UNIQUE INDEX organizations_single_root ON organizations ((parent_id IS NULL)) WHERE parent_id IS NULL;
CREATE INDEX organizations_parent_idx ON organizations (parent_id, id);
CREATE INDEX organizations_path_idx ON organizations (path text_pattern_ops);

CREATE TABLE members (
    id              uuid        PRIMARY KEY,
    org_id          uuid        NOT NULL REFERENCES organizations (id),
    org_path        text        NOT NULL,
    name            text        NOT NULL CHECK (length(name) > 0),
    gender          text        NOT NULL CHECK (gender IN ('unspecified', 'male', 'female')),
    category        text        NOT NULL CHECK (category IN ('full', 'probationary')),
    status          text        NOT NULL CHECK (status IN ('active', 'transferred_out', 'deceased', 'expelled', 'left')),
    joined_on       date        NOT NULL,
    flags           jsonb       NOT NULL DEFAULT '[]',
    -- AES-256-GCM: version byte || 96-bit nonce || ciphertext and tag. Never the clear value.
    phone_cipher    bytea,
    -- HMAC-SHA256 keyed hash of the normalized value, for look-ups and uniqueness.
    phone_hash      bytea,
    id_card_cipher  bytea,
    id_card_hash    bytea,
    version         bigint      NOT NULL CHECK (version >= 1),
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CHECK ((phone_cipher IS NULL) = (phone_hash IS NULL)),
    CHECK ((id_card_cipher IS NULL) = (id_card_hash IS NULL))
);
CREATE UNIQUE INDEX members_id_card_hash_key ON members (id_card_hash) WHERE id_card_hash IS NOT NULL;
CREATE INDEX members_phone_hash_idx ON members (phone_hash) WHERE phone_hash IS NOT NULL;
CREATE INDEX members_org_idx ON members (org_id, id);
CREATE INDEX members_org_path_idx ON members (org_path text_pattern_ops, id);

CREATE TABLE accounts (
    id             uuid        PRIMARY KEY,
    username       text        NOT NULL UNIQUE,
    password_hash  text        NOT NULL,
    member_id      uuid        UNIQUE REFERENCES members (id),
    version        bigint      NOT NULL CHECK (version >= 1),
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE role_grants (
    id          uuid        PRIMARY KEY,
    account_id  uuid        NOT NULL REFERENCES accounts (id),
    org_id      uuid        NOT NULL REFERENCES organizations (id),
    role        text        NOT NULL CHECK (role IN ('admin', 'secretary')),
    granted_by  text        NOT NULL,
    granted_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (account_id, org_id, role)
);
CREATE INDEX role_grants_org_idx ON role_grants (org_id);

CREATE TABLE transfers (
    id              uuid        PRIMARY KEY,
    member_id       uuid        NOT NULL REFERENCES members (id),
    from_org_id     uuid        NOT NULL REFERENCES organizations (id),
    to_org_id       uuid        NOT NULL REFERENCES organizations (id),
    reason          text        NOT NULL,
    actor           text        NOT NULL,
    transferred_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX transfers_member_idx ON transfers (member_id, id);

CREATE TABLE sanctions (
    id           uuid        PRIMARY KEY,
    member_id    uuid        NOT NULL REFERENCES members (id),
    kind         text        NOT NULL CHECK (kind IN ('warning', 'serious_warning', 'removal_from_post',
                                 'probation', 'expulsion')),
    decided_on   date        NOT NULL,
    reason       text        NOT NULL,
    actor        text        NOT NULL,
    recorded_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX sanctions_member_idx ON sanctions (member_id, id);

-- 痕迹管理: who did what to which subject, when and why. Never personal data in clear.
CREATE TABLE audit_log (
    id            uuid        PRIMARY KEY,
    occurred_at   timestamptz NOT NULL DEFAULT now(),
    actor         text        NOT NULL,
    action        text        NOT NULL,
    subject_type  text        NOT NULL,
    subject_id    text        NOT NULL,
    before        jsonb,
    after         jsonb,
    detail        jsonb,
    reason        text
);
CREATE INDEX audit_log_subject_idx ON audit_log (subject_type, subject_id, id);

CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only';
END;
$$;
CREATE TRIGGER audit_log_no_update_delete BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();
"#;

const DOWN: &str = r#"
DROP TABLE IF EXISTS audit_log;
DROP FUNCTION IF EXISTS audit_log_append_only();
DROP TABLE IF EXISTS sanctions;
DROP TABLE IF EXISTS transfers;
DROP TABLE IF EXISTS role_grants;
DROP TABLE IF EXISTS accounts;
DROP TABLE IF EXISTS members;
DROP TABLE IF EXISTS organizations;
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

//! The only module that speaks SQL: sea-orm entities and queries over the declarations tables.
//!
//! Every function takes `&impl ConnectionTrait`, so the caller decides the transaction. Rows come
//! back as entity models; the use-cases turn them into domain values.

pub mod demo;
pub mod entities;

use entities::{
    audit_log, branch_record, declaration, declaration_transition, evidence, evidence_upload,
    member_replica, org_replica, reopening, standard,
};
use sea_orm::{
    ActiveModelTrait as _, ColumnTrait as _, ConnectionTrait, DbBackend, DbErr, EntityTrait as _,
    FromQueryResult, IntoActiveModel as _, QueryFilter as _, QueryOrder as _, QueryResult,
    QuerySelect as _, SqlErr, Statement, Value,
};
use std::collections::{HashMap, HashSet};
use uuid::Uuid;

/// Key of the advisory lock that serializes start-up work between instances ("jifen-decl").
pub(crate) const STARTUP_LOCK_KEY: i64 = 0x6a69_6665_6e2d_6463;
/// High bits of the per-year advisory locks that order standard publication against the first
/// declaration of a year.
const YEAR_LOCK_BASE: i64 = 0x6a69_6665_6e00_0000;

fn stmt(sql: &str, values: impl IntoIterator<Item = Value>) -> Statement {
    Statement::from_sql_and_values(DbBackend::Postgres, sql, values)
}

/// Locks `year` exclusively until the end of the transaction, to publish a standard. A year's
/// first declaration takes the same lock shared (in `declaration_write`), so "no declaration of
/// that year exists" stays true until the publication commits.
pub async fn lock_year(conn: &impl ConnectionTrait, year: i32) -> Result<(), DbErr> {
    conn.execute_raw(stmt(
        "SELECT pg_advisory_xact_lock($1)",
        [(YEAR_LOCK_BASE + i64::from(year)).into()],
    ))
    .await?;
    Ok(())
}

/// Whether `error` is a unique violation of the constraint named `constraint`.
pub fn is_unique_violation(error: &DbErr, constraint: &str) -> bool {
    matches!(error.sql_err(), Some(SqlErr::UniqueConstraintViolation(message)) if message.contains(constraint))
}

// ---------------------------------------------------------------------------------- standards

/// The newest published version of `year`'s standard.
pub async fn latest_standard(
    conn: &impl ConnectionTrait,
    year: i32,
) -> Result<Option<standard::Model>, DbErr> {
    standard::Entity::find()
        .filter(standard::Column::Year.eq(year))
        .order_by_desc(standard::Column::Version)
        .one(conn)
        .await
}

/// The newest version number of `year`'s standard (0: none published).
pub async fn latest_standard_version(conn: &impl ConnectionTrait, year: i32) -> Result<i64, DbErr> {
    #[derive(FromQueryResult)]
    struct Row {
        version: Option<i64>,
    }
    let row = Row::find_by_statement(stmt(
        "SELECT max(version) AS version FROM standards WHERE year = $1",
        [year.into()],
    ))
    .one(conn)
    .await?;
    Ok(row.and_then(|r| r.version).unwrap_or(0))
}

pub async fn insert_standard(
    conn: &impl ConnectionTrait,
    row: standard::Model,
) -> Result<(), DbErr> {
    standard::Entity::insert(row.into_active_model())
        .exec_without_returning(conn)
        .await?;
    Ok(())
}

/// Whether any declaration of `year` exists.
pub async fn year_has_declarations(conn: &impl ConnectionTrait, year: i32) -> Result<bool, DbErr> {
    let found = declaration::Entity::find()
        .filter(declaration::Column::Year.eq(year))
        .one(conn)
        .await?;
    Ok(found.is_some())
}

// ------------------------------------------------------------------------------------ replica

/// Writes an organization unless the replica holds the same or a newer version. Returns whether
/// it was written.
pub async fn upsert_org(
    conn: &impl ConnectionTrait,
    row: org_replica::Model,
) -> Result<bool, DbErr> {
    let done = conn
        .execute_raw(stmt(
            "INSERT INTO org_replica (id, parent_id, path, name, kind, unit_type, version)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (id) DO UPDATE SET parent_id = EXCLUDED.parent_id, path = EXCLUDED.path,
                 name = EXCLUDED.name, kind = EXCLUDED.kind, unit_type = EXCLUDED.unit_type,
                 version = EXCLUDED.version
             WHERE org_replica.version < EXCLUDED.version",
            [
                row.id.into(),
                row.parent_id.into(),
                row.path.into(),
                row.name.into(),
                row.kind.into(),
                row.unit_type.into(),
                row.version.into(),
            ],
        ))
        .await?;
    Ok(done.rows_affected() > 0)
}

/// Writes a member unless the replica holds the same or a newer version.
pub async fn upsert_member(
    conn: &impl ConnectionTrait,
    row: member_replica::Model,
) -> Result<bool, DbErr> {
    let done = conn
        .execute_raw(stmt(
            "INSERT INTO member_replica (id, org_id, org_path, name, category, status, version)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (id) DO UPDATE SET org_id = EXCLUDED.org_id, org_path = EXCLUDED.org_path,
                 name = EXCLUDED.name, category = EXCLUDED.category, status = EXCLUDED.status,
                 version = EXCLUDED.version
             WHERE member_replica.version < EXCLUDED.version",
            [
                row.id.into(),
                row.org_id.into(),
                row.org_path.into(),
                row.name.into(),
                row.category.into(),
                row.status.into(),
                row.version.into(),
            ],
        ))
        .await?;
    Ok(done.rows_affected() > 0)
}

pub async fn find_member(
    conn: &impl ConnectionTrait,
    id: Uuid,
) -> Result<Option<member_replica::Model>, DbErr> {
    member_replica::Entity::find_by_id(id).one(conn).await
}

/// What saving a member's month needs, read in one round trip without locks: the member, their
/// organization's unit type (`other` when unknown), the newest version of the year's standard
/// (0: none published), the branch's unrevoked records of the month, the member's declaration
/// of the month if there is one, until when a reopening (补报) keeps the month open at `now`,
/// and which of the given evidence references were uploaded.
pub struct SaveContext {
    pub member: member_replica::Model,
    pub unit_type: String,
    pub standard_version: i64,
    pub records: Vec<branch_record::Model>,
    pub existing: Option<declaration::Model>,
    pub reopened_until: Option<chrono::DateTime<chrono::Utc>>,
    pub uploaded: HashSet<String>,
}

/// What submitting a declaration needs, read in one round trip without locks: the declaration,
/// the unit type of its organization, the newest standard version of its year, the branch's
/// unrevoked records of its month and until when a reopening keeps that month open at `now`.
pub struct SubmitContext {
    pub declaration: declaration::Model,
    pub unit_type: String,
    pub standard_version: i64,
    pub records: Vec<branch_record::Model>,
    pub reopened_until: Option<chrono::DateTime<chrono::Utc>>,
}

#[derive(FromQueryResult)]
struct ContextRow {
    unit_type: Option<String>,
    standard_version: Option<i64>,
    records: serde_json::Value,
    existing: Option<serde_json::Value>,
    reopened_until: Option<chrono::DateTime<chrono::Utc>>,
}

fn from_json<T: serde::de::DeserializeOwned>(
    what: &str,
    value: serde_json::Value,
) -> Result<T, DbErr> {
    serde_json::from_value(value).map_err(|e| DbErr::Custom(format!("{what} as JSON: {e}")))
}

/// The context columns common to saving and submitting, for the member `member`, the month
/// `month`, the year `year`, the organization `org`, the path `path` (SQL expressions) and the
/// instant `$now`: the unit type, the standard's newest version, the unrevoked branch records
/// (a JSON array ordered by id) and the latest reopening still open.
fn context_columns(
    member: &str,
    month: &str,
    year: &str,
    org: &str,
    path: &str,
    now: &str,
) -> String {
    format!(
        "(SELECT unit_type FROM org_replica WHERE id = {org}) AS unit_type,
         (SELECT max(version) FROM standards WHERE year = {year}) AS standard_version,
         (SELECT coalesce(json_agg(b ORDER BY b.id), '[]'::json) FROM branch_records b
          WHERE b.member_id = {member} AND b.month = {month} AND b.revoked_at IS NULL) AS records,
         (SELECT max(until) FROM reopenings
          WHERE month = {month} AND until > {now} AND starts_with({path}, org_path)) AS reopened_until"
    )
}

pub async fn save_context(
    conn: &impl ConnectionTrait,
    member_id: Uuid,
    year: i32,
    month: &str,
    evidence: &[String],
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Option<SaveContext>, DbErr> {
    #[derive(FromQueryResult)]
    struct Row {
        uploaded: Vec<String>,
    }
    // A declaration keeps the path it was created under; a reopening applies to that path.
    let sql = format!(
        "SELECT m.id, m.org_id, m.org_path, m.name, m.category, m.status, m.version,
                to_jsonb(d) AS existing,
                array(SELECT reference FROM evidence WHERE reference = ANY($4)) AS uploaded,
                {}
         FROM member_replica m LEFT JOIN declarations d ON d.member_id = m.id AND d.month = $3
         WHERE m.id = $1",
        context_columns(
            "$1",
            "$3",
            "$2",
            "m.org_id",
            "coalesce(d.org_path, m.org_path)",
            "$5"
        )
    );
    let Some(raw) = conn
        .query_one_raw(stmt(
            &sql,
            [
                member_id.into(),
                year.into(),
                month.into(),
                evidence.to_vec().into(),
                now.into(),
            ],
        ))
        .await?
    else {
        return Ok(None);
    };
    let uploaded = Row::from_query_result(&raw, "")?.uploaded;
    save_context_of(&raw, uploaded.into_iter().collect()).map(Some)
}

/// A [`SaveContext`] from a row with the member replica's columns and [`context_columns`].
fn save_context_of(raw: &QueryResult, uploaded: HashSet<String>) -> Result<SaveContext, DbErr> {
    let c = ContextRow::from_query_result(raw, "")?;
    Ok(SaveContext {
        member: member_replica::Model::from_query_result(raw, "")?,
        unit_type: c.unit_type.unwrap_or_else(|| "other".to_owned()),
        standard_version: c.standard_version.unwrap_or(0),
        records: from_json("branch records", c.records)?,
        existing: c
            .existing
            .map(|d| from_json("declaration", d))
            .transpose()?,
        reopened_until: c.reopened_until,
        uploaded,
    })
}

pub async fn submit_context(
    conn: &impl ConnectionTrait,
    id: Uuid,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Option<SubmitContext>, DbErr> {
    let sql = format!(
        "SELECT to_jsonb(d) AS existing, {} FROM declarations d WHERE d.id = $1",
        context_columns(
            "d.member_id",
            "d.month",
            "d.year",
            "d.org_id",
            "d.org_path",
            "$2"
        )
    );
    let Some(raw) = conn
        .query_one_raw(stmt(&sql, [id.into(), now.into()]))
        .await?
    else {
        return Ok(None);
    };
    let c = ContextRow::from_query_result(&raw, "")?;
    let declaration = c
        .existing
        .ok_or_else(|| DbErr::Custom("a declaration row without its JSON".into()))?;
    Ok(Some(SubmitContext {
        declaration: from_json("declaration", declaration)?,
        unit_type: c.unit_type.unwrap_or_else(|| "other".to_owned()),
        standard_version: c.standard_version.unwrap_or(0),
        records: from_json("branch records", c.records)?,
        reopened_until: c.reopened_until,
    }))
}

/// What saving and then submitting one member's month needs in a batch: the [`SaveContext`]
/// (its `uploaded` holds every evidence reference of the batch that was uploaded), and the unit
/// type of the organization the declaration belongs to once saved (an existing declaration keeps
/// the organization it was created under; submitting reads that one's unit type).
pub struct BatchContext {
    pub save: SaveContext,
    pub declaration_unit_type: String,
}

/// [`save_context`] for many members of one month, in one round trip without locks (plus one
/// for the evidence references when there are any): member → context. Members the replica does
/// not hold are missing from the answer.
pub async fn batch_contexts(
    conn: &impl ConnectionTrait,
    member_ids: &[Uuid],
    year: i32,
    month: &str,
    evidence: &[String],
    now: chrono::DateTime<chrono::Utc>,
) -> Result<HashMap<Uuid, BatchContext>, DbErr> {
    #[derive(FromQueryResult)]
    struct Row {
        id: Uuid,
        declaration_unit_type: Option<String>,
    }
    let sql = format!(
        "SELECT m.id, m.org_id, m.org_path, m.name, m.category, m.status, m.version,
                to_jsonb(d) AS existing,
                (SELECT unit_type FROM org_replica WHERE id = coalesce(d.org_id, m.org_id))
                    AS declaration_unit_type,
                {}
         FROM member_replica m LEFT JOIN declarations d ON d.member_id = m.id AND d.month = $3
         WHERE m.id = ANY($1)",
        context_columns(
            "m.id",
            "$3",
            "$2",
            "m.org_id",
            "coalesce(d.org_path, m.org_path)",
            "$4"
        )
    );
    let rows = conn
        .query_all_raw(stmt(
            &sql,
            [
                member_ids.to_vec().into(),
                year.into(),
                month.into(),
                now.into(),
            ],
        ))
        .await?;
    let uploaded = known_evidence(conn, evidence).await?;
    let mut out = HashMap::with_capacity(rows.len());
    for raw in rows {
        let m = Row::from_query_result(&raw, "")?;
        out.insert(
            m.id,
            BatchContext {
                save: save_context_of(&raw, uploaded.clone())?,
                declaration_unit_type: m
                    .declaration_unit_type
                    .unwrap_or_else(|| "other".to_owned()),
            },
        );
    }
    Ok(out)
}

/// The guards of [`write_guarded`], from the caller's unlocked read.
pub struct WriteGuards<'a> {
    /// The version the caller read (0: the declaration is new).
    pub expected: i64,
    /// Creating the first declaration of a month: the standard version the caller checked
    /// against (0: none), re-checked under the year's shared lock.
    pub standard_version: Option<i64>,
    /// Submitting: the unrevoked branch records of the month the caller counted, re-checked
    /// under the member-month lock.
    pub records: Option<&'a [Uuid]>,
}

/// What [`write_guarded`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteOutcome {
    Written,
    /// The declaration is no longer at the version read.
    Changed,
    /// A standard of the year was published since the read.
    StandardChanged,
    /// The month's branch records changed since the read.
    RecordsChanged,
}

/// One call of `declaration_write`: a declaration's new version with its guards, snapshot,
/// transition (when there is one) and event (when there is one).
pub struct GuardedWrite<'a> {
    pub row: &'a declaration::Model,
    pub guards: WriteGuards<'a>,
    pub snapshot: serde_json::Value,
    pub transition: Option<NewTransition<'a>>,
    pub event: Option<&'a jifen_eventbus::StagedEvent>,
}

/// Arguments of `declaration_write` in one call.
const WRITE_ARGUMENTS: usize = 36;

/// The [`WRITE_ARGUMENTS`] arguments of `declaration_write` for `w`, in its parameter order.
fn write_arguments(w: GuardedWrite<'_>) -> Vec<Value> {
    let r = w.row;
    let t = w.transition.as_ref();
    let mut values: Vec<Value> = Vec::with_capacity(WRITE_ARGUMENTS);
    values.extend([
        r.id.into(),
        r.member_id.into(),
        r.month.clone().into(),
        r.year.into(),
        r.org_id.into(),
        r.org_path.clone().into(),
        r.status.clone().into(),
        r.lines.clone().into(),
        r.claimed_total.into(),
        r.approved_total.into(),
        r.submitted_at.into(),
        r.reviewed_at.into(),
        r.reviewer_id.clone().into(),
        r.comment.clone().into(),
        r.version.into(),
        r.created_at.into(),
        r.updated_at.into(),
        w.guards.expected.into(),
        w.snapshot.into(),
        w.guards
            .standard_version
            .map(|_| YEAR_LOCK_BASE + i64::from(r.year))
            .into(),
        w.guards.standard_version.into(),
        w.guards
            .records
            .map(|_| member_month_key(r.member_id, &r.month))
            .into(),
        w.guards.records.map(<[Uuid]>::to_vec).into(),
        t.is_some().into(),
        t.map(|t| t.actor_id.to_owned()).into(),
        t.map(|t| t.actor_name.to_owned()).into(),
        t.map(|t| t.from_status.to_owned()).into(),
        t.map(|t| t.to_status.to_owned()).into(),
        t.map(|t| t.reason.to_owned()).into(),
    ]);
    match w.event {
        Some(e) => values.extend(e.arguments()),
        None => values.extend([
            Option::<Uuid>::None.into(),
            Option::<String>::None.into(),
            Option::<String>::None.into(),
            Option::<String>::None.into(),
            Option::<Vec<u8>>::None.into(),
            Option::<String>::None.into(),
            Option::<String>::None.into(),
        ]),
    }
    values
}

fn parse_outcome(outcome: &str) -> Result<WriteOutcome, DbErr> {
    match outcome {
        "written" => Ok(WriteOutcome::Written),
        "changed" => Ok(WriteOutcome::Changed),
        "standard_changed" => Ok(WriteOutcome::StandardChanged),
        "records_changed" => Ok(WriteOutcome::RecordsChanged),
        other => Err(DbErr::Custom(format!("declaration_write returned {other}"))),
    }
}

/// `declaration_write($k, …)` for the `calls` calls starting at parameter `$1`, comma-separated.
fn write_calls(calls: usize) -> String {
    (0..calls)
        .map(|c| {
            let params = (1..=WRITE_ARGUMENTS)
                .map(|i| format!("${}", c * WRITE_ARGUMENTS + i))
                .collect::<Vec<_>>()
                .join(", ");
            format!("declaration_write({params})")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Writes a declaration's new version with `declaration_write` (one round trip, one implicit
/// transaction): guards, row, snapshot, transition and event, or nothing.
pub async fn write_guarded(
    conn: &impl ConnectionTrait,
    r: &declaration::Model,
    guards: WriteGuards<'_>,
    snapshot: serde_json::Value,
    transition: Option<NewTransition<'_>>,
    event: Option<&jifen_eventbus::StagedEvent>,
) -> Result<WriteOutcome, DbErr> {
    let values = write_arguments(GuardedWrite {
        row: r,
        guards,
        snapshot,
        transition,
        event,
    });
    let outcome: String = conn
        .query_one_raw(stmt(&format!("SELECT {}", write_calls(1)), values))
        .await?
        .ok_or_else(|| DbErr::Custom("declaration_write returned no row".into()))?
        .try_get_by_index(0)?;
    parse_outcome(&outcome)
}

/// Most `declaration_write` calls in one statement (PostgreSQL takes at most 65,535 parameters).
const WRITES_PER_STATEMENT: usize = 1000;

/// [`write_guarded`] for many declarations, in order, with one statement per
/// [`WRITES_PER_STATEMENT`] (`SELECT ARRAY[declaration_write(…), …]`: an array's elements are
/// evaluated in order, and each call sees what the calls before it wrote). The caller runs it in
/// its transaction and rolls back unless every outcome is [`WriteOutcome::Written`]: a call
/// refused by its guard does not stop the calls after it.
pub async fn write_guarded_many(
    conn: &impl ConnectionTrait,
    writes: Vec<GuardedWrite<'_>>,
) -> Result<Vec<WriteOutcome>, DbErr> {
    let mut outcomes = Vec::with_capacity(writes.len());
    let mut writes = writes.into_iter().peekable();
    while writes.peek().is_some() {
        let chunk: Vec<GuardedWrite<'_>> = writes.by_ref().take(WRITES_PER_STATEMENT).collect();
        let calls = chunk.len();
        let values: Vec<Value> = chunk.into_iter().flat_map(write_arguments).collect();
        let answered: Vec<String> = conn
            .query_one_raw(stmt(
                &format!("SELECT ARRAY[{}] AS outcomes", write_calls(calls)),
                values,
            ))
            .await?
            .ok_or_else(|| DbErr::Custom("declaration_write returned no row".into()))?
            .try_get_by_index(0)?;
        if answered.len() != calls {
            return Err(DbErr::Custom(format!(
                "declaration_write answered {} of {calls} calls",
                answered.len()
            )));
        }
        for outcome in &answered {
            outcomes.push(parse_outcome(outcome)?);
        }
    }
    Ok(outcomes)
}

pub async fn find_members(
    conn: &impl ConnectionTrait,
    ids: &[Uuid],
) -> Result<HashMap<Uuid, member_replica::Model>, DbErr> {
    Ok(member_replica::Entity::find()
        .filter(member_replica::Column::Id.is_in(ids.iter().copied()))
        .all(conn)
        .await?
        .into_iter()
        .map(|m| (m.id, m))
        .collect())
}

pub async fn find_org(
    conn: &impl ConnectionTrait,
    id: Uuid,
) -> Result<Option<org_replica::Model>, DbErr> {
    org_replica::Entity::find_by_id(id).one(conn).await
}

/// The organization with path `path`, for its unit type.
pub async fn find_org_by_path(
    conn: &impl ConnectionTrait,
    path: &str,
) -> Result<Option<org_replica::Model>, DbErr> {
    org_replica::Entity::find()
        .filter(org_replica::Column::Path.eq(path))
        .one(conn)
        .await
}

// ------------------------------------------------------------------------------- declarations

pub async fn find_declaration(
    conn: &impl ConnectionTrait,
    id: Uuid,
) -> Result<Option<declaration::Model>, DbErr> {
    declaration::Entity::find_by_id(id).one(conn).await
}

/// The declaration row locked until the end of the caller's transaction.
pub async fn find_declaration_for_update(
    conn: &impl ConnectionTrait,
    id: Uuid,
) -> Result<Option<declaration::Model>, DbErr> {
    declaration::Entity::find_by_id(id)
        .lock_exclusive()
        .one(conn)
        .await
}

/// The declarations among `ids`, locked until the end of the caller's transaction (in id
/// order, so two batches over the same rows cannot deadlock), by id.
pub async fn find_declarations_for_update(
    conn: &impl ConnectionTrait,
    ids: &[Uuid],
) -> Result<HashMap<Uuid, declaration::Model>, DbErr> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    Ok(declaration::Entity::find()
        .filter(declaration::Column::Id.is_in(ids.iter().copied()))
        .order_by_asc(declaration::Column::Id)
        .lock_exclusive()
        .all(conn)
        .await?
        .into_iter()
        .map(|r| (r.id, r))
        .collect())
}

/// A member's declaration of a month.
pub async fn find_member_month(
    conn: &impl ConnectionTrait,
    member_id: Uuid,
    month: &str,
) -> Result<Option<declaration::Model>, DbErr> {
    declaration::Entity::find()
        .filter(declaration::Column::MemberId.eq(member_id))
        .filter(declaration::Column::Month.eq(month))
        .one(conn)
        .await
}

/// One transition to record with a declaration's new version (the id is the database's; the
/// declaration, version and instant are the version's).
pub struct NewTransition<'a> {
    pub actor_id: &'a str,
    pub actor_name: &'a str,
    pub from_status: &'a str,
    pub to_status: &'a str,
    pub reason: &'a str,
}

pub async fn transitions(
    conn: &impl ConnectionTrait,
    declaration_id: Uuid,
) -> Result<Vec<declaration_transition::Model>, DbErr> {
    declaration_transition::Entity::find()
        .filter(declaration_transition::Column::DeclarationId.eq(declaration_id))
        .order_by_asc(declaration_transition::Column::Id)
        .all(conn)
        .await
}

/// Up to `limit` declarations in the subtree `path`, optionally of one month and status, with
/// ids after `after`, ordered by id.
pub async fn list_declarations(
    conn: &impl ConnectionTrait,
    path: &str,
    month: Option<&str>,
    status: Option<&str>,
    after: Option<Uuid>,
    limit: u64,
) -> Result<Vec<declaration::Model>, DbErr> {
    let mut q = declaration::Entity::find().filter(declaration::Column::OrgPath.starts_with(path));
    if let Some(month) = month {
        q = q.filter(declaration::Column::Month.eq(month));
    }
    if let Some(status) = status {
        q = q.filter(declaration::Column::Status.eq(status));
    }
    if let Some(after) = after {
        q = q.filter(declaration::Column::Id.gt(after));
    }
    q.order_by_asc(declaration::Column::Id)
        .limit(limit)
        .all(conn)
        .await
}

// ------------------------------------------------------------------------------ branch records

pub async fn insert_records(
    conn: &impl ConnectionTrait,
    rows: Vec<branch_record::Model>,
) -> Result<(), DbErr> {
    if rows.is_empty() {
        return Ok(());
    }
    branch_record::Entity::insert_many(rows.into_iter().map(|r| r.into_active_model()))
        .exec_without_returning(conn)
        .await?;
    Ok(())
}

pub async fn find_record_for_update(
    conn: &impl ConnectionTrait,
    id: Uuid,
) -> Result<Option<branch_record::Model>, DbErr> {
    branch_record::Entity::find_by_id(id)
        .lock_exclusive()
        .one(conn)
        .await
}

pub async fn update_record(
    conn: &impl ConnectionTrait,
    row: branch_record::Model,
) -> Result<(), DbErr> {
    row.into_active_model().reset_all().update(conn).await?;
    Ok(())
}

/// Branch records (revoked ones included) of the given members in the given months.
pub async fn records_of(
    conn: &impl ConnectionTrait,
    members: &[Uuid],
    months: &[String],
) -> Result<Vec<branch_record::Model>, DbErr> {
    if members.is_empty() {
        return Ok(Vec::new());
    }
    branch_record::Entity::find()
        .filter(branch_record::Column::MemberId.is_in(members.iter().copied()))
        .filter(branch_record::Column::Month.is_in(months.iter().cloned()))
        .order_by_asc(branch_record::Column::Id)
        .all(conn)
        .await
}

/// Points recorded by the branch and not revoked, by member and item, in `month`.
pub async fn recorded_points(
    conn: &impl ConnectionTrait,
    members: &[Uuid],
    month: &str,
) -> Result<HashMap<(Uuid, String), i32>, DbErr> {
    let mut out = HashMap::new();
    for r in records_of(conn, members, &[month.to_owned()]).await? {
        if r.revoked_at.is_none() {
            *out.entry((r.member_id, r.item_code)).or_insert(0) += r.points;
        }
    }
    Ok(out)
}

/// Up to `limit` branch records in the subtree `path` (of `month` if given), after `after`.
pub async fn list_records(
    conn: &impl ConnectionTrait,
    path: &str,
    month: Option<&str>,
    after: Option<Uuid>,
    limit: u64,
) -> Result<Vec<branch_record::Model>, DbErr> {
    let mut q =
        branch_record::Entity::find().filter(branch_record::Column::OrgPath.starts_with(path));
    if let Some(month) = month {
        q = q.filter(branch_record::Column::Month.eq(month));
    }
    if let Some(after) = after {
        q = q.filter(branch_record::Column::Id.gt(after));
    }
    q.order_by_asc(branch_record::Column::Id)
        .limit(limit)
        .all(conn)
        .await
}

// ---------------------------------------------------------------------------------- reopenings

pub async fn insert_reopening(
    conn: &impl ConnectionTrait,
    row: reopening::Model,
) -> Result<(), DbErr> {
    reopening::Entity::insert(row.into_active_model())
        .exec_without_returning(conn)
        .await?;
    Ok(())
}

/// The latest instant until which `month` is reopened for a member at `member_path` (by a
/// reopening of their organization or an ancestor), if that is after `now`.
pub async fn reopened_until(
    conn: &impl ConnectionTrait,
    member_path: &str,
    month: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Option<chrono::DateTime<chrono::Utc>>, DbErr> {
    #[derive(FromQueryResult)]
    struct Row {
        until: Option<chrono::DateTime<chrono::Utc>>,
    }
    let row = Row::find_by_statement(stmt(
        "SELECT max(until) AS until FROM reopenings
         WHERE month = $1 AND until > $2 AND starts_with($3, org_path)",
        [month.into(), now.into(), member_path.into()],
    ))
    .one(conn)
    .await?;
    Ok(row.and_then(|r| r.until))
}

// -------------------------------------------------------------------------------- final grades

/// Records that `member_id`'s grade of `year` is final (idempotent: a final grade never changes).
pub async fn insert_final_grade(
    conn: &impl ConnectionTrait,
    member_id: Uuid,
    year: i32,
    org_id: Uuid,
    org_path: &str,
    finalized_at: chrono::DateTime<chrono::Utc>,
) -> Result<(), DbErr> {
    conn.execute_raw(stmt(
        "INSERT INTO final_grades (member_id, year, org_id, org_path, finalized_at)
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (member_id, year) DO NOTHING",
        [
            member_id.into(),
            year.into(),
            org_id.into(),
            org_path.into(),
            finalized_at.into(),
        ],
    ))
    .await?;
    Ok(())
}

/// Those of `member_ids` whose grade of `year` is final.
pub async fn final_members(
    conn: &impl ConnectionTrait,
    member_ids: &[Uuid],
    year: i32,
) -> Result<HashSet<Uuid>, DbErr> {
    #[derive(FromQueryResult)]
    struct Row {
        member_id: Uuid,
    }
    let rows = Row::find_by_statement(stmt(
        "SELECT member_id FROM final_grades WHERE year = $1 AND member_id = ANY($2)",
        [year.into(), member_ids.to_vec().into()],
    ))
    .all(conn)
    .await?;
    Ok(rows.into_iter().map(|r| r.member_id).collect())
}

/// Whether a grade of `year` is final for a branch in the subtree at `org_path` or above it (a
/// group's members are graded in the branch over the group).
pub async fn final_near(
    conn: &impl ConnectionTrait,
    org_path: &str,
    year: i32,
) -> Result<bool, DbErr> {
    #[derive(FromQueryResult)]
    struct Row {
        found: bool,
    }
    let row = Row::find_by_statement(stmt(
        "SELECT EXISTS (SELECT 1 FROM final_grades
                        WHERE year = $1 AND (starts_with(org_path, $2) OR starts_with($2, org_path)))
         AS found",
        [year.into(), org_path.into()],
    ))
    .one(conn)
    .await?;
    Ok(row.is_some_and(|r| r.found))
}

// ------------------------------------------------------------------------------------ evidence

/// Records a stored file and who uploaded it (both idempotent).
pub async fn record_evidence(
    conn: &impl ConnectionTrait,
    file: evidence::Model,
    upload: evidence_upload::Model,
) -> Result<(), DbErr> {
    conn.execute_raw(stmt(
        "INSERT INTO evidence (reference, content_type, size, stored_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT (reference) DO NOTHING",
        [
            file.reference.into(),
            file.content_type.into(),
            file.size.into(),
            file.stored_at.into(),
        ],
    ))
    .await?;
    conn.execute_raw(stmt(
        "INSERT INTO evidence_uploads (reference, uploaded_by, org_path, uploaded_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT (reference, uploaded_by) DO NOTHING",
        [
            upload.reference.into(),
            upload.uploaded_by.into(),
            upload.org_path.into(),
            upload.uploaded_at.into(),
        ],
    ))
    .await?;
    Ok(())
}

/// Which of `references` were uploaded.
pub async fn known_evidence(
    conn: &impl ConnectionTrait,
    references: &[String],
) -> Result<HashSet<String>, DbErr> {
    if references.is_empty() {
        return Ok(HashSet::new());
    }
    Ok(evidence::Entity::find()
        .filter(evidence::Column::Reference.is_in(references.iter().cloned()))
        .all(conn)
        .await?
        .into_iter()
        .map(|e| e.reference)
        .collect())
}

pub async fn find_evidence(
    conn: &impl ConnectionTrait,
    reference: &str,
) -> Result<Option<evidence::Model>, DbErr> {
    evidence::Entity::find_by_id(reference.to_owned())
        .one(conn)
        .await
}

pub async fn evidence_uploads(
    conn: &impl ConnectionTrait,
    reference: &str,
) -> Result<Vec<evidence_upload::Model>, DbErr> {
    evidence_upload::Entity::find()
        .filter(evidence_upload::Column::Reference.eq(reference))
        .all(conn)
        .await
}

/// Whether a declaration line in `path`'s subtree carries `reference` (so the reviewers of that
/// declaration may read the file).
pub async fn evidence_in_declarations_under(
    conn: &impl ConnectionTrait,
    reference: &str,
    paths: &[&str],
) -> Result<bool, DbErr> {
    for path in paths {
        let found = conn
            .query_one_raw(stmt(
                "SELECT 1 FROM declarations WHERE starts_with(org_path, $1)
                   AND lines @> jsonb_build_array(jsonb_build_object('evidence', jsonb_build_array($2::text)))
                 LIMIT 1",
                [(*path).into(), reference.into()],
            ))
            .await?;
        if found.is_some() {
            return Ok(true);
        }
    }
    Ok(false)
}

// ----------------------------------------------------------------------------------- reminders

/// Marks, once per member and month, every active member with nothing handed in for `month`
/// as reminded; returns `(member_id, org_id)` of those marked now.
pub async fn claim_reminders(
    conn: &impl ConnectionTrait,
    month: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Vec<(Uuid, Uuid)>, DbErr> {
    #[derive(FromQueryResult)]
    struct Row {
        member_id: Uuid,
        org_id: Uuid,
    }
    let rows = Row::find_by_statement(stmt(
        "WITH due AS (
             INSERT INTO reminders_sent (member_id, month, sent_at)
             SELECT m.id, $1, $2 FROM member_replica m
             WHERE m.status = 'active'
               AND NOT EXISTS (SELECT 1 FROM declarations d WHERE d.member_id = m.id AND d.month = $1
                                 AND d.status IN ('submitted', 'approved', 'rejected'))
             ON CONFLICT DO NOTHING
             RETURNING member_id)
         SELECT due.member_id, m.org_id FROM due JOIN member_replica m ON m.id = due.member_id
         ORDER BY due.member_id",
        [month.into(), now.into()],
    ))
    .all(conn)
    .await?;
    Ok(rows.into_iter().map(|r| (r.member_id, r.org_id)).collect())
}

// ----------------------------------------------------------------------------------- audit log

/// Appends one row to the audit trail (痕迹管理).
pub async fn audit(
    conn: &impl ConnectionTrait,
    at: chrono::DateTime<chrono::Utc>,
    actor_id: &str,
    action: &str,
    subject: (&str, String),
    detail: serde_json::Value,
    reason: &str,
) -> Result<(), DbErr> {
    let row = audit_log::ActiveModel {
        id: sea_orm::ActiveValue::NotSet,
        at: sea_orm::ActiveValue::Set(at),
        actor_id: sea_orm::ActiveValue::Set(actor_id.to_owned()),
        action: sea_orm::ActiveValue::Set(action.to_owned()),
        subject_type: sea_orm::ActiveValue::Set(subject.0.to_owned()),
        subject_id: sea_orm::ActiveValue::Set(subject.1),
        detail: sea_orm::ActiveValue::Set(detail),
        reason: sea_orm::ActiveValue::Set(reason.to_owned()),
    };
    audit_log::Entity::insert(row)
        .exec_without_returning(conn)
        .await?;
    Ok(())
}

/// Serializes changes to each of `member_ids`' month (branch recordings passing a cap; a
/// submission takes the same lock in `declaration_write`) until the end of the transaction. The
/// locks are taken in the order of `member_ids` (the caller sorts them, so two lockers of
/// overlapping sets cannot deadlock), in one round trip.
pub async fn lock_member_months(
    conn: &impl ConnectionTrait,
    member_ids: &[Uuid],
    month: &str,
) -> Result<(), DbErr> {
    if member_ids.is_empty() {
        return Ok(());
    }
    let keys: Vec<String> = member_ids
        .iter()
        .map(|id| member_month_key(*id, month))
        .collect();
    // A set-returning function in FROM yields its rows in order, and the select list is
    // evaluated row by row as they come: the locks are taken in the order of `keys`.
    conn.execute_raw(stmt(
        "SELECT pg_advisory_xact_lock(hashtextextended(k, 0)) FROM unnest($1::text[]) AS k",
        [keys.into()],
    ))
    .await?;
    Ok(())
}

/// Most events staged by one statement of [`stage_many`] (PostgreSQL takes at most 65,535
/// parameters, seven an event).
const EVENTS_PER_STATEMENT: usize = 5000;

/// Stages `events` (prepared with [`jifen_eventbus::StagedEvent::prepare`]) in the caller's
/// transaction through the bus's own `outbox_stage(…)`, one call per event, in one statement per
/// [`EVENTS_PER_STATEMENT`] instead of one round trip per event.
pub async fn stage_many(
    conn: &impl ConnectionTrait,
    events: &[jifen_eventbus::StagedEvent],
) -> Result<(), DbErr> {
    for chunk in events.chunks(EVENTS_PER_STATEMENT) {
        let calls = (0..chunk.len())
            .map(|c| {
                let params = (1..=7)
                    .map(|i| format!("${}", c * 7 + i))
                    .collect::<Vec<_>>()
                    .join(", ");
                format!("(outbox_stage({params}) IS NULL)")
            })
            .collect::<Vec<_>>()
            .join(", ");
        let values: Vec<Value> = chunk.iter().flat_map(|e| e.arguments()).collect();
        conn.execute_raw(stmt(&format!("SELECT ARRAY[{calls}]"), values))
            .await?;
    }
    Ok(())
}

/// The text key (hashed by `hashtextextended`) of the advisory lock on one member's month.
fn member_month_key(member_id: Uuid, month: &str) -> String {
    format!("{member_id}/{month}")
}

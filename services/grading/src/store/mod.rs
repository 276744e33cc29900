//! The only module that speaks SQL (schema: `migrations/src/grading/`).
//!
//! Every function takes `&impl ConnectionTrait`, so the caller decides the transaction. Rows come
//! back as plain row structs (enum columns as text); the use-cases turn them into domain values.
//!
//! * [`projection`]: what the consumed events build — organizations, members, standards, the
//!   ledger and quarter results — each guarded by the source aggregate's version;
//! * [`gradings`]: gradings, members' grades, appeals and the audit trail;
//! * [`inputs`]: a member's ledger rows, and the streamed grading inputs of a range of branches;
//! * [`dashboard`]: the declarations' months and the dashboard's set-based sums over a subtree.

pub mod dashboard;
pub mod demo;
pub mod gradings;
pub mod inputs;
pub mod projection;

use sea_orm::{DbBackend, DbErr, Statement, Value};

/// Key of the advisory lock that serializes start-up migrations between instances.
pub(crate) const STARTUP_LOCK_KEY: i64 = 0x6a69_6665_6e2d_6772;

/// `'<path>%'` as an SQL literal, for `column LIKE <literal>`: a constant pattern lets PostgreSQL
/// use the `text_pattern_ops` index, which a `$n || '%'` parameter (a generic plan) does not.
/// Paths are `/`-separated UUIDs; anything else is refused rather than quoted.
pub(crate) fn subtree_pattern(path: &str) -> Result<String, DbErr> {
    if path.is_empty()
        || !path
            .chars()
            .all(|c| c.is_ascii_hexdigit() || c == '-' || c == '/')
    {
        return Err(DbErr::Custom(format!("not an organization path: {path:?}")));
    }
    Ok(format!("'{path}%'"))
}

/// A sqlx error as sea-orm's (the driver error kept inside), for the functions that use sqlx
/// directly.
pub(crate) fn query_err(e: sqlx::Error) -> DbErr {
    DbErr::Query(sea_orm::RuntimeErr::SqlxError(std::sync::Arc::new(e)))
}

/// A PostgreSQL statement with positional values.
pub(crate) fn stmt(sql: impl Into<String>, values: impl IntoIterator<Item = Value>) -> Statement {
    Statement::from_sql_and_values(DbBackend::Postgres, sql, values)
}

/// `($1, $2, …), ($k, …)`: placeholders for `rows` rows of `width` values, starting at `$first`.
pub(crate) fn placeholders(rows: usize, width: usize, first: usize) -> String {
    (0..rows)
        .map(|r| {
            let cols: Vec<String> = (0..width)
                .map(|c| format!("${}", first + r * width + c))
                .collect();
            format!("({})", cols.join(", "))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    #[test]
    fn subtree_patterns_take_paths_only() {
        let path = "/0192a3b4-0000-7000-8000-000000000001/";
        assert_eq!(
            super::subtree_pattern(path).ok(),
            Some(format!("'{path}%'"))
        );
        assert!(super::subtree_pattern("/x'; DROP TABLE members; --/").is_err());
        assert!(super::subtree_pattern("").is_err());
    }
}

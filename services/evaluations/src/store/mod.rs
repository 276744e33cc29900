//! The only module that speaks SQL (schema: `migrations/src/evaluations/`).
//!
//! Every function takes `&impl ConnectionTrait`, so the caller decides the transaction. Rows come
//! back as plain row structs (enum columns as text); the use-cases turn them into domain values.

pub mod ballots;
pub mod demo;
pub mod final_grades;
pub mod invitations;
pub mod replica;
pub mod rounds;
pub mod standards;

use sea_orm::{DbBackend, DbErr, SqlErr, Statement, Value};

/// Key of the advisory lock that serializes start-up migrations between instances.
pub(crate) const STARTUP_LOCK_KEY: i64 = 0x6a69_6665_6e2d_6576;

/// Whether `error` is a unique violation of the constraint or index named `constraint`.
pub fn is_unique_violation(error: &DbErr, constraint: &str) -> bool {
    matches!(error.sql_err(), Some(SqlErr::UniqueConstraintViolation(message)) if message.contains(constraint))
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
    fn placeholders_number_rows() {
        assert_eq!(super::placeholders(2, 3, 1), "($1, $2, $3), ($4, $5, $6)");
        assert_eq!(super::placeholders(1, 2, 3), "($3, $4)");
    }
}

//! The grading service database (`jifen_grading`): projections of the members, declarations and
//! evaluations events (organizations, members with sanctions, the points ledger, quarter results,
//! the newest standard per year), and what the service owns — gradings per branch and year, the
//! members' proposed and confirmed grades, appeals, and the audit trail.

use sea_orm_migration::prelude::*;

mod m20261130_000300_grading;
mod m20261201_000100_dashboard;
mod m20261203_000100_exact_quarters;
mod m20261203_000200_demo_seed;
mod m20261203_000500_dashboard_rollup;

/// The dashboard rollup's rebuild from the projected tables (its migration's backfill), for a
/// bulk-loaded database and for the tests that compare it with the incremental tables.
pub use m20261203_000500_dashboard_rollup::REBUILD as DASHBOARD_ROLLUP_REBUILD;

/// Migrator of the `jifen_grading` database.
pub struct GradingMigrator;

#[async_trait::async_trait]
impl MigratorTrait for GradingMigrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        let mut migrations = jifen_eventbus::migration::all();
        migrations.push(Box::new(m20261130_000300_grading::Migration));
        migrations.push(Box::new(m20261201_000100_dashboard::Migration));
        migrations.push(Box::new(m20261203_000100_exact_quarters::Migration));
        migrations.push(Box::new(m20261203_000200_demo_seed::Migration));
        migrations.push(Box::new(m20261203_000500_dashboard_rollup::Migration));
        migrations
    }
}

//! The grading service database (`jifen_grading`): projections of the members, declarations and
//! evaluations events (organizations, members with sanctions, the points ledger, quarter results,
//! the newest standard per year), and what the service owns — gradings per branch and year, the
//! members' proposed and confirmed grades, appeals, and the audit trail.

use sea_orm_migration::prelude::*;

mod m20261130_000300_grading;
mod m20261201_000100_dashboard;
mod m20261203_000100_exact_quarters;
mod m20261203_000200_demo_seed;

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
        migrations
    }
}

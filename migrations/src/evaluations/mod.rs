//! The evaluations service database (`jifen_evaluations`): the replica of organizations and
//! members (fed by `members.*` events), the newest standard per year (fed by
//! `declarations.standard.published.v1`), quarterly rounds with their rosters, invitation codes
//! (keyed hashes only), anonymous ballots and the results computed at closing.

use sea_orm_migration::prelude::*;

mod m20261122_000200_evaluations;

/// Migrator of the `jifen_evaluations` database.
pub struct EvaluationsMigrator;

#[async_trait::async_trait]
impl MigratorTrait for EvaluationsMigrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        let mut migrations = jifen_eventbus::migration::all();
        migrations.push(Box::new(m20261122_000200_evaluations::Migration));
        migrations
    }
}

//! The evaluations service database (`jifen_evaluations`): the replica of organizations and
//! members (fed by `members.*` events), the newest standard per year (fed by
//! `declarations.standard.published.v1`), quarterly rounds with their rosters, invitation codes
//! (keyed hashes only), anonymous ballots, the results computed at closing, and the members whose
//! grade of a year is final (fed by `grading.member_grade.finalized.v1`).

use sea_orm_migration::prelude::*;

mod m20261122_000200_evaluations;
mod m20261130_000201_final_grades;
mod m20261203_000202_demo_seed;

/// Migrator of the `jifen_evaluations` database.
pub struct EvaluationsMigrator;

#[async_trait::async_trait]
impl MigratorTrait for EvaluationsMigrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        let mut migrations = jifen_eventbus::migration::all();
        migrations.push(Box::new(m20261122_000200_evaluations::Migration));
        migrations.push(Box::new(m20261130_000201_final_grades::Migration));
        migrations.push(Box::new(m20261203_000202_demo_seed::Migration));
        migrations
    }
}

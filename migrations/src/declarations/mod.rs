//! The declarations service database (`jifen_declarations`): published standards, the replica of
//! `members.*`, declarations with their immutable versions and transitions, branch records,
//! reopened periods, evidence, sent reminders and the members whose grade of a year is final.

use sea_orm_migration::prelude::*;

mod m20261122_000200_declarations;
mod m20261130_000201_declaration_write;
mod m20261130_000202_final_grades;
mod m20261203_000203_demo_seed;

/// Migrator of the `jifen_declarations` database.
pub struct DeclarationsMigrator;

#[async_trait::async_trait]
impl MigratorTrait for DeclarationsMigrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        let mut migrations = jifen_eventbus::migration::all();
        migrations.push(Box::new(m20261122_000200_declarations::Migration));
        migrations.push(Box::new(m20261130_000201_declaration_write::Migration));
        migrations.push(Box::new(m20261130_000202_final_grades::Migration));
        migrations.push(Box::new(m20261203_000203_demo_seed::Migration));
        migrations
    }
}

//! The members service database (`jifen_members`): organization tree, members, accounts and
//! role grants, transfers, sanctions and the append-only audit log; the demo seed's marker.

use sea_orm_migration::prelude::*;

mod m20261122_000100_members;
mod m20261203_000101_demo_seed;

/// Migrator of the `jifen_members` database.
pub struct MembersMigrator;

#[async_trait::async_trait]
impl MigratorTrait for MembersMigrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        let mut migrations = jifen_eventbus::migration::all();
        migrations.push(Box::new(m20261122_000100_members::Migration));
        migrations.push(Box::new(m20261203_000101_demo_seed::Migration));
        migrations
    }
}

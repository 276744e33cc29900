//! `JIFEN_MIGRATE_ON_START=false`: the service leaves migrations to `jifen-members migrate` (a
//! Kubernetes Job) and refuses to start on a schema older than its code.

use crate::helpers::{Keys, init_telemetry, settings};
use jifen_eventbus::BusConfig;
use jifen_members::Application;
use sea_orm::{ConnectionTrait as _, DbBackend, Statement};

#[tokio::test(flavor = "multi_thread")]
async fn without_migrate_on_start_the_service_waits_for_the_migrate_command() {
    init_telemetry();
    let database = jifen_testkit::fresh_database("members_nomig")
        .await
        .unwrap();
    let bus = BusConfig::new(jifen_testkit::amqp_url())
        .with_prefix(&jifen_testkit::unique_prefix("members-nomig"));
    let keys = Keys::generate();
    let mut settings = settings(&database, &bus, &keys);
    settings.migrate_on_start = false;

    let refused = Application::build(settings.clone())
        .await
        .err()
        .expect("an unmigrated database is refused");
    let chain = format!("{refused:#}");
    assert!(
        chain.contains("pending") && chain.contains("migrate"),
        "{chain}"
    );
    let db = jifen_platform::db::connect(&database.url, 1).await.unwrap();
    let tables = db
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT count(*)::int8 FROM pg_tables WHERE schemaname = 'public'",
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get_by_index::<i64>(0)
        .unwrap();
    assert_eq!(tables, 0, "the refused start created nothing");

    // What `jifen-members migrate` does; then the service starts without migrating.
    jifen_members::migrate(&database.server_url, &database.name)
        .await
        .unwrap()
        .close()
        .await
        .unwrap();
    let app = Application::build(settings).await.unwrap();
    assert!(jifen_platform::db::ping(app.db()).await);
    jifen_eventbus::delete_topology(&bus, &[]).await;
}

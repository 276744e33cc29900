//! Events of the members service seen by a real consumer: one trace from the HTTP request to the
//! consumer, and nothing lost while RabbitMQ is down.

use crate::cluster::{ADMIN_PASSWORD, Cluster, eventually};
use jifen_eventbus::{BusConfig, Consumer, ConsumerSpec, EventHandler, HandleError, IncomingEvent};
use prost::Message as _;
use sea_orm::{
    ConnectionTrait as _, DatabaseConnection, DatabaseTransaction, DbBackend, Statement,
};
use sea_orm_migration::prelude::*;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

struct ConsumerMigrator;

impl MigratorTrait for ConsumerMigrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        jifen_eventbus::migration::all()
    }
}

/// Records every applied member event, in the consumer's transaction.
struct Recorder;

#[async_trait::async_trait]
impl EventHandler for Recorder {
    async fn handle(
        &self,
        tx: &DatabaseTransaction,
        event: &IncomingEvent,
    ) -> Result<(), HandleError> {
        let changed = jifen_proto::events::v1::MemberChanged::decode(event.payload.as_slice())
            .map_err(|e| HandleError::Permanent(format!("not a MemberChanged: {e}")))?;
        let member = changed
            .member
            .ok_or_else(|| HandleError::Permanent("no member".into()))?;
        tx.execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "INSERT INTO seen (event_id, routing_key, member_id, version, traceparent) VALUES ($1, $2, $3, $4, $5)",
            [
                event.id.into(),
                event.routing_key.clone().into(),
                member.id.into(),
                member.version.into(),
                event.traceparent.clone().into(),
            ],
        ))
        .await
        .map_err(|e| HandleError::Transient(e.into()))?;
        Ok(())
    }
}

struct TestConsumer {
    db: DatabaseConnection,
    cancel: CancellationToken,
}

impl TestConsumer {
    async fn start(cluster: &Cluster) -> Self {
        let tdb = jifen_testkit::fresh_database("e2econsumer").await.unwrap();
        let db = jifen_platform::db::connect(&tdb.url, 4).await.unwrap();
        ConsumerMigrator::up(&db, None).await.unwrap();
        db.execute_unprepared(
            "CREATE TABLE seen (event_id uuid PRIMARY KEY, routing_key text, member_id text, version bigint, traceparent text)",
        )
        .await
        .unwrap();
        let config = BusConfig::new(jifen_testkit::amqp_url()).with_prefix(&cluster.bus_prefix);
        let spec = ConsumerSpec {
            name: "e2e.members-recorder".into(),
            bindings: vec!["members.member.#".into()],
        };
        let cancel = CancellationToken::new();
        let consumer = Consumer::new(db.clone(), config, spec, Arc::new(Recorder));
        // The queue must be bound before the test publishes, or early events go unrouted.
        consumer.declare().await.unwrap();
        tokio::spawn(consumer.run(cancel.clone()));
        Self { db, cancel }
    }

    /// `(member_id, traceparent)` of every created event seen.
    async fn created(&self) -> Vec<(String, Option<String>)> {
        self.db
            .query_all_raw(Statement::from_string(
                DbBackend::Postgres,
                "SELECT member_id, traceparent FROM seen WHERE routing_key = 'members.member.created.v1'",
            ))
            .await
            .unwrap()
            .into_iter()
            .map(|r| (r.try_get("", "member_id").unwrap(), r.try_get("", "traceparent").unwrap()))
            .collect()
    }
}

impl Drop for TestConsumer {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

async fn new_branch(cluster: &Cluster, token: &str) -> String {
    let (_, me) = cluster.get(token, "/api/v1/me").await;
    let root = me["roles"][0]["org_id"].as_str().unwrap().to_owned();
    let (status, branch) = cluster
        .post(token, "/api/v1/orgs", serde_json::json!({"parent_id": root, "name": "事件测试支部", "kind": "branch", "unit_type": "other"}))
        .await;
    assert_eq!(status, 201, "{branch}");
    branch["id"].as_str().unwrap().to_owned()
}

fn member_body(branch: &str, i: usize) -> serde_json::Value {
    serde_json::json!({"org_id": branch, "name": format!("事件{i}"), "category": "full", "joined_on": "2012-07-01"})
}

#[tokio::test(flavor = "multi_thread")]
async fn a_member_event_reaches_a_consumer_in_the_request_trace() {
    let cluster = Cluster::start("e2etrace").await;
    let consumer = TestConsumer::start(&cluster).await;
    let admin = cluster.login("admin", ADMIN_PASSWORD).await;
    let branch = new_branch(&cluster, &admin).await;

    let trace_id = format!("{:032x}", uuid::Uuid::new_v4().as_u128());
    let res = cluster
        .http
        .post(format!("{}/api/v1/members", cluster.base))
        .bearer_auth(&admin)
        .header("traceparent", format!("00-{trace_id}-00f067aa0ba902b7-01"))
        .json(&member_body(&branch, 0))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let member: serde_json::Value = res.json().await.unwrap();
    let id = member["id"].as_str().unwrap().to_owned();

    let seen = eventually(30, "the created event", || async {
        let all = consumer.created().await;
        all.into_iter().find(|(m, _)| *m == id)
    })
    .await;
    let traceparent = seen.1.expect("the event carries a traceparent");
    assert_eq!(
        traceparent.split('-').nth(1),
        Some(trace_id.as_str()),
        "the consumer continues the caller's trace"
    );
}

/// Restarts the RabbitMQ app even when the test fails half-way.
struct StartAppOnDrop;

impl Drop for StartAppOnDrop {
    fn drop(&mut self) {
        let _ = std::process::Command::new("rabbitmqctl")
            .args(["-q", "start_app"])
            .status();
        let _ = std::process::Command::new("rabbitmqctl")
            .args(["-q", "await_startup"])
            .status();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn disruptive_rabbitmq_stopped_while_members_are_created_loses_no_event() {
    let cluster = Cluster::start("e2erabbit").await;
    let consumer = TestConsumer::start(&cluster).await;
    let admin = cluster.login("admin", ADMIN_PASSWORD).await;
    let branch = new_branch(&cluster, &admin).await;

    let guard = StartAppOnDrop;
    let stopped = std::process::Command::new("rabbitmqctl")
        .args(["-q", "stop_app"])
        .status()
        .unwrap();
    assert!(stopped.success());

    // Writes are acknowledged while the broker is down: they wait in the outbox.
    let mut ids = Vec::new();
    for i in 0..25 {
        let (status, member) = cluster
            .post(&admin, "/api/v1/members", member_body(&branch, i))
            .await;
        assert_eq!(status, 201, "{member}");
        ids.push(member["id"].as_str().unwrap().to_owned());
    }
    drop(guard); // start_app

    let seen = eventually(
        90,
        "all 25 created events after RabbitMQ came back",
        || async {
            let all = consumer.created().await;
            (ids.iter().all(|id| all.iter().any(|(m, _)| m == id))).then_some(all)
        },
    )
    .await;
    for id in &ids {
        assert_eq!(
            seen.iter().filter(|(m, _)| m == id).count(),
            1,
            "member {id} applied exactly once"
        );
    }
    assert!(seen.iter().all(|(_, tp)| tp.is_some()));
}

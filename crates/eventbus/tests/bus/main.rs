//! Integration tests of the event bus against the real local PostgreSQL and RabbitMQ.
//!
//! Each test has its own database and its own exchange/queue prefix, so tests run in parallel.
//! Tests named `disruptive_*` stop the shared RabbitMQ and must run alone (`make test` runs them
//! in a serial phase).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod helpers;

use std::time::Duration;

use helpers::{DEADLINE, Gate, RawBroker, Recorder, TestBus, event, event_properties, header_text};
use jifen_eventbus::{BusConfig, Relay, stage};
use lapin::BasicProperties;
use opentelemetry::trace::TraceContextExt as _;
use sea_orm::{ConnectionTrait as _, TransactionTrait as _};
use tracing::Instrument as _;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;
use uuid::Uuid;

const APPLIED_ROWS: &str = "SELECT count(*) FROM applied";
const APPLIED_DISTINCT: &str = "SELECT count(DISTINCT event_id) FROM applied";
const INBOX_ROWS: &str = "SELECT count(*) FROM inbox";
const UNPUBLISHED: &str = "SELECT count(*) FROM outbox WHERE published_at IS NULL";

/// Asserts that `n` events were each applied exactly once (and recorded once in the inbox).
async fn assert_applied_exactly_once(bus: &TestBus, n: i64) -> anyhow::Result<()> {
    bus.wait_for_count(APPLIED_DISTINCT, n).await?;
    // Give any stray redelivery a moment to show up as a double application.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        bus.scalar(APPLIED_DISTINCT).await?,
        n,
        "distinct events applied"
    );
    assert_eq!(
        bus.scalar(APPLIED_ROWS).await?,
        n,
        "an event was applied twice"
    );
    assert_eq!(bus.scalar(INBOX_ROWS).await?, n, "inbox rows");
    assert_eq!(
        bus.scalar("SELECT coalesce(max(value), 0)::bigint FROM counters")
            .await?,
        1.min(n)
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn staged_event_reaches_the_consumer_once_with_its_trace() -> anyhow::Result<()> {
    let bus = TestBus::new("trace").await?;
    let recorder = Recorder::new("trace-test.replica");
    bus.spawn_consumer("trace-test.replica", &["members.#"], recorder)
        .await?;
    bus.spawn_relay();

    let request = tracing::info_span!("request");
    let expected_trace = request.context().span().span_context().trace_id();
    assert_ne!(
        expected_trace,
        opentelemetry::trace::TraceId::INVALID,
        "the test span has an OTel context"
    );
    let id = async {
        let tx = bus.db.begin().await?;
        let id = stage(
            &tx,
            "members",
            event("members.member.created.v1", "member-1"),
        )
        .await?;
        tx.commit().await?;
        anyhow::Ok(id)
    }
    .instrument(request)
    .await?;

    assert_applied_exactly_once(&bus, 1).await?;
    let row = bus
        .db
        .query_one_raw(sea_orm::Statement::from_string(
            sea_orm::DbBackend::Postgres,
            "SELECT a.event_id, a.routing_key, a.subject, a.source, a.traceparent AS seen, o.traceparent AS staged, a.payload
             FROM applied a JOIN outbox o ON o.id = a.event_id",
        ))
        .await?
        .expect("the applied event is the staged one");
    assert_eq!(row.try_get::<Uuid>("", "event_id")?, id);
    assert_eq!(
        row.try_get::<String>("", "routing_key")?,
        "members.member.created.v1"
    );
    assert_eq!(row.try_get::<String>("", "subject")?, "member-1");
    assert_eq!(row.try_get::<String>("", "source")?, "members");
    assert_eq!(row.try_get::<Vec<u8>>("", "payload")?, b"member-1");
    let seen: String = row.try_get("", "seen")?;
    assert_eq!(
        Some(seen.clone()),
        row.try_get::<Option<String>>("", "staged")?
    );
    assert_eq!(
        seen.split('-').nth(1),
        Some(expected_trace.to_string().as_str()),
        "{seen}"
    );
    assert_eq!(bus.scalar(UNPUBLISHED).await?, 0);
    bus.cleanup().await
}

#[tokio::test(flavor = "multi_thread")]
async fn event_staged_outside_any_span_gets_a_fresh_trace() -> anyhow::Result<()> {
    let bus = TestBus::new("fresh").await?;
    stage(&bus.db, "members", event("members.member.created.v1", "m")).await?;
    let traceparent: String = bus
        .db
        .query_one_raw(sea_orm::Statement::from_string(
            sea_orm::DbBackend::Postgres,
            "SELECT traceparent FROM outbox",
        ))
        .await?
        .expect("one row")
        .try_get("", "traceparent")?;
    let parts: Vec<&str> = traceparent.split('-').collect();
    assert_eq!(parts.len(), 4, "{traceparent}");
    assert_eq!(
        (parts[0], parts[1].len(), parts[2].len()),
        ("00", 32, 16),
        "{traceparent}"
    );
    assert_ne!(parts[1], "0".repeat(32));
    bus.cleanup().await
}

#[tokio::test(flavor = "multi_thread")]
async fn same_event_published_twice_is_applied_once() -> anyhow::Result<()> {
    let mut bus = TestBus::new("dup").await?;
    // One delivery at a time, so the sentinel's application proves both copies were handled.
    bus.config.prefetch = 1;
    let recorder = Recorder::new("dup-test.replica");
    bus.spawn_consumer("dup-test.replica", &["members.#"], recorder)
        .await?;
    let broker = RawBroker::with_topology(&bus.config).await?;
    let id = Uuid::now_v7().to_string();
    let props = event_properties(&id, "members.member.updated.v1", "member-2");
    broker
        .publish(
            &bus.config.exchange,
            "members.member.updated.v1",
            props.clone(),
            b"v2",
        )
        .await?;
    broker
        .publish(
            &bus.config.exchange,
            "members.member.updated.v1",
            props,
            b"v2",
        )
        .await?;
    let sentinel = Uuid::now_v7().to_string();
    broker
        .publish(
            &bus.config.exchange,
            "members.member.updated.v1",
            event_properties(&sentinel, "members.member.updated.v1", "sentinel"),
            b"s",
        )
        .await?;

    bus.wait_for_count(
        &format!("SELECT count(*) FROM applied WHERE event_id = '{sentinel}'"),
        1,
    )
    .await?;
    assert_eq!(
        bus.scalar(&format!(
            "SELECT value::bigint FROM counters WHERE name = '{id}'"
        ))
        .await?,
        1
    );
    assert_eq!(
        bus.scalar(&format!(
            "SELECT count(*) FROM inbox WHERE event_id = '{id}'"
        ))
        .await?,
        1
    );
    assert_eq!(
        bus.scalar(APPLIED_ROWS).await?,
        2,
        "the duplicate and the sentinel, once each"
    );
    bus.cleanup().await
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_messages_are_dead_lettered_and_do_not_block_the_queue() -> anyhow::Result<()> {
    let bus = TestBus::new("malformed").await?;
    let name = "malformed-test.replica";
    bus.spawn_consumer(name, &["members.#"], Recorder::new(name))
        .await?;
    let broker = RawBroker::with_topology(&bus.config).await?;

    let key = "members.member.created.v1";
    // No message_id at all, then one that is not a UUID, then one without a type.
    let no_id = BasicProperties::default().with_type(key.into());
    broker
        .publish(&bus.config.exchange, key, no_id, b"x")
        .await?;
    let bad_id = event_properties("not-a-uuid", key, "m");
    broker
        .publish(&bus.config.exchange, key, bad_id, b"y")
        .await?;
    let untyped = BasicProperties::default().with_message_id(Uuid::now_v7().to_string().into());
    broker
        .publish(&bus.config.exchange, key, untyped, b"z")
        .await?;
    // A valid event after them is still applied.
    let good = Uuid::now_v7().to_string();
    broker
        .publish(
            &bus.config.exchange,
            key,
            event_properties(&good, key, "m"),
            b"ok",
        )
        .await?;

    bus.wait_for_count(
        &format!("SELECT count(*) FROM applied WHERE event_id = '{good}'"),
        1,
    )
    .await?;
    let dead = broker
        .take(&bus.config.dead_letter_queue_name(name), 3)
        .await?;
    let mut reasons: Vec<String> = dead
        .iter()
        .map(|d| header_text(d, "x-jifen-reason").unwrap_or_default())
        .collect();
    reasons.sort();
    assert!(
        reasons.iter().any(|r| r.contains("missing message_id")),
        "{reasons:?}"
    );
    assert!(
        reasons.iter().any(|r| r.contains("not a UUID")),
        "{reasons:?}"
    );
    assert!(
        reasons.iter().any(|r| r.contains("missing type")),
        "{reasons:?}"
    );
    let mut bodies: Vec<&[u8]> = dead.iter().map(|d| d.data.as_slice()).collect();
    bodies.sort();
    assert_eq!(
        bodies,
        vec![b"x".as_slice(), b"y", b"z"],
        "the original bodies are kept"
    );
    assert_eq!(bus.scalar(INBOX_ROWS).await?, 1);
    bus.cleanup().await
}

#[tokio::test(flavor = "multi_thread")]
async fn permanent_handler_failure_is_dead_lettered_with_its_reason() -> anyhow::Result<()> {
    let bus = TestBus::new("permanent").await?;
    let name = "permanent-test.replica";
    let recorder = Recorder::new(name);
    bus.spawn_consumer(name, &["members.#"], recorder.clone())
        .await?;
    bus.spawn_relay();

    let poison = stage(
        &bus.db,
        "members",
        event("members.member.created.v1", "poison-7"),
    )
    .await?;
    let good = stage(
        &bus.db,
        "members",
        event("members.member.created.v1", "fine-1"),
    )
    .await?;

    let broker = RawBroker::connect(&bus.config.amqp_url).await?;
    let dead = broker
        .take(&bus.config.dead_letter_queue_name(name), 1)
        .await?;
    assert_eq!(
        dead[0]
            .properties
            .message_id()
            .as_ref()
            .map(|s| s.as_str().to_owned()),
        Some(poison.to_string())
    );
    assert_eq!(
        header_text(&dead[0], "x-jifen-reason").as_deref(),
        Some("poisoned subject poison-7")
    );
    assert_eq!(
        header_text(&dead[0], "ce-subject").as_deref(),
        Some("poison-7"),
        "original headers are kept"
    );
    assert!(header_text(&dead[0], "traceparent").is_some());
    assert_eq!(dead[0].data, b"poison-7");

    bus.wait_for_count(
        &format!("SELECT count(*) FROM applied WHERE event_id = '{good}'"),
        1,
    )
    .await?;
    assert_eq!(
        recorder.attempts(poison),
        1,
        "a permanent failure is not retried"
    );
    assert_eq!(
        bus.scalar(&format!(
            "SELECT count(*) FROM inbox WHERE event_id = '{poison}'"
        ))
        .await?,
        0
    );
    bus.cleanup().await
}

#[tokio::test(flavor = "multi_thread")]
async fn transient_failure_is_requeued_until_it_succeeds() -> anyhow::Result<()> {
    let bus = TestBus::new("transient").await?;
    let name = "transient-test.replica";
    let recorder = Recorder::new(name);
    bus.spawn_consumer(name, &["members.#"], recorder.clone())
        .await?;
    bus.spawn_relay();
    let id = stage(
        &bus.db,
        "members",
        event("members.member.created.v1", "flaky-1"),
    )
    .await?;
    assert_applied_exactly_once(&bus, 1).await?;
    assert_eq!(
        recorder.attempts(id),
        3,
        "two transient failures, then success"
    );
    bus.cleanup().await
}

#[tokio::test(flavor = "multi_thread")]
async fn event_failing_transiently_forever_is_dead_lettered_at_the_delivery_limit()
-> anyhow::Result<()> {
    let mut bus = TestBus::new("limit").await?;
    bus.config.delivery_limit = 2;
    let name = "limit-test.replica";
    let recorder = Recorder::new(name);
    bus.spawn_consumer(name, &["members.#"], recorder.clone())
        .await?;
    bus.spawn_relay();
    let id = stage(
        &bus.db,
        "members",
        event("members.member.created.v1", "always-flaky"),
    )
    .await?;
    let after = stage(
        &bus.db,
        "members",
        event("members.member.created.v1", "fine"),
    )
    .await?;

    let broker = RawBroker::connect(&bus.config.amqp_url).await?;
    let dead = broker
        .take(&bus.config.dead_letter_queue_name(name), 1)
        .await?;
    assert_eq!(
        dead[0]
            .properties
            .message_id()
            .as_ref()
            .map(|s| s.as_str().to_owned()),
        Some(id.to_string())
    );
    assert!(
        recorder.attempts(id) >= 2,
        "retried before giving up: {}",
        recorder.attempts(id)
    );
    bus.wait_for_count(
        &format!("SELECT count(*) FROM applied WHERE event_id = '{after}'"),
        1,
    )
    .await?;
    assert_eq!(bus.scalar(INBOX_ROWS).await?, 1);
    bus.cleanup().await
}

#[tokio::test(flavor = "multi_thread")]
async fn panicking_handler_does_not_stop_the_consumer() -> anyhow::Result<()> {
    let mut bus = TestBus::new("panic").await?;
    bus.config.delivery_limit = 1;
    let name = "panic-test.replica";
    let recorder = Recorder::new(name);
    bus.spawn_consumer(name, &["members.#"], recorder.clone())
        .await?;
    bus.spawn_relay();
    let id = stage(
        &bus.db,
        "members",
        event("members.member.created.v1", "panic-1"),
    )
    .await?;
    let broker = RawBroker::connect(&bus.config.amqp_url).await?;
    let dead = broker
        .take(&bus.config.dead_letter_queue_name(name), 1)
        .await?;
    assert_eq!(
        dead[0]
            .properties
            .message_id()
            .as_ref()
            .map(|s| s.as_str().to_owned()),
        Some(id.to_string())
    );
    // The same consumer still applies what comes next.
    stage(
        &bus.db,
        "members",
        event("members.member.created.v1", "fine"),
    )
    .await?;
    assert_applied_exactly_once(&bus, 1).await?;
    assert!(
        recorder.attempts(id) >= 2,
        "retried: {}",
        recorder.attempts(id)
    );
    bus.cleanup().await
}

/// Publishes one event per subject (`None`: a second copy of the previous event) with raw AMQP and
/// returns the ids, in order.
async fn publish_events(bus: &TestBus, subjects: &[Option<&str>]) -> anyhow::Result<Vec<Uuid>> {
    let broker = RawBroker::with_topology(&bus.config).await?;
    let key = "members.member.updated.v1";
    let mut published: Vec<(Uuid, &str)> = Vec::new();
    for subject in subjects {
        let (id, subject) = match (subject, published.last()) {
            (Some(subject), _) => (Uuid::now_v7(), *subject),
            (None, Some(previous)) => *previous,
            (None, None) => anyhow::bail!("a copy needs an event before it"),
        };
        let props = event_properties(&id.to_string(), key, subject);
        broker
            .publish(&bus.config.exchange, key, props, subject.as_bytes())
            .await?;
        published.push((id, subject));
    }
    let _ = broker.connection.close(200, "published".into()).await;
    Ok(published.into_iter().map(|(id, _)| id).collect())
}

/// A test bus whose consumers apply batches of exactly `size` deliveries: the events are queued
/// before the consumer starts, and it waits (far longer than delivering them takes) for the batch
/// to fill.
async fn batching_bus(label: &str, size: u16) -> anyhow::Result<TestBus> {
    let mut bus = TestBus::new(label).await?;
    bus.config.batch_size = size;
    bus.config.batch_linger = Duration::from_secs(2);
    Ok(bus)
}

/// How many transactions committed the applied rows (`now()` is the transaction's start).
const APPLYING_TRANSACTIONS: &str = "SELECT count(DISTINCT applied_at) FROM applied";

#[tokio::test(flavor = "multi_thread")]
async fn batch_with_a_duplicate_inside_applies_it_once_in_one_transaction() -> anyhow::Result<()> {
    let bus = batching_bus("batchdup", 6).await?;
    let name = "batchdup-test.replica";
    bus.declare_consumer(name, &["members.#"]).await?;
    let ids = publish_events(
        &bus,
        &[
            Some("m-1"),
            Some("m-2"),
            None,
            Some("m-3"),
            Some("m-4"),
            Some("m-5"),
        ],
    )
    .await?;
    assert_eq!(ids[1], ids[2], "the third message is a copy of the second");
    let recorder = Recorder::new(name);
    bus.spawn_consumer(name, &["members.#"], recorder.clone())
        .await?;

    assert_applied_exactly_once(&bus, 5).await?;
    assert_eq!(recorder.attempts(ids[1]), 1, "the copy is not handled");
    assert_eq!(
        bus.scalar(APPLYING_TRANSACTIONS).await?,
        1,
        "the six deliveries are applied in one transaction"
    );
    bus.cleanup().await
}

#[tokio::test(flavor = "multi_thread")]
async fn batch_with_a_permanently_failing_event_dead_letters_only_that_event() -> anyhow::Result<()>
{
    let bus = batching_bus("batchpoison", 5).await?;
    let name = "batchpoison-test.replica";
    bus.declare_consumer(name, &["members.#"]).await?;
    let ids = publish_events(
        &bus,
        &[
            Some("m-1"),
            Some("m-2"),
            Some("poison-3"),
            Some("m-4"),
            Some("m-5"),
        ],
    )
    .await?;
    let recorder = Recorder::new(name);
    bus.spawn_consumer(name, &["members.#"], recorder.clone())
        .await?;

    let broker = RawBroker::connect(&bus.config.amqp_url).await?;
    let dead = broker
        .take(&bus.config.dead_letter_queue_name(name), 1)
        .await?;
    assert_eq!(
        dead[0]
            .properties
            .message_id()
            .as_ref()
            .map(|s| s.as_str().to_owned()),
        Some(ids[2].to_string())
    );
    assert_eq!(
        header_text(&dead[0], "x-jifen-reason").as_deref(),
        Some("poisoned subject poison-3")
    );
    bus.wait_for_count(APPLIED_DISTINCT, 4).await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(bus.scalar(APPLIED_ROWS).await?, 4, "the others, once each");
    assert_eq!(
        bus.scalar("SELECT count(*) FROM applied WHERE subject LIKE 'poison%'")
            .await?,
        0
    );
    assert_eq!(
        bus.scalar(INBOX_ROWS).await?,
        4,
        "no inbox row for the poison"
    );
    assert_eq!(
        bus.scalar("SELECT coalesce(max(value), 0)::bigint FROM counters")
            .await?,
        1
    );
    assert_eq!(
        recorder.attempts(ids[2]),
        1,
        "a permanent failure is not retried"
    );
    assert_eq!(
        bus.scalar(APPLYING_TRANSACTIONS).await?,
        1,
        "the four others still commit together"
    );
    let more = broker
        .channel
        .basic_get(
            bus.config.dead_letter_queue_name(name).as_str().into(),
            lapin::options::BasicGetOptions::default(),
        )
        .await?;
    assert!(more.is_none(), "only the poison is dead-lettered");
    bus.cleanup().await
}

#[tokio::test(flavor = "multi_thread")]
async fn transient_failure_mid_batch_doubles_nothing_and_everything_is_applied()
-> anyhow::Result<()> {
    let bus = batching_bus("batchflaky", 5).await?;
    let name = "batchflaky-test.replica";
    bus.declare_consumer(name, &["members.#"]).await?;
    let ids = publish_events(
        &bus,
        &[
            Some("m-1"),
            Some("m-2"),
            Some("flaky-3"),
            Some("m-4"),
            Some("m-5"),
        ],
    )
    .await?;
    let recorder = Recorder::new(name);
    bus.spawn_consumer(name, &["members.#"], recorder.clone())
        .await?;

    assert_applied_exactly_once(&bus, 5).await?;
    assert_eq!(
        recorder.attempts(ids[2]),
        3,
        "two transient failures, then success"
    );
    assert_eq!(
        bus.scalar(&format!(
            "SELECT count(*) FROM applied WHERE event_id = '{}'",
            ids[2]
        ))
        .await?,
        1
    );
    bus.cleanup().await
}

#[tokio::test(flavor = "multi_thread")]
async fn consumer_killed_mid_batch_and_restarted_applies_every_event_once() -> anyhow::Result<()> {
    let bus = TestBus::new("killbatch").await?;
    let name = "killbatch-test.replica";
    bus.declare_consumer(name, &["members.#"]).await?;
    let ids = bus
        .stage_many(600, "members.member.created.v1", "m")
        .await?;
    let relay = Relay::new(bus.db.clone(), bus.config.clone(), "members");
    let mut relayed = 0;
    while relayed < ids.len() {
        relayed += drain(&relay).await?;
    }

    // The first consumer stops for good inside the batch holding m-300, and is killed there.
    let gate = Gate::new(Recorder::new(name), "m-300");
    let first = bus.spawn_consumer_with(
        bus.config.clone(),
        name,
        &["members.#"],
        gate.clone(),
        bus.child_token(),
    );
    gate.reached().await?;
    first.abort();
    assert!(first.await.is_err_and(|e| e.is_cancelled()));
    let committed = bus.scalar(APPLIED_ROWS).await?;
    eprintln!("killed with {committed} of 600 events applied");
    assert!(committed < 600, "{committed}");
    assert_eq!(bus.scalar(INBOX_ROWS).await?, committed);
    assert_eq!(
        bus.scalar(&format!(
            "SELECT count(*) FROM inbox WHERE event_id = '{}'",
            ids[300]
        ))
        .await?,
        0,
        "the interrupted batch committed nothing"
    );

    bus.spawn_consumer(name, &["members.#"], Recorder::new(name))
        .await?;
    assert_applied_exactly_once(&bus, 600).await?;
    bus.cleanup().await
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_connections_killed_loses_nothing() -> anyhow::Result<()> {
    let bus = TestBus::new("pgkill").await?;
    let name = "pgkill-test.replica";
    bus.spawn_consumer(name, &["members.#"], Recorder::new(name))
        .await?;
    bus.spawn_relay();
    let admin = sea_orm::Database::connect(format!("{}/postgres", bus.database.server_url)).await?;
    let kill = format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{}' AND pid <> pg_backend_pid()",
        bus.database.name
    );

    let mut staged = 0;
    for i in 0..150 {
        if i % 50 == 25 {
            // Every connection of the relay (LISTEN included), the consumer and the test dies.
            admin.execute_unprepared(&kill).await?;
        }
        // Like a request handler, the test retries its own transaction when its connection died.
        for attempt in 0.. {
            let result = async {
                let tx = bus.db.begin().await?;
                stage(
                    &tx,
                    "members",
                    event("members.member.created.v1", &format!("m-{i}")),
                )
                .await?;
                tx.commit().await?;
                anyhow::Ok(())
            }
            .await;
            match result {
                Ok(()) => break,
                Err(error) if attempt < 20 => {
                    eprintln!("staging retried: {error:#}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(error) => return Err(error),
            }
        }
        staged += 1;
    }
    admin.close().await?;
    // Ground truth: what the outbox holds (a commit reported as failed may still have happened).
    let in_outbox = bus
        .wait_for_count("SELECT count(*) FROM outbox", staged)
        .await?;
    assert_applied_exactly_once(&bus, in_outbox).await?;
    assert_eq!(bus.scalar(UNPUBLISHED).await?, 0);
    bus.cleanup().await
}

#[tokio::test(flavor = "multi_thread")]
async fn event_without_a_consumer_is_kept_in_the_unrouted_queue() -> anyhow::Result<()> {
    let bus = TestBus::new("unrouted").await?;
    let id = stage(
        &bus.db,
        "grading",
        event("grading.nobody.listens.v1", "g-1"),
    )
    .await?;
    let relay = Relay::new(bus.db.clone(), bus.config.clone(), "grading");
    assert_eq!(drain(&relay).await?, 1);
    assert_eq!(bus.scalar(UNPUBLISHED).await?, 0);
    let broker = RawBroker::connect(&bus.config.amqp_url).await?;
    let kept = broker.take(&bus.config.unrouted_name(), 1).await?;
    assert_eq!(
        kept[0]
            .properties
            .message_id()
            .as_ref()
            .map(|s| s.as_str().to_owned()),
        Some(id.to_string())
    );
    assert_eq!(
        kept[0].properties.kind().as_ref().map(|s| s.as_str()),
        Some("grading.nobody.listens.v1")
    );
    assert_eq!(kept[0].properties.delivery_mode(), &Some(2));
    assert_eq!(
        kept[0]
            .properties
            .content_type()
            .as_ref()
            .map(|s| s.as_str()),
        Some("application/protobuf")
    );
    assert!(kept[0].properties.timestamp().is_some());
    assert_eq!(
        header_text(&kept[0], "ce-source").as_deref(),
        Some("grading")
    );
    assert_eq!(
        header_text(&kept[0], "ce-specversion").as_deref(),
        Some("1.0")
    );
    drop(relay);
    bus.cleanup().await
}

#[tokio::test(flavor = "multi_thread")]
async fn rolled_back_stage_publishes_nothing_and_drain_once_counts() -> anyhow::Result<()> {
    let bus = TestBus::new("drain").await?;
    let tx = bus.db.begin().await?;
    stage(&tx, "members", event("members.member.created.v1", "gone")).await?;
    tx.rollback().await?;
    let relay = Relay::new(bus.db.clone(), bus.config.clone(), "members");
    assert_eq!(drain(&relay).await?, 0);
    // More than one claim batch.
    bus.stage_many(300, "members.member.created.v1", "m")
        .await?;
    assert_eq!(drain(&relay).await?, 300);
    assert_eq!(drain(&relay).await?, 0);
    assert_eq!(bus.scalar(UNPUBLISHED).await?, 0);
    let overlong = stage(&bus.db, "members", event(&"x".repeat(300), "s")).await;
    assert!(
        matches!(overlong, Err(jifen_eventbus::BusError::Invalid(_))),
        "{overlong:?}"
    );
    bus.cleanup().await
}

#[tokio::test(flavor = "multi_thread")]
async fn relay_wakes_on_notify_without_waiting_for_the_poll() -> anyhow::Result<()> {
    let mut bus = TestBus::new("notify").await?;
    bus.config.poll_interval = Duration::from_secs(3600);
    let name = "notify-test.replica";
    bus.spawn_consumer(name, &["members.#"], Recorder::new(name))
        .await?;
    bus.spawn_relay();
    stage(
        &bus.db,
        "members",
        event("members.member.created.v1", "first"),
    )
    .await?;
    bus.wait_for_count(APPLIED_ROWS, 1).await?;
    // The relay is now idle, waiting for a notification (the poll is an hour away).
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = std::time::Instant::now();
    let tx = bus.db.begin().await?;
    stage(&tx, "members", event("members.member.created.v1", "second")).await?;
    tx.commit().await?;
    bus.wait_for_count(APPLIED_ROWS, 2).await?;
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
    bus.cleanup().await
}

#[tokio::test(flavor = "multi_thread")]
async fn relay_started_on_a_backlog_of_500_delivers_every_row() -> anyhow::Result<()> {
    let bus = TestBus::new("backlog").await?;
    bus.stage_many(500, "members.member.created.v1", "m")
        .await?;
    let name = "backlog-test.replica";
    bus.spawn_consumer(name, &["members.#"], Recorder::new(name))
        .await?;
    bus.spawn_relay();
    assert_applied_exactly_once(&bus, 500).await?;
    assert_eq!(bus.scalar(UNPUBLISHED).await?, 0);
    bus.cleanup().await
}

#[tokio::test(flavor = "multi_thread")]
async fn relay_cancelled_midway_and_restarted_loses_nothing() -> anyhow::Result<()> {
    let bus = TestBus::new("restart").await?;
    bus.stage_many(500, "members.member.created.v1", "m")
        .await?;
    let name = "restart-test.replica";
    bus.spawn_consumer(name, &["members.#"], Recorder::new(name))
        .await?;

    let first = bus.child_token();
    let handle = bus.spawn_relay_with(bus.config.clone(), first.clone());
    // Cancel as soon as the first rows are marked published: in the middle of the backlog.
    bus.wait_for_count(
        "SELECT count(*) FROM outbox WHERE published_at IS NOT NULL",
        1,
    )
    .await?;
    first.cancel();
    tokio::time::timeout(DEADLINE, handle).await??;
    let left = bus.scalar(UNPUBLISHED).await?;
    eprintln!("relay cancelled with {left} of 500 rows unpublished");

    bus.spawn_relay();
    bus.wait_for_count(APPLIED_DISTINCT, 500).await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(bus.scalar(APPLIED_DISTINCT).await?, 500);
    assert_eq!(
        bus.scalar(APPLIED_ROWS).await?,
        500,
        "inbox deduplicates any republished row"
    );
    assert_eq!(bus.scalar(INBOX_ROWS).await?, 500);
    assert_eq!(bus.scalar(UNPUBLISHED).await?, 0);
    bus.cleanup().await
}

#[tokio::test(flavor = "multi_thread")]
async fn two_relays_share_one_outbox() -> anyhow::Result<()> {
    let bus = TestBus::new("tworelays").await?;
    let name = "tworelays-test.replica";
    bus.spawn_consumer(name, &["members.#"], Recorder::new(name))
        .await?;
    bus.spawn_relay();
    bus.spawn_relay();
    bus.stage_many(400, "members.member.created.v1", "m")
        .await?;
    assert_applied_exactly_once(&bus, 400).await?;
    bus.cleanup().await
}

#[tokio::test(flavor = "multi_thread")]
async fn network_cut_to_rabbitmq_loses_nothing_and_applies_nothing_twice() -> anyhow::Result<()> {
    let bus = TestBus::new("netcut").await?;
    let proxy = jifen_testkit::proxy::TcpProxy::start("127.0.0.1:5672".parse()?).await?;
    let proxied = BusConfig {
        amqp_url: format!("amqp://guest:guest@{}/%2f", proxy.addr),
        ..bus.config.clone()
    };
    let name = "netcut-test.replica";
    let consumer = bus.spawn_consumer_with(
        proxied.clone(),
        name,
        &["members.#"],
        Recorder::new(name),
        bus.child_token(),
    );
    bus.track(consumer);
    bus.wait_for_consumer(name).await?;
    let relay = bus.spawn_relay_with(proxied, bus.child_token());
    bus.track(relay);

    // Three partitions, each while the consumer is busy with earlier events and the relay with
    // new ones; events keep being staged during each cut.
    let total = 300;
    let mut cut = false;
    for i in 0..total {
        if matches!(i, 60 | 140 | 220) {
            bus.wait_for_count(APPLIED_ROWS, i - 40).await?;
            proxy.cut();
            cut = true;
        }
        if matches!(i, 100 | 180 | 260) {
            proxy.restore();
            cut = false;
        }
        let tx = bus.db.begin().await?;
        stage(
            &tx,
            "members",
            event("members.member.created.v1", &format!("m-{i}")),
        )
        .await?;
        tx.commit().await?;
        if cut {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    assert_applied_exactly_once(&bus, total).await?;
    assert_eq!(bus.scalar(UNPUBLISHED).await?, 0);
    bus.cleanup().await
}

/// `Relay::drain_once`, retried while RabbitMQ is unreachable (a disruptive test may be running).
async fn drain(relay: &Relay) -> anyhow::Result<usize> {
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        match relay.drain_once().await {
            Ok(published) => return Ok(published),
            Err(error @ jifen_eventbus::BusError::Amqp(_))
                if std::time::Instant::now() < deadline =>
            {
                eprintln!("drain_once failed, retrying: {error}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(error) => return Err(error.into()),
        }
    }
}

/// Restarts the RabbitMQ app when dropped, even if the test panicked.
struct StartAppOnDrop;

impl Drop for StartAppOnDrop {
    fn drop(&mut self) {
        let status = std::process::Command::new("rabbitmqctl")
            .arg("start_app")
            .status();
        eprintln!("rabbitmqctl start_app: {status:?}");
    }
}

fn rabbitmqctl(arg: &str) -> anyhow::Result<()> {
    let status = std::process::Command::new("rabbitmqctl")
        .arg(arg)
        .status()?;
    anyhow::ensure!(status.success(), "rabbitmqctl {arg}: {status}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn disruptive_rabbitmq_stop_app_loses_no_event() -> anyhow::Result<()> {
    let bus = TestBus::new("stopapp").await?;
    let name = "stopapp-test.replica";
    bus.spawn_consumer(name, &["members.#"], Recorder::new(name))
        .await?;
    bus.spawn_relay();
    // Everything is connected and working before the outage.
    stage(
        &bus.db,
        "members",
        event("members.member.created.v1", "before"),
    )
    .await?;
    bus.wait_for_count(APPLIED_ROWS, 1).await?;

    let guard = StartAppOnDrop;
    tokio::task::spawn_blocking(|| rabbitmqctl("stop_app")).await??;
    bus.stage_many(200, "members.member.created.v1", "during")
        .await?;
    // The relay keeps retrying; nothing can be published while the broker is down.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(bus.scalar(UNPUBLISHED).await?, 200);
    tokio::task::spawn_blocking(move || {
        let result = rabbitmqctl("start_app");
        if result.is_ok() {
            // Started: nothing left for the guard to do.
            std::mem::forget(guard);
        }
        result
    })
    .await??;

    assert_applied_exactly_once(&bus, 201).await?;
    assert_eq!(bus.scalar(UNPUBLISHED).await?, 0);
    bus.cleanup().await
}

/// Whether `config`'s broker has a queue (`queue: true`) or an exchange named `name`; a failed
/// passive declare closes the channel, so each probe has a connection of its own.
async fn exists(config: &BusConfig, name: &str, queue: bool) -> anyhow::Result<bool> {
    let broker = RawBroker::connect(&config.amqp_url).await?;
    let found = if queue {
        broker
            .channel
            .queue_declare(
                name.into(),
                lapin::options::QueueDeclareOptions {
                    passive: true,
                    ..Default::default()
                },
                lapin::types::FieldTable::default(),
            )
            .await
            .is_ok()
    } else {
        broker
            .channel
            .exchange_declare(
                name.into(),
                lapin::ExchangeKind::Topic,
                lapin::options::ExchangeDeclareOptions {
                    passive: true,
                    ..Default::default()
                },
                lapin::types::FieldTable::default(),
            )
            .await
            .is_ok()
    };
    let _ = broker.connection.close(200, "probe".into()).await;
    Ok(found)
}

#[tokio::test(flavor = "multi_thread")]
async fn delete_topology_removes_the_prefixs_queues_and_exchanges() -> anyhow::Result<()> {
    let bus = TestBus::new("delete_topology").await?;
    let other = TestBus::new("delete_topology_other").await?;
    for b in [&bus, &other] {
        jifen_eventbus::Consumer::new(
            b.db.clone(),
            b.config.clone(),
            jifen_eventbus::ConsumerSpec {
                name: "test.doomed".into(),
                bindings: vec!["doomed.#".into()],
            },
            Recorder::new("test.doomed"),
        )
        .declare()
        .await?;
    }
    let names = |c: &BusConfig| {
        [
            (c.queue_name("test.doomed"), true),
            (c.dead_letter_queue_name("test.doomed"), true),
            (c.unrouted_name(), true),
            (c.exchange.clone(), false),
            (c.dead_letter_exchange.clone(), false),
            (c.unrouted_name(), false),
        ]
    };
    for (name, queue) in names(&bus.config) {
        assert!(exists(&bus.config, &name, queue).await?, "{name} declared");
    }

    jifen_eventbus::delete_topology(&bus.config, &["test.doomed"]).await;
    for (name, queue) in names(&bus.config) {
        assert!(!exists(&bus.config, &name, queue).await?, "{name} deleted");
    }
    // Another prefix's topology is left alone.
    for (name, queue) in names(&other.config) {
        assert!(exists(&other.config, &name, queue).await?, "{name} kept");
    }
    other.cleanup().await?;
    bus.cleanup().await
}

#[tokio::test(flavor = "multi_thread")]
async fn retention_deletes_only_old_published_and_processed_rows_while_the_bus_runs()
-> anyhow::Result<()> {
    let mut bus = TestBus::new("retention").await?;
    bus.config.retention_interval = Duration::from_millis(200);
    let uuids = |ids: &[Uuid]| {
        format!(
            "'{{{}}}'::uuid[]",
            ids.iter()
                .map(Uuid::to_string)
                .collect::<Vec<_>>()
                .join(",")
        )
    };

    // An old row the relay has not published yet survives a sweep: the broker is still owed it.
    let late = stage(&bus.db, "tests", event("members.member.created.v1", "late")).await?;
    bus.db
        .execute_unprepared("UPDATE outbox SET created_at = now() - interval '30 days'")
        .await?;
    let idle = Relay::new(bus.db.clone(), bus.config.clone(), "tests");
    assert_eq!(idle.prune_once().await?, (0, 0));
    assert_eq!(bus.scalar(UNPUBLISHED).await?, 1);

    // With a consumer and the relay (sweeping every 200 ms) running: 21 events published and
    // applied; then 11 of them are made older than the window (7 days by default).
    let name = "retention-test.replica";
    bus.spawn_consumer(name, &["members.#"], Recorder::new(name))
        .await?;
    bus.spawn_relay();
    let mut ids = bus.stage_many(20, "members.member.created.v1", "r").await?;
    bus.wait_for_count(APPLIED_ROWS, 21).await?;
    bus.wait_for_count(INBOX_ROWS, 21).await?;
    assert_eq!(bus.scalar(UNPUBLISHED).await?, 0);
    let recent = ids.split_off(10);
    let old: Vec<Uuid> = ids.into_iter().chain([late]).collect();
    bus.db
        .execute_unprepared(&format!(
            "UPDATE outbox SET published_at = now() - interval '8 days' WHERE id = ANY({0});
             UPDATE inbox SET processed_at = now() - interval '8 days' WHERE event_id = ANY({0})",
            uuids(&old)
        ))
        .await?;

    // The running relay's sweep deletes exactly those, in both tables; the recent ones stay.
    let deadline = std::time::Instant::now() + DEADLINE;
    while bus.scalar("SELECT count(*) FROM outbox").await? > 10
        || bus.scalar(INBOX_ROWS).await? > 10
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the sweep did not run"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let kept = uuids(&recent);
    assert_eq!(
        bus.scalar(&format!(
            "SELECT count(*) FROM outbox WHERE id = ANY({kept})"
        ))
        .await?,
        10
    );
    assert_eq!(
        bus.scalar(&format!(
            "SELECT count(*) FROM inbox WHERE event_id = ANY({kept})"
        ))
        .await?,
        10
    );
    // Nothing was applied again, and new events still flow.
    bus.stage_many(3, "members.member.created.v1", "after")
        .await?;
    bus.wait_for_count(APPLIED_ROWS, 24).await?;
    assert_eq!(bus.scalar(APPLIED_DISTINCT).await?, 24);
    bus.cleanup().await
}

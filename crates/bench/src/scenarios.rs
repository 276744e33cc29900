//! The measured scenarios.

use crate::cluster::Cluster;
use crate::report::{CpuTimes, Report};
use anyhow::Context as _;
use hdrhistogram::Histogram;
use sea_orm_migration::MigratorTrait as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// `POST /api/v1/members` through the gateway at `clients` concurrent clients.
pub async fn members_through_gateway(clients: usize, requests: usize) -> anyhow::Result<Report> {
    let cluster = Arc::new(Cluster::start().await?);
    let committee = cluster
        .post(
            "/api/v1/orgs",
            serde_json::json!({"parent_id": cluster.root_id, "name": "基准党委", "kind": "committee", "unit_type": "government_organ"}),
        )
        .await?;
    let branch = cluster
        .post(
            "/api/v1/orgs",
            serde_json::json!({"parent_id": committee["id"], "name": "基准党支部", "kind": "branch", "unit_type": "government_organ"}),
        )
        .await?;
    let branch_id = branch["id"].as_str().context("branch id")?.to_owned();

    // Warm-up: connections, prepared statements, JIT-free but cache-warm paths.
    for i in 0..64 {
        create_member(&cluster, &branch_id, i).await?;
    }

    let next = Arc::new(AtomicUsize::new(64));
    let errors = Arc::new(AtomicU64::new(0));
    let end = 64 + requests;
    let cpu_before = CpuTimes::now();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (cluster, branch_id, next, errors) = (
            cluster.clone(),
            branch_id.clone(),
            next.clone(),
            errors.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= end {
                    break;
                }
                let t = Instant::now();
                if create_member(&cluster, &branch_id, i).await.is_err() {
                    errors.fetch_add(1, Ordering::Relaxed);
                }
                h.record(t.elapsed().as_micros() as u64)?;
            }
            anyhow::Ok(h)
        }));
    }
    let mut latency = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    for t in tasks {
        latency.add(t.await??)?;
    }
    let elapsed = started.elapsed();
    let cpu = CpuTimes::now().since(cpu_before);
    cleanup_bus(&cluster.bus).await;
    Ok(Report {
        name: format!("members created via gateway (c={clients})"),
        operations: requests as u64,
        elapsed,
        unit: "members",
        latency: Some(latency),
        errors: errors.load(Ordering::Relaxed),
        cpu: Some(cpu),
    })
}

async fn create_member(cluster: &Cluster, branch_id: &str, i: usize) -> anyhow::Result<()> {
    cluster
        .post(
            "/api/v1/members",
            serde_json::json!({
                "org_id": branch_id,
                "name": format!("成员{i:06}"),
                "gender": if i.is_multiple_of(2) { "male" } else { "female" },
                "category": "full",
                "joined_on": "2015-07-01",
                "phone": format!("139{:08}", i),
            }),
        )
        .await
        .map(|_| ())
}

/// Events staged in the outbox, then published by one relay with publisher confirms.
pub async fn outbox_relay(events: usize) -> anyhow::Result<Report> {
    let db = jifen_testkit::fresh_database("benchrelay").await?;
    let conn = jifen_platform::db::connect(&db.url, 8).await?;
    jifen_migrations::members::MembersMigrator::up(&conn, None).await?;
    let prefix = jifen_testkit::unique_prefix("benchrelay");
    let config = jifen_eventbus::BusConfig::new(jifen_testkit::amqp_url()).with_prefix(&prefix);
    let payload = vec![7u8; 256];
    for chunk in (0..events).collect::<Vec<_>>().chunks(1000) {
        let tx = sea_orm::TransactionTrait::begin(&conn).await?;
        for i in chunk {
            jifen_eventbus::stage(
                &tx,
                "bench",
                jifen_eventbus::OutgoingEvent {
                    routing_key: "bench.thing.happened.v1".into(),
                    subject: format!("thing-{i}"),
                    payload: payload.clone(),
                },
            )
            .await?;
        }
        tx.commit().await?;
    }
    let relay = jifen_eventbus::Relay::new(conn.clone(), config.clone(), "bench");
    let cpu_before = CpuTimes::now();
    let started = Instant::now();
    let mut published = 0;
    while published < events {
        let n = relay.drain_once().await?;
        if n == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        published += n;
    }
    let elapsed = started.elapsed();
    let cpu = CpuTimes::now().since(cpu_before);
    cleanup_bus(&config).await;
    Ok(Report {
        name: "events published by the outbox relay".into(),
        operations: published as u64,
        elapsed,
        unit: "events",
        latency: None,
        errors: 0,
        cpu: Some(cpu),
    })
}

/// The consumer of the `consume` scenario: one version-guarded upsert per event, like a
/// service's replica (`bench_things` keeps the newest version of each subject).
struct Upsert;

#[async_trait::async_trait]
impl jifen_eventbus::EventHandler for Upsert {
    async fn handle(
        &self,
        tx: &sea_orm::DatabaseTransaction,
        event: &jifen_eventbus::IncomingEvent,
    ) -> Result<(), jifen_eventbus::HandleError> {
        use sea_orm::ConnectionTrait as _;
        let version = event
            .payload
            .get(..8)
            .and_then(|b| <[u8; 8]>::try_from(b).ok())
            .map(i64::from_be_bytes)
            .ok_or_else(|| {
                jifen_eventbus::HandleError::Permanent("payload: 8-byte version expected".into())
            })?;
        tx.execute_raw(sea_orm::Statement::from_sql_and_values(
            sea_orm::DbBackend::Postgres,
            "INSERT INTO bench_things (subject, version) VALUES ($1, $2) \
             ON CONFLICT (subject) DO UPDATE SET version = EXCLUDED.version \
             WHERE bench_things.version < EXCLUDED.version",
            [event.subject.clone().into(), version.into()],
        ))
        .await?;
        Ok(())
    }
}

/// `events` events (ten versions of each of `events / 10` subjects) relayed into one consumer's
/// queue before it starts, then applied by that one consumer with [`Upsert`]: events applied per
/// second, from the consumer's start to the last inbox row.
pub async fn consumer_drain(events: usize) -> anyhow::Result<Report> {
    use sea_orm::ConnectionTrait as _;
    const NAME: &str = "bench.consume";
    let events = (events / 10).max(1) * 10;
    let db = jifen_testkit::fresh_database("benchconsume").await?;
    let conn = jifen_platform::db::connect(&db.url, 8).await?;
    jifen_migrations::members::MembersMigrator::up(&conn, None).await?;
    conn.execute_unprepared(
        "CREATE TABLE bench_things (subject text PRIMARY KEY, version bigint NOT NULL)",
    )
    .await?;
    let prefix = jifen_testkit::unique_prefix("benchconsume");
    let config = jifen_eventbus::BusConfig::new(jifen_testkit::amqp_url()).with_prefix(&prefix);
    let consumer = || {
        jifen_eventbus::Consumer::new(
            conn.clone(),
            config.clone(),
            jifen_eventbus::ConsumerSpec {
                name: NAME.into(),
                bindings: vec!["bench.#".into()],
            },
            Arc::new(Upsert),
        )
    };
    consumer().declare().await?;
    let subjects = (events / 10).max(1);
    for chunk in (0..events).collect::<Vec<_>>().chunks(1000) {
        let tx = sea_orm::TransactionTrait::begin(&conn).await?;
        for i in chunk {
            jifen_eventbus::stage(
                &tx,
                "bench",
                jifen_eventbus::OutgoingEvent {
                    routing_key: "bench.thing.changed.v1".into(),
                    subject: format!("thing-{}", i % subjects),
                    payload: ((i / subjects) as i64 + 1).to_be_bytes().to_vec(),
                },
            )
            .await?;
        }
        tx.commit().await?;
    }
    let relay = jifen_eventbus::Relay::new(conn.clone(), config.clone(), "bench");
    let mut published = 0;
    while published < events {
        let n = relay.drain_once().await?;
        if n == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        published += n;
    }
    let applied = || async {
        let row = conn
            .query_one_raw(sea_orm::Statement::from_string(
                sea_orm::DbBackend::Postgres,
                "SELECT count(*) FROM inbox",
            ))
            .await?
            .context("count(*) returns a row")?;
        anyhow::Ok(row.try_get_by_index::<i64>(0)? as usize)
    };

    let cancel = tokio_util::sync::CancellationToken::new();
    let cpu_before = CpuTimes::now();
    let started = Instant::now();
    let running = tokio::spawn(consumer().run(cancel.clone()));
    let deadline = started + Duration::from_secs(600);
    while applied().await? < events {
        anyhow::ensure!(
            Instant::now() < deadline,
            "the consumer did not apply {events} events in 10 minutes"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let elapsed = started.elapsed();
    let cpu = CpuTimes::now().since(cpu_before);
    cancel.cancel();
    running.await??;
    // Every subject ends at its newest version, whatever the order of application.
    let newest = conn
        .query_one_raw(sea_orm::Statement::from_string(
            sea_orm::DbBackend::Postgres,
            "SELECT count(*) FILTER (WHERE version = 10) FROM bench_things",
        ))
        .await?
        .context("count(*) returns a row")?
        .try_get_by_index::<i64>(0)?;
    jifen_eventbus::delete_topology(&config, &[NAME]).await;
    Ok(Report {
        name: "events applied by one consumer".into(),
        operations: events as u64,
        elapsed,
        unit: "events",
        latency: None,
        errors: (subjects as u64).saturating_sub(newest as u64),
        cpu: Some(cpu),
    })
}

/// `POST /api/v1/evaluation-rounds/{id}/ballots` through the gateway at `clients` concurrent
/// clients: each ballot with its own code (redeemed beforehand, not measured) rating five members
/// of a 20-member branch.
pub async fn ballots_through_gateway(clients: usize, requests: usize) -> anyhow::Result<Report> {
    let cluster = Arc::new(Cluster::start().await?);
    let committee = cluster
        .post(
            "/api/v1/orgs",
            serde_json::json!({"parent_id": cluster.root_id, "name": "评议基准党委", "kind": "committee", "unit_type": "government_organ"}),
        )
        .await?;
    let branch = cluster
        .post(
            "/api/v1/orgs",
            serde_json::json!({"parent_id": committee["id"], "name": "评议基准党支部", "kind": "branch", "unit_type": "government_organ"}),
        )
        .await?;
    let branch_id = branch["id"].as_str().context("branch id")?.to_owned();
    let mut members = Vec::new();
    for i in 0..20 {
        create_member(&cluster, &branch_id, i).await?;
        members.push(i);
    }
    // The round's roster comes from the evaluations service's replica, fed by events.
    let branch_uuid: uuid::Uuid = branch_id.parse()?;
    let deadline = Instant::now() + Duration::from_secs(60);
    let member_ids: Vec<String> = loop {
        use sea_orm::ConnectionTrait as _;
        let rows = cluster
            .evaluations_db
            .query_all_raw(sea_orm::Statement::from_sql_and_values(
                sea_orm::DbBackend::Postgres,
                "SELECT id::text FROM replica_members WHERE org_id = $1 AND status = 'active'",
                [branch_uuid.into()],
            ))
            .await?;
        if rows.len() == members.len() {
            break rows
                .iter()
                .map(|r| r.try_get_by_index::<String>(0))
                .collect::<Result<_, _>>()?;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the evaluations replica did not catch up"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let round = cluster
        .post(
            &format!("/api/v1/orgs/{branch_id}/evaluation-rounds"),
            serde_json::json!({"quarter": "2026-Q1"}),
        )
        .await?;
    let round_id = round["id"].as_str().context("round id")?.to_owned();

    // Codes in batches of 1000, then one evaluator token per code (not measured).
    let warmup = 64;
    let total = warmup + requests;
    let mut codes = Vec::with_capacity(total);
    while codes.len() < total {
        let n = (total - codes.len()).min(1000);
        let issued = cluster
            .post(
                &format!("/api/v1/evaluation-rounds/{round_id}/invitations"),
                serde_json::json!({"count": n, "evaluator_kind": "masses"}),
            )
            .await?;
        for c in issued["codes"].as_array().context("codes")? {
            codes.push(c.as_str().context("code")?.to_owned());
        }
    }
    let codes = Arc::new(codes);
    let next = Arc::new(AtomicUsize::new(0));
    let mut redeemers = Vec::new();
    for _ in 0..clients {
        let (cluster, codes, next) = (cluster.clone(), codes.clone(), next.clone());
        redeemers.push(tokio::spawn(async move {
            let mut tokens = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= codes.len() {
                    break;
                }
                let login = cluster
                    .post_as(
                        "/api/v1/auth/evaluator",
                        None,
                        &serde_json::json!({"code": codes[i]}),
                    )
                    .await?;
                tokens.push(login["access_token"].as_str().context("token")?.to_owned());
            }
            anyhow::Ok(tokens)
        }));
    }
    let mut tokens = Vec::with_capacity(total);
    for r in redeemers {
        tokens.extend(r.await??);
    }
    let ballot = |i: usize| {
        let ratings: Vec<serde_json::Value> = (0..5)
            .map(|k| {
                let m = &member_ids[(i + k * 3) % member_ids.len()];
                let rating = ["excellent", "good", "fair", "poor"][(i + k) % 4];
                serde_json::json!({"member_id": m, "rating": rating})
            })
            .collect();
        serde_json::json!({"ratings": ratings})
    };
    let path = format!("/api/v1/evaluation-rounds/{round_id}/ballots");
    for (i, token) in tokens.iter().enumerate().take(warmup) {
        cluster.post_as(&path, Some(token), &ballot(i)).await?;
    }
    let bodies: Vec<serde_json::Value> = (0..total).map(ballot).collect();
    let (tokens, bodies, path) = (Arc::new(tokens), Arc::new(bodies), Arc::new(path));
    let next = Arc::new(AtomicUsize::new(warmup));
    let errors = Arc::new(AtomicU64::new(0));
    let cpu_before = CpuTimes::now();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (cluster, tokens, bodies, path, next, errors) = (
            cluster.clone(),
            tokens.clone(),
            bodies.clone(),
            path.clone(),
            next.clone(),
            errors.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= tokens.len() {
                    break;
                }
                let t = Instant::now();
                if cluster
                    .post_as(&path, Some(&tokens[i]), &bodies[i])
                    .await
                    .is_err()
                {
                    errors.fetch_add(1, Ordering::Relaxed);
                }
                h.record(t.elapsed().as_micros() as u64)?;
            }
            anyhow::Ok(h)
        }));
    }
    let mut latency = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    for t in tasks {
        latency.add(t.await??)?;
    }
    let elapsed = started.elapsed();
    let cpu = CpuTimes::now().since(cpu_before);
    // Every ballot counted once: the round says so after closing.
    let closed = cluster
        .post(
            &format!("/api/v1/evaluation-rounds/{round_id}:close"),
            serde_json::json!({}),
        )
        .await?;
    let counted = closed["ballots"].as_u64().unwrap_or_default();
    let errors = errors.load(Ordering::Relaxed);
    anyhow::ensure!(
        counted == total as u64 - errors,
        "{counted} ballots counted, {} sent without error",
        total as u64 - errors
    );
    cleanup_bus(&cluster.bus).await;
    Ok(Report {
        name: format!("ballots cast via gateway (c={clients})"),
        operations: requests as u64,
        elapsed,
        unit: "ballots",
        latency: Some(latency),
        errors,
        cpu: Some(cpu),
    })
}

/// The consumers an in-process [`Cluster`] declares.
const CLUSTER_CONSUMERS: [&str; 5] = [
    jifen_evaluations::events::MEMBERS_REPLICA,
    jifen_evaluations::events::STANDARDS,
    jifen_evaluations::events::FINAL_GRADES,
    jifen_declarations::events::MEMBERS_REPLICA,
    jifen_declarations::events::FINAL_GRADES,
];

/// Deletes the run's exchanges and queues so benchmarks leave nothing behind on the broker.
pub async fn cleanup_bus(config: &jifen_eventbus::BusConfig) {
    jifen_eventbus::delete_topology(config, &CLUSTER_CONSUMERS).await;
}

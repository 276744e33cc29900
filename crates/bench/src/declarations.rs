//! The declaration hot path: `PUT` a member's monthly declaration and `POST …:submit` it, through
//! the gateway (HTTP → JWT → gRPC → PostgreSQL with versions, transitions and the outbox), side by
//! side with the ceiling of this machine: a bare axum handler doing one single-row INSERT into
//! PostgreSQL per request, at the same concurrency.

use crate::cluster::Cluster;
use crate::report::{CpuTimes, Report};
use anyhow::Context as _;
use chrono::Datelike as _;
use hdrhistogram::Histogram;
use jifen_platform::auth::{Principal, RoleClaim, RoleName};
use reqwest::Method;
use sea_orm::{ConnectionTrait as _, DatabaseConnection, DbBackend, Statement};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;
use uuid::Uuid;

/// Runs `op(i)` for i in `0..requests` from `clients` concurrent tasks (after `warmup` untimed
/// operations numbered `requests..requests + warmup`); the latency of each op.
async fn drive<F, Fut>(
    name: String,
    unit: &'static str,
    clients: usize,
    requests: usize,
    warmup: usize,
    op: F,
) -> anyhow::Result<Report>
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = anyhow::Result<()>> + Send,
{
    let op = Arc::new(op);
    for i in requests..requests + warmup {
        op(i).await?;
    }
    let next = Arc::new(AtomicUsize::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let cpu_before = CpuTimes::now();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (op, next, errors) = (op.clone(), next.clone(), errors.clone());
        tasks.push(tokio::spawn(async move {
            let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= requests {
                    break;
                }
                let t = Instant::now();
                if let Err(e) = op(i).await
                    && errors.fetch_add(1, Ordering::Relaxed) == 0
                {
                    eprintln!("first error: {e:#}");
                }
                h.record(u64::try_from(t.elapsed().as_micros()).unwrap_or(u64::MAX))?;
            }
            anyhow::Ok(h)
        }));
    }
    let mut latency = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    for t in tasks {
        latency.add(t.await??)?;
    }
    let elapsed = started.elapsed();
    Ok(Report {
        name,
        operations: requests as u64,
        elapsed,
        cpu: Some(CpuTimes::now().since(cpu_before)),
        unit,
        latency: Some(latency),
        errors: errors.load(Ordering::Relaxed),
    })
}

/// The ceiling: `POST /ceiling` inserting one row, bare axum + a sea-orm pool of the same size
/// as the declarations service's.
pub async fn ceiling(clients: usize, requests: usize) -> anyhow::Result<Report> {
    let tdb = jifen_testkit::fresh_database("bench_ceiling").await?;
    let db = jifen_platform::db::connect(&tdb.url, 16).await?;
    db.execute_unprepared(
        "CREATE TABLE ceiling (id uuid PRIMARY KEY, member_id text NOT NULL, month text NOT NULL, lines jsonb NOT NULL)",
    )
    .await?;
    async fn insert(
        axum::extract::State(db): axum::extract::State<DatabaseConnection>,
        axum::Json(body): axum::Json<serde_json::Value>,
    ) -> Result<(axum::http::StatusCode, axum::Json<serde_json::Value>), axum::http::StatusCode>
    {
        let id = Uuid::now_v7();
        db.execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "INSERT INTO ceiling (id, member_id, month, lines) VALUES ($1, $2, $3, $4)",
            [
                id.into(),
                body["member_id"].as_str().unwrap_or_default().into(),
                body["month"].as_str().unwrap_or_default().into(),
                body["lines"].clone().into(),
            ],
        ))
        .await
        .map_err(|_| axum::http::StatusCode::INTERNAL_SERVER_ERROR)?;
        Ok((
            axum::http::StatusCode::CREATED,
            axum::Json(serde_json::json!({ "id": id })),
        ))
    }
    let app = axum::Router::new()
        .route("/ceiling", axum::routing::post(insert))
        .with_state(db);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/ceiling", listener.local_addr()?);
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()?;
    let report = drive(
        format!("ceiling: axum+PG insert (c={clients})"),
        "requests",
        clients,
        requests,
        64,
        move |i| {
            let (http, url) = (http.clone(), url.clone());
            async move {
                http.post(&url)
                    .json(&serde_json::json!({"member_id": i.to_string(), "month": "2026-11", "lines": [{"item_code": "F01", "quantity": 1}]}))
                    .send()
                    .await?
                    .error_for_status()?;
                Ok(())
            }
        },
    )
    .await;
    server.abort();
    report
}

/// One member's token and the months they can still declare.
struct Declarant {
    id: String,
    token: String,
}

/// The two reports of the declaration scenario.
pub struct DeclarationRuns {
    /// The same two requests answered by a one-statement service behind the gateway
    /// ([`crate::floor`]).
    pub floor: Report,
    /// The real path.
    pub ours: Report,
}

/// One operation: `who` saves a declaration of `month` and submits it, through the gateway at
/// `base`.
async fn put_and_submit(
    cluster: &Cluster,
    base: &str,
    who: &Declarant,
    month: &str,
) -> anyhow::Result<()> {
    let saved = cluster
        .send_at(
            base,
            Method::PUT,
            &who.token,
            &format!("/api/v1/members/{}/declarations/{month}", who.id),
            Some(serde_json::json!({"lines": [{"item_code": "F01", "quantity": 1}, {"item_code": "F04", "quantity": 1, "note": "示范岗"}]})),
        )
        .await?;
    let id = saved["id"].as_str().context("declaration id")?;
    cluster
        .send_at(
            base,
            Method::POST,
            &who.token,
            &format!("/api/v1/declarations/{id}:submit"),
            None,
        )
        .await?;
    Ok(())
}

/// `PUT /members/{id}/declarations/{month}` + `POST /declarations/{id}:submit` through the
/// gateway, first against the architecture's floor ([`crate::floor`]), then against the real
/// declarations service.
pub async fn declarations_through_gateway(
    clients: usize,
    requests: usize,
) -> anyhow::Result<DeclarationRuns> {
    let cluster = Arc::new(Cluster::start().await?);
    let admin = cluster.admin_token.clone();
    let now = chrono::Utc::now();
    let year = now.year();
    if year != 2026 {
        // Publish the shipped document as this year's standard.
        let mut doc = jifen_standard::default_2026()
            .map_err(|p| anyhow::anyhow!("default standard: {} problems", p.len()))?
            .to_json_value()?;
        doc["year"] = serde_json::json!(year);
        cluster
            .send(
                Method::PUT,
                &admin,
                &format!("/api/v1/standards/{year}"),
                Some(doc),
            )
            .await?;
    }
    let shanghai_month = (now + chrono::Duration::hours(8)).month();
    let months: Vec<String> = (1..=shanghai_month)
        .map(|m| format!("{year}-{m:02}"))
        .collect();
    let committee = cluster
        .post("/api/v1/orgs", serde_json::json!({"parent_id": cluster.root_id, "name": "申报基准党委", "kind": "committee", "unit_type": "government_organ"}))
        .await?;
    let branch = cluster
        .post("/api/v1/orgs", serde_json::json!({"parent_id": committee["id"], "name": "申报基准支部", "kind": "branch", "unit_type": "government_organ"}))
        .await?;
    let branch_id = branch["id"].as_str().context("branch id")?.to_owned();
    let branch_path = branch["path"].as_str().context("branch path")?.to_owned();
    let warmup = 64;
    let per_member = months.len();
    let needed = (requests + warmup).div_ceil(per_member);
    let mut people = Vec::with_capacity(needed);
    for i in 0..needed {
        let m = cluster
            .post(
                "/api/v1/members",
                serde_json::json!({"org_id": branch_id, "name": format!("申报{i:05}"), "category": "full", "joined_on": "2015-07-01"}),
            )
            .await?;
        let id = m["id"].as_str().context("member id")?.to_owned();
        let token = cluster.signer.sign(
            &Principal {
                subject: format!("bench-{id}"),
                username: None,
                member_id: Some(id.parse()?),
                roles: vec![RoleClaim {
                    role: RoleName::Member,
                    org_id: branch_id.parse()?,
                    org_path: branch_path.clone(),
                }],
                round_id: None,
            },
            3600,
        )?;
        people.push(Declarant { id, token });
    }
    // The declarations replica has every member once the last one answers.
    let last = people.last().context("no members")?;
    let deadline = Instant::now() + std::time::Duration::from_secs(60);
    while cluster
        .send(
            Method::GET,
            &admin,
            &format!("/api/v1/orgs/{branch_id}/declarations"),
            None,
        )
        .await
        .is_err()
        || cluster
            .send(
                Method::GET,
                &last.token,
                &format!("/api/v1/members/{}/declarations/{}", last.id, months[0]),
                None,
            )
            .await
            .is_err()
    {
        anyhow::ensure!(
            Instant::now() < deadline,
            "the declarations replica did not catch up"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    // Every earlier month of the year is reopened (补报), so each member declares many months.
    let until = (now + chrono::Duration::days(1)).to_rfc3339();
    for month in &months[..months.len() - 1] {
        cluster
            .send(
                Method::POST,
                &admin,
                &format!("/api/v1/orgs/{branch_id}/periods/{month}:reopen"),
                Some(serde_json::json!({"until": until, "reason": "基准测试补报"})),
            )
            .await?;
    }
    let people = Arc::new(people);
    let months = Arc::new(months);
    // The gateway alone: an authenticated `GET /me` answers from the token (no gRPC, no SQL).
    let gateway_alone = {
        let (cluster, people) = (cluster.clone(), people.clone());
        drive(
            format!("gateway alone: GET /me (c={clients})"),
            "requests",
            clients,
            requests,
            warmup,
            move |i| {
                let (cluster, people) = (cluster.clone(), people.clone());
                async move {
                    let who = &people[i % people.len()];
                    cluster
                        .send(Method::GET, &who.token, "/api/v1/me", None)
                        .await?;
                    Ok(())
                }
            },
        )
        .await?
    };
    gateway_alone.print();
    let floor_gateway = crate::floor::FloorGateway::start(&cluster).await?;
    let floor = {
        let (cluster, people, months) = (cluster.clone(), people.clone(), months.clone());
        let base = Arc::new(floor_gateway.base.clone());
        drive(
            format!("floor: gateway + 1 statement (c={clients})"),
            "declarations",
            clients,
            requests,
            warmup,
            move |i| {
                let (cluster, people, months, base) = (
                    cluster.clone(),
                    people.clone(),
                    months.clone(),
                    base.clone(),
                );
                async move {
                    let who = &people[i / months.len()];
                    put_and_submit(&cluster, &base, who, &months[i % months.len()]).await
                }
            },
        )
        .await?
    };
    drop(floor_gateway);
    let bus = cluster.bus.clone();
    let ours = drive(
        format!("declaration PUT+submit via gateway (c={clients})"),
        "declarations",
        clients,
        requests,
        warmup,
        move |i| {
            let (cluster, people, months) = (cluster.clone(), people.clone(), months.clone());
            async move {
                let who = &people[i / months.len()];
                put_and_submit(&cluster, &cluster.base, who, &months[i % months.len()]).await
            }
        },
    )
    .await;
    crate::scenarios::cleanup_bus(&bus).await;
    Ok(DeclarationRuns { floor, ours: ours? })
}

//! `jifen-bench dashboard` (issue 16): the city-level dashboard 党建看板 read through the gateway.
//!
//! The grading service and two gateways run as the release binaries, in child processes, so
//! each one's peak resident memory (VmHWM) and CPU time are its own: one gateway keeps answers in
//! Redis (`JIFEN_DASHBOARD_CACHE_TTL_SECS` of an hour, so the cache stays hot for the whole run),
//! the other has the cache off (TTL 0: every request goes to the grading service and its SQL).
//! Both speak to the same grading service. The callers are the bench's own HTTP clients, with an
//! admin token signed by the key the gateways trust.
//!
//! Two parts:
//! * **At `clients` concurrent clients, for a fixed duration each**, over a 1,000-member city:
//!   the gateway alone (`GET /api/v1/me`, answered from the token), then the dashboard of the
//!   city (`GET /api/v1/dashboard/orgs/{root}?month=`) and its trend
//!   (`GET /api/v1/dashboard/orgs/{root}/trend?year=`, 12 months) cached and uncached. Printed: throughput,
//!   p50/p99, the ratio to the gateway alone, the `x-dashboard-cache` answers counted (a cached
//!   run must be all `hit`, an uncached one all `miss`), the CPU per request of each process, and
//!   verdicts against the goals (cached: p99 < 10 ms and at least half the gateway alone's
//!   throughput).
//! * **Sequential uncached reads over a 300,000-member city**: the `grading-shards` scenario's
//!   city (seeded once into `jifen_bench_shards_<members>` and reused), to which this scenario
//!   adds the dashboard's projection of declarations once (marker table `bench_dashboard_seeded`).
//!   Printed, for the dashboard and the trend: median and max against the goal (< 500 ms), and
//!   as the reference the same statements the service runs (its own store functions), on one
//!   connection of the bench. A read the gateway gives up on (its gRPC deadline is 15 s) is
//!   printed with its time and status, not taken for a failure of the bench.
//!
//! The cities are the grading bench's (`crate::grading::seed`): the root with branches of 40
//! members directly below it (25 branches at 1,000 members, 7,500 at 300,000), every member with
//! 12 months × 5 approved ledger lines of 2026; this scenario adds each member-month's approved
//! declaration (`declaration_months`), so participation is 100% and the mean points are not zero.
//! Loaded in bulk rather than through the events, the cities then get the dashboard's rollup
//! (docs/decisions/0018) rebuilt as its migration's backfill does. With
//! `JIFEN_BENCH_DASHBOARD_BEFORE_READS=n`, the statements the dashboard ran before the rollup
//! are timed too over the big city (the month's n times, the trend's once), each checked to give
//! the rollup's figures.

use crate::grading::{exec, jifen_grading_migrate, seed, uuid_sql};
use crate::report::{CpuTimes, Report};
use crate::shards::{city, scalar};
use anyhow::Context as _;
use hdrhistogram::Histogram;
use jifen_grading::store::dashboard as store;
use jifen_platform::auth::{Principal, RoleClaim, RoleName, TokenSigner};
use jifen_testkit::process::{ReservedPort, ServiceProcess, reserve_port};
use sea_orm::DatabaseConnection;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The seeded cities' root organization (`crate::grading::seed`).
const ROOT: &str = "00000000-0000-7000-8000-000000000000";
const YEAR: i32 = 2026;
const MONTH: u32 = 3;
/// Members of the city read by concurrent clients (the demo city's size).
const SMALL_CITY: u64 = 1_000;
/// The cached gateway's TTL: longer than any run, so its cache stays hot.
const CACHED_TTL_SECS: u64 = 3_600;
/// The goals of issue 16.
const CACHED_P99_GOAL_MS: f64 = 10.0;
const CACHED_SHARE_GOAL: f64 = 0.5;
const BIG_CITY_GOAL_MS: f64 = 500.0;

/// What `jifen-bench dashboard` is asked to do.
pub struct Options {
    pub clients: usize,
    /// How long each concurrent run lasts.
    pub duration: Duration,
    /// Members of the city read sequentially without the cache.
    pub big_city: u64,
    /// Sequential uncached reads over the big city.
    pub reads: usize,
    /// Sequential uncached trend reads over the big city (each reads the whole year's ledger).
    pub trend_reads: usize,
    /// Seed the big city again even when an earlier run left it in place.
    pub fresh: bool,
}

/// Reads of the month's statement before the rollup (docs/decisions/0018) over the big city,
/// beside the rollup's, each checked to give the same figures; with any, the trend's statement
/// before the rollup also runs once (tens of seconds at 300,000 members). From
/// `JIFEN_BENCH_DASHBOARD_BEFORE_READS`; 0 (the default): neither.
fn before_reads() -> usize {
    std::env::var("JIFEN_BENCH_DASHBOARD_BEFORE_READS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Runs both parts and prints their lines.
pub async fn dashboard(options: &Options) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let keys = dir.path().join("keys");
    jifen_platform::auth::ensure_key_pair(&keys, "bench")?;
    let signer = TokenSigner::from_dir(&keys, "bench")?;
    let token = admin_token(&signer)?;
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(options.clients.max(1))
        .build()?;

    concurrent_part(options, dir.path(), &token, &http).await?;
    big_city_part(options, dir.path(), &token, &http).await
}

/// A token of an admin over the seeded cities' root, valid for the whole run.
fn admin_token(signer: &TokenSigner) -> anyhow::Result<String> {
    Ok(signer.sign(
        &Principal {
            subject: "bench-dashboard-admin".into(),
            username: Some("bench-admin".into()),
            member_id: None,
            roles: vec![RoleClaim {
                role: RoleName::Admin,
                org_id: ROOT.parse()?,
                org_path: format!("/{ROOT}/"),
            }],
            round_id: None,
        },
        24 * 3600,
    )?)
}

/// The 1,000-member city at `clients` concurrent clients.
async fn concurrent_part(
    options: &Options,
    dir: &Path,
    token: &str,
    http: &reqwest::Client,
) -> anyhow::Result<()> {
    let database = jifen_testkit::fresh_database("bench_dash").await?;
    let db = jifen_grading_migrate(&database.server_url, &database.name).await?;
    let started = Instant::now();
    seed(&db, SMALL_CITY).await?;
    seed_declaration_months(&db, SMALL_CITY).await?;
    store::rebuild_rollup(&db).await?;
    println!(
        "{:<34} {:>9} members, seeded in {:.1} s",
        "dashboard city",
        SMALL_CITY,
        started.elapsed().as_secs_f64()
    );
    db.close().await?;

    let services = Services::start(
        dir,
        "small",
        &database.server_url,
        &database.name,
        &[("cached", CACHED_TTL_SECS), ("uncached", 0)],
    )
    .await?;
    let (cached, uncached) = (services.base("cached")?, services.base("uncached")?);
    let month = format!("{YEAR}-{MONTH:02}");
    let dashboard = format!("/api/v1/dashboard/orgs/{ROOT}?month={month}");

    // The figures are real and the two gateways agree (the cached one's first answer is a miss).
    let fresh = get_json(http, &format!("{uncached}{dashboard}"), token).await?;
    let figures = check_figures(&fresh, SMALL_CITY)?;
    let kept = get_json(http, &format!("{cached}{dashboard}"), token).await?;
    anyhow::ensure!(kept == fresh, "the cached gateway answered other figures");
    println!("{:<34} {figures}", "  dashboard figures");
    let trend = format!("/api/v1/dashboard/orgs/{ROOT}/trend?year={YEAR}");
    let fresh = get_json(http, &format!("{uncached}{trend}"), token).await?;
    let months = check_trend(&fresh, SMALL_CITY)?;
    let kept = get_json(http, &format!("{cached}{trend}"), token).await?;
    anyhow::ensure!(kept == fresh, "the cached gateway answered another trend");
    println!("{:<34} {months}", "  trend figures");

    let mut reads = vec![
        Read::new("gateway alone GET /me", &cached, "/api/v1/me", None),
        Read::new("dashboard, cached", &cached, &dashboard, Some("hit")),
        Read::new("dashboard, uncached", &uncached, &dashboard, Some("miss")),
    ];
    reads.extend(trend_reads(&cached, &uncached));

    // Warm-up, untimed: connections, prepared statements, the cache filled.
    for read in &reads {
        drive(
            http,
            token,
            read,
            options.clients,
            Duration::from_secs(1),
            &services,
        )
        .await?;
    }
    let mut runs = Vec::new();
    for read in &reads {
        let run = drive(
            http,
            token,
            read,
            options.clients,
            options.duration,
            &services,
        )
        .await?;
        run.print();
        runs.push(run);
    }
    let alone = runs.first().context("no gateway-alone run")?;
    for run in runs.iter().skip(1) {
        run.print_verdict(alone);
    }
    services.print_memory();
    services.stop().await;
    Ok(())
}

/// The trend's reads (`GET /api/v1/dashboard/orgs/{id}/trend?year=`, the 12 months of 2026).
fn trend_reads(cached: &str, uncached: &str) -> Vec<Read> {
    let trend = format!("/api/v1/dashboard/orgs/{ROOT}/trend?year={YEAR}");
    vec![
        Read::new("trend, cached", cached, &trend, Some("hit")),
        Read::new("trend, uncached", uncached, &trend, Some("miss")),
    ]
}

/// "12 months, members 1000, declared 1000 in January": the trend, checked to have the year's
/// 12 months, each counting the whole city with declarations.
fn check_trend(answer: &serde_json::Value, members: u64) -> anyhow::Result<String> {
    let months = answer["months"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    anyhow::ensure!(
        months.len() == 12
            && months.iter().all(|m| m["members"].as_u64() == Some(members)
                && m["declared"].as_u64().unwrap_or_default() > 0),
        "the trend did not count {members} members with declarations in 12 months: {answer}"
    );
    Ok(format!(
        "12 months, members {members}, declared {} in January",
        months[0]["declared"]
    ))
}

/// Sequential uncached reads over the big city, beside the service's own statements.
async fn big_city_part(
    options: &Options,
    dir: &Path,
    token: &str,
    http: &reqwest::Client,
) -> anyhow::Result<()> {
    let (server, name, db) = city(options.big_city, options.fresh).await?;
    seed_big_city_declarations(&db, options.big_city).await?;
    let services = Services::start(dir, "big", &server, &name, &[("uncached", 0)]).await?;
    let uncached = services.base("uncached")?;
    let month = format!("{YEAR}-{MONTH:02}");
    let url = format!("{uncached}/api/v1/dashboard/orgs/{ROOT}?month={month}");
    println!(
        "{:<34} {:>9} members, {} reads each, one untimed first",
        "dashboard, big city, uncached", options.big_city, options.reads
    );

    // One read untimed (connections, the buffer cache), checked when it answers.
    let (first, answer) = read_once(http, &url, token).await?;
    match &answer {
        Ok(answer) => {
            let figures = check_figures(answer, options.big_city)?;
            println!(
                "{:<34} {figures}; {} children, {} KiB of JSON; first read {:.0} ms",
                "  dashboard",
                answer["children"].as_array().map_or(0, Vec::len),
                serde_json::to_vec(answer)?.len() / 1024,
                first.as_secs_f64() * 1000.0
            );
        }
        Err(e) => println!(
            "{:<34} first read failed after {:.0} ms: {e}",
            "  dashboard",
            first.as_secs_f64() * 1000.0
        ),
    }
    let mut through_gateway = Vec::new();
    for _ in 0..options.reads {
        through_gateway.push(read_once(http, &url, token).await?);
    }
    print_sequential(
        "  dashboard via gateway",
        &through_gateway,
        Some(BIG_CITY_GOAL_MS),
    );

    // The reference: the statements the service runs for one dashboard, run by the bench.
    let path = format!("/{ROOT}/");
    let root: uuid::Uuid = ROOT.parse()?;
    let mut sql_alone = Vec::new();
    for _ in 0..options.reads {
        let started = Instant::now();
        let groups = store::figures_by_child(&db, &path, YEAR, MONTH).await?;
        let children = store::children(&db, root).await?;
        store::on_path(&db, &path).await?;
        store::grade_counts(&db, &path, YEAR).await?;
        let took = started.elapsed();
        anyhow::ensure!(
            groups.iter().map(|g| g.members).sum::<i64>() == i64::try_from(options.big_city)?
                && !children.is_empty(),
            "the service's statements saw another city"
        );
        sql_alone.push((took, Ok(serde_json::Value::Null)));
    }
    print_sequential("  its SQL alone, on one connection", &sql_alone, None);
    if before_reads() > 0 {
        let mut before = Vec::new();
        let want = sorted(store::figures_by_child(&db, &path, YEAR, MONTH).await?);
        for _ in 0..before_reads() {
            let started = Instant::now();
            let groups = before_0018::figures_by_child(&db, &path, YEAR, MONTH).await?;
            before.push((started.elapsed(), Ok(serde_json::Value::Null)));
            anyhow::ensure!(
                sorted(groups) == want,
                "the rollup's figures differ from the statement before 0018"
            );
        }
        print_sequential("  the month's statement before 0018", &before, None);
    }

    let url = format!("{uncached}/api/v1/dashboard/orgs/{ROOT}/trend?year={YEAR}");
    let mut through_gateway = Vec::new();
    for _ in 0..options.trend_reads {
        let (took, answer) = read_once(http, &url, token).await?;
        if let Ok(answer) = &answer {
            check_trend(answer, options.big_city)?;
        }
        through_gateway.push((took, answer));
    }
    print_sequential(
        &format!("  trend via gateway ({} reads)", options.trend_reads),
        &through_gateway,
        Some(BIG_CITY_GOAL_MS),
    );
    let mut sql_alone = Vec::new();
    for _ in 0..options.trend_reads {
        let started = Instant::now();
        let rows = store::figures_by_month(&db, &path, YEAR).await?;
        sql_alone.push((started.elapsed(), Ok(serde_json::Value::Null)));
        anyhow::ensure!(
            rows.iter().filter(|r| r.month > 0).count() == 12,
            "the trend's statement saw {} months",
            rows.len()
        );
    }
    print_sequential("  its SQL alone, on one connection", &sql_alone, None);
    if before_reads() > 0 {
        let want = store::figures_by_month(&db, &path, YEAR).await?;
        let started = Instant::now();
        let rows = before_0018::figures_by_month(&db, &path, YEAR).await?;
        let took = started.elapsed();
        anyhow::ensure!(
            rows == want,
            "the rollup's trend differs from the statement before 0018"
        );
        print_sequential(
            "  the trend's statement before 0018",
            &[(took, Ok(serde_json::Value::Null))],
            None,
        );
    }
    services.print_memory();
    services.stop().await;
    db.close().await?;
    Ok(())
}

/// One GET through the gateway: its time and its JSON, or what went wrong (a refused or
/// timed-out read is a result here, not a failure of the bench). Every answer must be a miss.
async fn read_once(
    http: &reqwest::Client,
    url: &str,
    token: &str,
) -> anyhow::Result<(Duration, Result<serde_json::Value, String>)> {
    let started = Instant::now();
    let response = match http.get(url).bearer_auth(token).send().await {
        Ok(r) => r,
        Err(e) => return Ok((started.elapsed(), Err(e.to_string()))),
    };
    let status = response.status();
    if !status.is_success() {
        let body = response.text().await.unwrap_or_default();
        return Ok((started.elapsed(), Err(format!("{status} {body}"))));
    }
    anyhow::ensure!(
        cache_answer(&response).as_deref() == Some("miss"),
        "an uncached read was not a miss"
    );
    let answer = response.json().await;
    let took = started.elapsed();
    Ok((took, answer.map_err(|e| e.to_string())))
}

/// Each member-month's approved declaration (the one whose lines the ledger holds: same id as
/// the ledger's `ref`), into the dashboard's projection.
async fn seed_declaration_months(db: &DatabaseConnection, members: u64) -> anyhow::Result<()> {
    let member = uuid_sql("00000002", "i");
    let reference = uuid_sql("00000003", "i * 12 + m");
    exec(db, "SET synchronous_commit = off").await?;
    exec(
        db,
        &format!(
            "INSERT INTO declaration_months (id, member_id, year, month, status, submitted, version) \
             SELECT {reference}, {member}, {YEAR}, m, 'approved', true, 1 \
             FROM generate_series(0, {}) i, generate_series(1, 12) m",
            members - 1
        ),
    )
    .await?;
    exec(db, "VACUUM ANALYZE declaration_months").await
}

/// [`seed_declaration_months`] into the reused big city, once.
async fn seed_big_city_declarations(db: &DatabaseConnection, members: u64) -> anyhow::Result<()> {
    let seeded = scalar(
        db,
        "SELECT coalesce((SELECT members FROM bench_dashboard_seeded), -1) AS n \
         FROM (SELECT to_regclass('bench_dashboard_seeded') IS NOT NULL AS ok) t",
    )
    .await
    .unwrap_or(-1);
    if u64::try_from(seeded).ok() == Some(members) {
        // Declarations seeded by a run before the rollup (0018): its migration's backfill
        // filled it when the database was migrated; a bulk load after that did not.
        if scalar(db, "SELECT count(*) AS n FROM dashboard_org_members").await? == 0 {
            let started = Instant::now();
            store::rebuild_rollup(db).await?;
            println!(
                "dashboard: the rollup of the big city rebuilt in {:.0} s",
                started.elapsed().as_secs_f64()
            );
        }
        return Ok(());
    }
    let started = Instant::now();
    exec(db, "TRUNCATE declaration_months").await?;
    seed_declaration_months(db, members).await?;
    // Loaded in bulk, not through the events: the rollup is built as its migration's backfill.
    store::rebuild_rollup(db).await?;
    exec(
        db,
        "VACUUM ANALYZE dashboard_member_months, dashboard_org_months, dashboard_org_members",
    )
    .await?;
    exec(db, "DROP TABLE IF EXISTS bench_dashboard_seeded").await?;
    exec(
        db,
        &format!("CREATE TABLE bench_dashboard_seeded AS SELECT {members}::bigint AS members"),
    )
    .await?;
    println!(
        "dashboard: {} declarations of the month added to the big city in {:.0} s",
        members * 12,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// "members 1000, declared 1000, participation 1, mean points 7.5": the figures, checked to
/// count the whole city and to be not all zero.
fn check_figures(answer: &serde_json::Value, members: u64) -> anyhow::Result<String> {
    let counted = answer["members"].as_u64().unwrap_or_default();
    let declared = answer["declared"].as_u64().unwrap_or_default();
    let avg = answer["approved_points_avg"].as_f64().unwrap_or_default();
    anyhow::ensure!(
        counted == members && declared > 0 && avg > 0.0,
        "the dashboard counted {counted} members ({members} seeded), {declared} declared, \
         mean points {avg}"
    );
    Ok(format!(
        "members {counted}, declared {declared}, participation {}, mean points {avg}",
        answer["participation_rate"]
    ))
}

async fn get_json(
    http: &reqwest::Client,
    url: &str,
    token: &str,
) -> anyhow::Result<serde_json::Value> {
    let response = http.get(url).bearer_auth(token).send().await?;
    let status = response.status();
    anyhow::ensure!(
        status.is_success(),
        "{url}: {status} {}",
        response.text().await.unwrap_or_default()
    );
    Ok(response.json().await?)
}

/// The `x-dashboard-cache` header of an answer.
fn cache_answer(response: &reqwest::Response) -> Option<String> {
    response
        .headers()
        .get("x-dashboard-cache")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// One kind of request driven by the concurrent clients.
struct Read {
    name: &'static str,
    url: String,
    /// The `x-dashboard-cache` answer every request must get (`None`: not a dashboard read).
    expect_cache: Option<&'static str>,
}

impl Read {
    fn new(name: &'static str, base: &str, path: &str, expect_cache: Option<&'static str>) -> Self {
        Self {
            name,
            url: format!("{base}{path}"),
            expect_cache,
        }
    }
}

/// What one concurrent run measured.
struct Run {
    report: Report,
    /// Requests whose cache header was not the expected one.
    unexpected_cache: u64,
    expect_cache: Option<&'static str>,
    /// CPU seconds of each service process (by label) and of the bench process and PostgreSQL.
    cpu: Vec<(String, f64)>,
    bench_cpu: f64,
    postgres_cpu: f64,
}

/// GETs `read.url` from `clients` tasks until `duration` has passed.
async fn drive(
    http: &reqwest::Client,
    token: &str,
    read: &Read,
    clients: usize,
    duration: Duration,
    services: &Services,
) -> anyhow::Result<Run> {
    let url = Arc::new(read.url.clone());
    let token = Arc::new(token.to_owned());
    let before = (CpuTimes::now(), services.cpu());
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (http, url, token, expect) =
            (http.clone(), url.clone(), token.clone(), read.expect_cache);
        tasks.push(tokio::spawn(async move {
            let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
            let (mut done, mut errors, mut unexpected) = (0u64, 0u64, 0u64);
            while started.elapsed() < duration {
                let t = Instant::now();
                match http
                    .get(url.as_str())
                    .bearer_auth(token.as_str())
                    .send()
                    .await
                {
                    Ok(response) if response.status().is_success() => {
                        if expect.is_some() && cache_answer(&response).as_deref() != expect {
                            unexpected += 1;
                        }
                        if response.bytes().await.is_err() {
                            errors += 1;
                        }
                    }
                    _ => errors += 1,
                }
                h.record(t.elapsed().as_micros() as u64)?;
                done += 1;
            }
            anyhow::Ok((h, done, errors, unexpected))
        }));
    }
    let mut latency = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    let (mut operations, mut errors, mut unexpected_cache) = (0, 0, 0);
    for t in tasks {
        let (h, done, failed, unexpected) = t.await??;
        latency.add(h)?;
        operations += done;
        errors += failed;
        unexpected_cache += unexpected;
    }
    let elapsed = started.elapsed();
    let cpu_all = CpuTimes::now().since(before.0);
    let cpu = services
        .cpu()
        .into_iter()
        .zip(before.1)
        .map(|((label, after), (_, earlier))| (label, after - earlier))
        .collect();
    Ok(Run {
        report: Report {
            name: format!("{} (c={clients})", read.name),
            operations,
            elapsed,
            unit: "requests",
            latency: Some(latency),
            errors,
            cpu: None,
        },
        unexpected_cache,
        expect_cache: read.expect_cache,
        cpu,
        bench_cpu: cpu_all.bench,
        postgres_cpu: cpu_all.postgres,
    })
}

impl Run {
    fn p(&self, q: f64) -> f64 {
        self.report
            .latency
            .as_ref()
            .map_or(f64::NAN, |h| h.value_at_quantile(q) as f64 / 1000.0)
    }

    fn print(&self) {
        self.report.print();
        let per = |secs: f64| 1000.0 * secs / self.report.operations.max(1) as f64;
        let mut line = format!("CPU per request: {:.3} ms clients", per(self.bench_cpu));
        for (label, secs) in &self.cpu {
            line.push_str(&format!(", {:.3} ms {label}", per(*secs)));
        }
        line.push_str(&format!(", {:.3} ms PostgreSQL", per(self.postgres_cpu)));
        println!("{:<34} {line}", "");
        if let Some(expect) = self.expect_cache {
            println!(
                "{:<34} x-dashboard-cache: {} of {} answers not `{expect}`",
                "", self.unexpected_cache, self.report.operations
            );
        }
    }

    /// The ratio to the gateway alone and, for a cached read, the goals.
    fn print_verdict(&self, alone: &Run) {
        let share = self.report.throughput() / alone.report.throughput();
        let p99 = self.p(0.99);
        let name = format!("  {} vs gateway alone", self.report.name);
        if self.expect_cache == Some("hit") {
            let verdict = |ok: bool| if ok { "met" } else { "MISSED" };
            println!(
                "{name:<34} {:>9.0}% of its throughput (goal ≥ {:.0}%: {}), p99 {p99:.2} ms \
                 (goal < {CACHED_P99_GOAL_MS:.0} ms: {})",
                100.0 * share,
                100.0 * CACHED_SHARE_GOAL,
                verdict(share >= CACHED_SHARE_GOAL && self.unexpected_cache == 0),
                verdict(p99 < CACHED_P99_GOAL_MS && self.unexpected_cache == 0),
            );
        } else {
            println!(
                "{name:<34} {:>9.0}% of its throughput, p99 {p99:.2} ms (no goal at this size)",
                100.0 * share
            );
        }
    }
}

/// Median, min and max of sequential reads (failed ones counted by their time too, and named),
/// and the verdict against `goal_ms`.
fn print_sequential(
    name: &str,
    reads: &[(Duration, Result<serde_json::Value, String>)],
    goal_ms: Option<f64>,
) {
    let mut ms: Vec<f64> = reads.iter().map(|r| r.0.as_secs_f64() * 1000.0).collect();
    ms.sort_by(f64::total_cmp);
    let median = ms.get(ms.len() / 2).copied().unwrap_or(f64::NAN);
    let max = ms.last().copied().unwrap_or(f64::NAN);
    let min = ms.first().copied().unwrap_or(f64::NAN);
    let failed: Vec<&String> = reads.iter().filter_map(|r| r.1.as_ref().err()).collect();
    let mut line = format!("{name:<34} median {median:>8.1} ms  min {min:.1} ms  max {max:.1} ms");
    if let Some(goal) = goal_ms {
        line.push_str(&format!(
            "   (goal < {goal:.0} ms: {})",
            if !failed.is_empty() {
                "MISSED, reads failed"
            } else if max < goal {
                "met"
            } else if median < goal {
                "median met, max MISSED"
            } else {
                "MISSED"
            }
        ));
    }
    println!("{line}");
    if let Some(first) = failed.first() {
        let first: String = first.chars().take(200).collect();
        println!(
            "{:<34} {} of {} reads failed; the first: {first}",
            "",
            failed.len(),
            reads.len()
        );
    }
}

/// The grading service and gateways, started as the release binaries over one grading database,
/// on reserved ports, with a unique bus and Redis prefix. Killed when dropped.
struct Services {
    grading: ServiceProcess,
    /// (label, base URL, process).
    gateways: Vec<(String, String, ServiceProcess)>,
    bus: jifen_eventbus::BusConfig,
    _ports: Vec<ReservedPort>,
}

impl Services {
    async fn start(
        dir: &Path,
        label: &str,
        server_url: &str,
        database: &str,
        gateways: &[(&str, u64)],
    ) -> anyhow::Result<Self> {
        let prefix = jifen_testkit::unique_prefix("benchdash");
        let (grpc, ops) = (reserve_port()?, reserve_port()?);
        let (grpc_addr, ops_addr) = (grpc.addr(), ops.addr());
        let env = |extra: &[(&str, String)]| -> Vec<(String, String)> {
            [
                ("JIFEN_DATABASE_URL", server_url.to_owned()),
                ("JIFEN_GRADING_DATABASE", database.to_owned()),
                ("JIFEN_AMQP_URL", jifen_testkit::amqp_url()),
                ("JIFEN_REDIS_URL", jifen_testkit::redis_url()),
                ("JIFEN_BUS_PREFIX", prefix.clone()),
                ("JIFEN_REDIS_PREFIX", format!("{prefix}:")),
                ("JIFEN_JWT_KEYS_DIR", dir.join("keys").display().to_string()),
                ("JIFEN_JWT_SIGNING_KID", "bench".into()),
                ("JIFEN_GRADING_GRPC_ADDR", grpc_addr.to_string()),
                ("JIFEN_GRADING_OPS_ADDR", ops_addr.to_string()),
                ("JIFEN_GRADING_URL", format!("http://{grpc_addr}")),
                ("JIFEN_RATE_LIMIT_PER_MINUTE", "0".into()),
                ("JIFEN_SHUTDOWN_DRAIN_SECS", "0".into()),
                ("RUST_LOG", "warn".into()),
            ]
            .into_iter()
            .chain(extra.iter().cloned())
            .map(|(k, v)| (k.to_owned(), v))
            .collect()
        };
        let http = reqwest::Client::new();
        let grading = ServiceProcess::spawn(
            &binary("jifen-grading")?,
            &[],
            &env(&[]),
            dir.join(format!("grading-{label}.log")),
        )?;
        wait_ready(&http, &format!("http://{ops_addr}/readyz"), &grading).await?;
        let mut ports = vec![grpc, ops];
        let mut started = Vec::new();
        for (name, ttl) in gateways {
            let port = reserve_port()?;
            let gateway = ServiceProcess::spawn(
                &binary("jifen-gateway")?,
                &[],
                &env(&[
                    ("JIFEN_GATEWAY_ADDR", port.addr().to_string()),
                    ("JIFEN_DASHBOARD_CACHE_TTL_SECS", ttl.to_string()),
                ]),
                dir.join(format!("gateway-{label}-{name}.log")),
            )?;
            let base = format!("http://{}", port.addr());
            wait_ready(&http, &format!("{base}/healthz"), &gateway).await?;
            started.push(((*name).to_owned(), base, gateway));
            ports.push(port);
        }
        Ok(Self {
            grading,
            gateways: started,
            bus: jifen_eventbus::BusConfig::new(jifen_testkit::amqp_url()).with_prefix(&prefix),
            _ports: ports,
        })
    }

    fn base(&self, label: &str) -> anyhow::Result<String> {
        self.gateways
            .iter()
            .find(|g| g.0 == label)
            .map(|g| g.1.clone())
            .with_context(|| format!("no gateway {label}"))
    }

    /// Each process by label with its pid.
    fn processes(&self) -> Vec<(String, Option<u32>)> {
        std::iter::once(("grading".to_owned(), self.grading.pid()))
            .chain(
                self.gateways
                    .iter()
                    .map(|(label, _, p)| (format!("gateway {label}"), p.pid())),
            )
            .collect()
    }

    /// CPU seconds (user + system) so far of each process.
    fn cpu(&self) -> Vec<(String, f64)> {
        self.processes()
            .into_iter()
            .map(|(label, pid)| (label, pid.and_then(process_cpu).unwrap_or(0.0)))
            .collect()
    }

    fn print_memory(&self) {
        let line = self
            .processes()
            .into_iter()
            .map(|(label, pid)| {
                let mib = pid
                    .and_then(peak_kib)
                    .map_or(f64::NAN, |k| k as f64 / 1024.0);
                format!("{label} {mib:.0} MiB")
            })
            .collect::<Vec<_>>()
            .join(", ");
        println!("{:<34} {line}", "  peak RSS (VmHWM)");
    }

    async fn stop(mut self) {
        for (_, _, gateway) in &mut self.gateways {
            let _ = gateway.terminate().await;
        }
        let _ = self.grading.terminate().await;
        let consumer = jifen_grading::events::projections_spec().name;
        jifen_eventbus::delete_topology(&self.bus, &[consumer.as_str()]).await;
    }
}

/// A release binary beside the bench's own (`target/release/`).
fn binary(name: &str) -> anyhow::Result<PathBuf> {
    let path = std::env::current_exe()?
        .parent()
        .context("no directory for the bench binary")?
        .join(name);
    anyhow::ensure!(
        path.exists(),
        "{} is not built: run `cargo build --release --workspace --bins` first",
        path.display()
    );
    Ok(path)
}

async fn wait_ready(
    http: &reqwest::Client,
    url: &str,
    process: &ServiceProcess,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Ok(r) = http.get(url).send().await
            && r.status() == 200
        {
            return Ok(());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "{url} not ready in 120 s; log:\n{}",
            process.log_text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// CPU seconds (user + system) of process `pid` so far.
fn process_cpu(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let close = stat.rfind(')')?;
    let fields: Vec<&str> = stat.get(close + 2..)?.split(' ').collect();
    // utime and stime: fields 14 and 15 of stat(5), 11 and 12 after the command.
    let ticks: f64 = fields
        .get(11..13)?
        .iter()
        .filter_map(|v| v.parse::<f64>().ok())
        .sum();
    Some(ticks / 100.0)
}

/// Peak resident memory (VmHWM) of process `pid`, KiB.
fn peak_kib(pid: u32) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
}

fn sorted(mut groups: Vec<store::ChildFigures>) -> Vec<store::ChildFigures> {
    groups.sort_by_key(|g| g.child);
    groups
}

/// The dashboard's statements as they were before the rollup (docs/decisions/0008, 0015),
/// over `members`, `declaration_months` and `ledger_entries`: the reference the rollup's
/// figures must equal, and its time the "before" of docs/benchmarks.md.
mod before_0018 {
    use jifen_grading::store::dashboard::{ChildFigures, MonthFigures};
    use sea_orm::{ConnectionTrait, DbBackend, DbErr, FromQueryResult, Statement};

    fn pattern(path: &str) -> Result<String, DbErr> {
        if path.is_empty()
            || !path
                .chars()
                .all(|c| c.is_ascii_hexdigit() || c == '-' || c == '/')
        {
            return Err(DbErr::Custom(format!("not an organization path: {path:?}")));
        }
        Ok(format!("'{path}%'"))
    }

    pub async fn figures_by_child(
        conn: &impl ConnectionTrait,
        path: &str,
        year: i32,
        month: u32,
    ) -> Result<Vec<ChildFigures>, DbErr> {
        let pattern = pattern(path)?;
        let child_at = i32::try_from(path.len() + 1).unwrap_or(i32::MAX);
        ChildFigures::find_by_statement(Statement::from_sql_and_values(
            DbBackend::Postgres,
            format!(
                "SELECT CAST(nullif(substr(m.org_path, $3, 36), '') AS uuid) AS child, \
                 count(*) AS members, count(d.member_id) AS declared, \
                 CAST(coalesce(sum(p.points), 0) AS bigint) AS points \
                 FROM members m \
                 LEFT JOIN (SELECT DISTINCT member_id FROM declaration_months \
                   WHERE year = $1 AND month = $2 AND submitted) d ON d.member_id = m.id \
                 LEFT JOIN (SELECT member_id, sum(points) AS points FROM ledger_entries \
                   WHERE year = $1 AND month = $2 GROUP BY member_id) p ON p.member_id = m.id \
                 WHERE m.org_path LIKE {pattern} AND m.status = 'active' \
                 GROUP BY 1"
            ),
            [
                year.into(),
                i32::try_from(month).unwrap_or(0).into(),
                child_at.into(),
            ],
        ))
        .all(conn)
        .await
    }

    pub async fn figures_by_month(
        conn: &impl ConnectionTrait,
        path: &str,
        year: i32,
    ) -> Result<Vec<MonthFigures>, DbErr> {
        let pattern = pattern(path)?;
        MonthFigures::find_by_statement(Statement::from_sql_and_values(
            DbBackend::Postgres,
            format!(
                "WITH m AS (SELECT id FROM members WHERE org_path LIKE {pattern} \
                   AND status = 'active'), \
                 d AS (SELECT dm.month, count(DISTINCT dm.member_id) AS declared \
                   FROM declaration_months dm JOIN m ON m.id = dm.member_id \
                   WHERE dm.year = $1 AND dm.submitted GROUP BY dm.month), \
                 p AS (SELECT le.month, sum(le.points) AS points \
                   FROM ledger_entries le JOIN m ON m.id = le.member_id \
                   WHERE le.year = $1 GROUP BY le.month), \
                 months AS (SELECT month FROM d UNION SELECT month FROM p UNION SELECT 0) \
                 SELECT CAST(months.month AS integer) AS month, \
                 (SELECT count(*) FROM m) AS members, \
                 coalesce(d.declared, 0) AS declared, \
                 CAST(coalesce(p.points, 0) AS bigint) AS points \
                 FROM months LEFT JOIN d ON d.month = months.month \
                 LEFT JOIN p ON p.month = months.month ORDER BY 1"
            ),
            [year.into()],
        ))
        .all(conn)
        .await
    }
}

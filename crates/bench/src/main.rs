//! `make bench`: the hot paths of jifen, measured on the real local PostgreSQL, RabbitMQ and Redis
//! with a release build. Each scenario prints throughput and latency percentiles.
//!
//! * `members`: members created per second through the gateway (HTTP → gRPC → PostgreSQL +
//!   outbox) at 32 concurrent clients, with p50/p99 latency.
//! * `declarations`: declarations PUT and submitted per second through the gateway at 32
//!   concurrent clients with p50/p99, beside the ceiling of a bare axum + PostgreSQL single-row
//!   insert endpoint at the same concurrency (target: at least 40% of it, p99 under 50 ms), and
//!   an authenticated `GET /api/v1/me` that the gateway answers alone (its own cost per request),
//!   and the floor: the same operation through the gateway to a service that runs one statement
//!   per call (the most any implementation behind the gateway can reach).
//! * `evaluations`: ballots cast per second through the gateway (HTTP → gRPC → one PostgreSQL
//!   transaction spending the code and storing the ballot) at 32 concurrent clients, each ballot
//!   with its own code, with p50/p99 latency.
//! * `grading`: the year-end batch over a city of 100,000 and 300,000 members (6 and 18 million
//!   ledger lines), beside a bare SQL `GROUP BY member` sum over the same lines (target: within
//!   3× of it, peak memory under 1 GiB, linear growth).
//! * `grading-shards`: the same batch over a city of 300,000 members run as 1, 2 and 4 shard
//!   processes started together (`--shard i/n`), over one database seeded once and reused: wall
//!   time, members/s, peak memory per process, CPU of the processes and of PostgreSQL.
//! * `dashboard`: the city-level dashboard and its trend through the gateway at 64 concurrent clients for a
//!   fixed duration, cached and uncached, beside the gateway alone (`GET /me`) in the same run
//!   (goals: cached p99 under 10 ms and at least half the gateway alone's throughput); then
//!   sequential uncached reads over the 300,000-member city of `grading-shards` (goal: under
//!   500 ms), beside the service's own statements; peak memory of the gateway and grading.
//! * `relay`: events per second through the outbox relay (PostgreSQL → RabbitMQ with publisher
//!   confirms → marked published).
//! * `consume`: events per second applied by one inbox consumer with a one-upsert handler, from a
//!   queue already holding them all (a backlog, as after the demo history's seeding).
//!
//! Every scenario run by concurrent clients also prints the CPU time per operation of this
//! process (clients and in-process services), of the PostgreSQL server and of RabbitMQ.

mod cluster;
mod dashboard;
mod declarations;
mod floor;
mod grading;
mod report;
mod scenarios;
mod shards;

use clap::{Parser, ValueEnum};

/// mimalloc, as in the service binaries (the in-process services should allocate as they do).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(about = "Benchmarks of jifen's hot paths")]
struct Cli {
    /// Which scenario to run.
    #[arg(value_enum, default_value = "all")]
    scenario: Scenario,
    /// Concurrent HTTP clients.
    #[arg(long, default_value_t = 32)]
    clients: usize,
    /// Requests per HTTP scenario.
    #[arg(long, default_value_t = 6_400)]
    requests: usize,
    /// City sizes (members) of the grading scenario.
    #[arg(long, value_delimiter = ',', default_values_t = vec![100_000u64, 300_000])]
    city: Vec<u64>,
    /// City size (members) of the grading-shards scenario.
    #[arg(long, default_value_t = 300_000)]
    shard_city: u64,
    /// Shard counts of the grading-shards scenario, each run as that many processes at once.
    #[arg(long, value_delimiter = ',', default_values_t = vec![1u32, 2, 4])]
    shards: Vec<u32>,
    /// Seed the 300,000-member city of grading-shards (and dashboard) again even when an earlier
    /// run left it in place.
    #[arg(long)]
    fresh: bool,
    /// Concurrent HTTP clients of the dashboard scenario.
    #[arg(long, default_value_t = 64)]
    dashboard_clients: usize,
    /// Seconds each concurrent run of the dashboard scenario lasts.
    #[arg(long, default_value_t = 10)]
    dashboard_secs: u64,
    /// City size (members) of the dashboard scenario's sequential uncached reads.
    #[arg(long, default_value_t = 300_000)]
    dashboard_city: u64,
    /// Sequential uncached dashboard reads over that city.
    #[arg(long, default_value_t = 7)]
    dashboard_reads: usize,
    /// Sequential uncached trend reads over that city.
    #[arg(long, default_value_t = 3)]
    dashboard_trend_reads: usize,
    /// Events staged for the relay and consume scenarios.
    #[arg(long, default_value_t = 20_000)]
    events: usize,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Scenario {
    All,
    Members,
    Declarations,
    Evaluations,
    Relay,
    Consume,
    Grading,
    GradingShards,
    Dashboard,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if matches!(cli.scenario, Scenario::All | Scenario::Members) {
        scenarios::members_through_gateway(cli.clients, cli.requests)
            .await?
            .print();
    }
    if matches!(cli.scenario, Scenario::All | Scenario::Declarations) {
        let ceiling = declarations::ceiling(cli.clients, cli.requests).await?;
        ceiling.print();
        let declarations::DeclarationRuns { floor, ours } =
            declarations::declarations_through_gateway(cli.clients, cli.requests).await?;
        floor.print();
        ours.print();
        println!(
            "{:<34} {:>9.0}% of the ceiling's throughput: the most any implementation behind the gateway can reach",
            "floor vs ceiling",
            100.0 * floor.throughput() / ceiling.throughput(),
        );
        let p99_ms = ours
            .latency
            .as_ref()
            .map_or(f64::NAN, |h| h.value_at_quantile(0.99) as f64 / 1000.0);
        println!(
            "{:<34} {:>9.0}% of the ceiling's throughput (target ≥ 40%), p99 {:.1} ms (target < 50 ms)",
            "declarations vs ceiling",
            100.0 * ours.throughput() / ceiling.throughput(),
            p99_ms
        );
    }
    if matches!(cli.scenario, Scenario::All | Scenario::Evaluations) {
        scenarios::ballots_through_gateway(cli.clients, cli.requests)
            .await?
            .print();
    }
    if matches!(cli.scenario, Scenario::All | Scenario::Relay) {
        scenarios::outbox_relay(cli.events).await?.print();
    }
    if matches!(cli.scenario, Scenario::All | Scenario::Consume) {
        scenarios::consumer_drain(cli.events).await?.print();
    }
    if matches!(cli.scenario, Scenario::All | Scenario::Grading) {
        let mut runs = Vec::new();
        for members in &cli.city {
            let run = grading::batch_vs_ceiling(*members).await?;
            run.print();
            runs.push(run);
        }
        if let (Some(first), Some(last)) = (runs.first(), runs.last())
            && runs.len() > 1
        {
            println!(
                "{:<34} {:.2}× the time for {:.1}× the members (linear = {:.1}×)",
                "  growth",
                last.batch.as_secs_f64() / first.batch.as_secs_f64(),
                last.members as f64 / first.members as f64,
                last.members as f64 / first.members as f64
            );
        }
    }
    if matches!(cli.scenario, Scenario::All | Scenario::GradingShards) {
        let runs = shards::shard_runs(cli.shard_city, &cli.shards, cli.fresh).await?;
        if let Some(one) = runs.iter().find(|r| r.shards == 1) {
            for r in runs.iter().filter(|r| r.shards > 1) {
                println!(
                    "{:<34} {:.2}× the speed of one process with {} ({} cores here)",
                    "  speed-up",
                    one.wall.as_secs_f64() / r.wall.as_secs_f64(),
                    r.shards,
                    std::thread::available_parallelism().map_or(0, std::num::NonZero::get)
                );
            }
        }
    }
    if matches!(cli.scenario, Scenario::All | Scenario::Dashboard) {
        dashboard::dashboard(&dashboard::Options {
            clients: cli.dashboard_clients,
            duration: std::time::Duration::from_secs(cli.dashboard_secs),
            big_city: cli.dashboard_city,
            reads: cli.dashboard_reads,
            trend_reads: cli.dashboard_trend_reads,
            // In `all`, grading-shards has just seeded the city when asked to.
            fresh: cli.fresh && cli.scenario == Scenario::Dashboard,
        })
        .await?;
    }
    Ok(())
}

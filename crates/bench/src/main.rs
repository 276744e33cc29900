//! `make bench`: the hot paths of jifen, measured on the real local PostgreSQL, RabbitMQ and Redis
//! with a release build. Each scenario prints throughput and latency percentiles.
//!
//! * `members`: members created per second through the gateway (HTTP → gRPC → PostgreSQL +
//!   outbox) at 32 concurrent clients, with p50/p99 latency.
//! * `declarations`: declarations PUT and submitted per second through the gateway at 32
//!   concurrent clients with p50/p99, beside the ceiling of a bare axum + PostgreSQL single-row
//!   insert endpoint at the same concurrency (target: at least 40% of it, p99 under 50 ms).
//! * `evaluations`: ballots cast per second through the gateway (HTTP → gRPC → one PostgreSQL
//!   transaction spending the code and storing the ballot) at 32 concurrent clients, each ballot
//!   with its own code, with p50/p99 latency.
//! * `relay`: events per second through the outbox relay (PostgreSQL → RabbitMQ with publisher
//!   confirms → marked published).

mod cluster;
mod declarations;
mod report;
mod scenarios;

use clap::{Parser, ValueEnum};

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
    /// Events staged for the relay scenario.
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
        let ours = declarations::declarations_through_gateway(cli.clients, cli.requests).await?;
        ours.print();
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
    Ok(())
}

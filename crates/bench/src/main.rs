//! `make bench`: the hot paths of jifen, measured on the real local PostgreSQL, RabbitMQ and Redis
//! with a release build. Each scenario prints throughput and latency percentiles.
//!
//! * `members`: members created per second through the gateway (HTTP → gRPC → PostgreSQL +
//!   outbox) at 32 concurrent clients, with p50/p99 latency.
//! * `evaluations`: ballots cast per second through the gateway (HTTP → gRPC → one PostgreSQL
//!   transaction spending the code and storing the ballot) at 32 concurrent clients, each ballot
//!   with its own code, with p50/p99 latency.
//! * `relay`: events per second through the outbox relay (PostgreSQL → RabbitMQ with publisher
//!   confirms → marked published).

mod cluster;
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

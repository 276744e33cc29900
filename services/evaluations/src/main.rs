//! `jifen-evaluations`: serve (default), `migrate` and exit, or `republish-rounds`.

use clap::{Parser, Subcommand};

/// mimalloc: with it the declaration bench (HTTP/2, protobuf and JSON allocating on every request)
/// ran 14% fewer instructions than with the system allocator (callgrind, docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "jifen-evaluations",
    about = "jifen evaluations service: quarterly mass evaluation rounds, codes, ballots"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve gRPC and the ops endpoints, consume, relay the outbox (the default).
    Serve,
    /// Create the database if needed, apply pending migrations, and exit.
    Migrate,
    /// Stage every closed round of a year again as `evaluations.round.closed.v1` (same state,
    /// same version), for a consumer whose projection predates a field or the rounds; the
    /// running service's relay publishes them.
    RepublishRounds {
        #[arg(long)]
        year: i32,
        /// The organization whose subtree's rounds are republished (default: every round).
        #[arg(long)]
        org: Option<uuid::Uuid>,
    },
    /// Seed the demo city's evaluation rounds (idempotent; docs/decisions/0014-demo-history.md),
    /// and exit.
    SeedDemoHistory(jifen_demo::HistoryArgs),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if let Some(Command::Migrate) = cli.command {
        let core = jifen_platform::settings::CoreSettings::from_env()?;
        let guard = jifen_platform::telemetry::init(jifen_evaluations::SERVICE_NAME, None)?;
        let name =
            jifen_platform::settings::var_or("JIFEN_EVALUATIONS_DATABASE", "jifen_evaluations")?;
        jifen_evaluations::migrate(&core.database_url, &name)
            .await?
            .close()
            .await?;
        tracing::info!(database = %name, "migrations applied");
        guard.shutdown().await;
        return Ok(());
    }
    let settings = jifen_evaluations::Settings::from_env()?;
    if let Some(Command::SeedDemoHistory(args)) = &cli.command {
        let guard = jifen_platform::telemetry::init(jifen_evaluations::SERVICE_NAME, None)?;
        let outcome = jifen_evaluations::demo::seed_history(
            &settings,
            jifen_demo::Manifest::read(&args.manifest)?,
            args.seed,
            args.today(),
            args.concurrency,
            args.connections,
        )
        .await;
        guard.shutdown().await;
        return outcome;
    }
    if let Some(Command::RepublishRounds { year, org }) = cli.command {
        let guard = jifen_platform::telemetry::init(jifen_evaluations::SERVICE_NAME, None)?;
        let staged = jifen_evaluations::republish_rounds(&settings, year, org).await?;
        println!("staged {staged} closed rounds of {year}");
        guard.shutdown().await;
        return Ok(());
    }
    let guard = jifen_platform::telemetry::init(
        jifen_evaluations::SERVICE_NAME,
        settings.otlp_endpoint.as_deref(),
    )?;
    let app = jifen_evaluations::Application::build(settings).await?;
    let outcome = app
        .run_until_stopped(jifen_platform::shutdown::on_signal())
        .await;
    guard.shutdown().await;
    outcome
}

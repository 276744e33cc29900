//! `jifen-declarations`: serve (default), `migrate` and exit, or `remind` once and exit.

use clap::{Parser, Subcommand};

/// mimalloc: with it the declaration bench (HTTP/2, protobuf and JSON allocating on every request)
/// ran 14% fewer instructions than with the system allocator (callgrind, docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "jifen-declarations",
    about = "jifen declarations service: the standard, monthly declarations, branch records"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve gRPC and the ops endpoints, relay the outbox, consume members.* (the default).
    Serve,
    /// Create the database if needed, apply pending migrations, and exit.
    Migrate,
    /// Send the reminders due today (idempotent; for a CronJob), and exit.
    Remind,
    /// Seed the demo city's declarations history (idempotent; docs/decisions/0014-demo-history.md),
    /// and exit.
    SeedDemoHistory(jifen_demo::HistoryArgs),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if let Some(Command::Migrate) = cli.command {
        let core = jifen_platform::settings::CoreSettings::from_env()?;
        let guard = jifen_platform::telemetry::init(jifen_declarations::SERVICE_NAME, None)?;
        let name =
            jifen_platform::settings::var_or("JIFEN_DECLARATIONS_DATABASE", "jifen_declarations")?;
        jifen_declarations::migrate(&core.database_url, &name)
            .await?
            .close()
            .await?;
        tracing::info!(database = %name, "migrations applied");
        guard.shutdown().await;
        return Ok(());
    }
    let settings = jifen_declarations::Settings::from_env()?;
    if let Some(Command::SeedDemoHistory(args)) = &cli.command {
        let guard = jifen_platform::telemetry::init(jifen_declarations::SERVICE_NAME, None)?;
        let outcome = jifen_declarations::demo::seed_history(
            &settings,
            jifen_declarations::demo::Options {
                manifest: jifen_demo::Manifest::read(&args.manifest)?,
                seed: args.seed,
                today: args.today(),
                concurrency: args.concurrency,
                connections: args.connections,
            },
        )
        .await;
        guard.shutdown().await;
        return outcome.map(|_| ());
    }
    let guard = jifen_platform::telemetry::init(
        jifen_declarations::SERVICE_NAME,
        settings.otlp_endpoint.as_deref(),
    )?;
    let app = jifen_declarations::Application::build(settings).await?;
    let outcome = if let Some(Command::Remind) = cli.command {
        app.usecases()
            .send_reminders()
            .await
            .map(|n| tracing::info!(sent = n, "reminders sent"))
            .map_err(anyhow::Error::from)
    } else {
        app.run_until_stopped(jifen_platform::shutdown::on_signal())
            .await
    };
    guard.shutdown().await;
    outcome
}

//! `jifen-members`: serve (default) or `migrate` and exit.

use clap::{Parser, Subcommand};

/// mimalloc: with it the declaration bench (HTTP/2, protobuf and JSON allocating on every request)
/// ran 14% fewer instructions than with the system allocator (callgrind, docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "jifen-members",
    about = "jifen members service: organizations, members, accounts"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve gRPC and the ops endpoints, and relay the outbox (the default).
    Serve,
    /// Create the database if needed, apply pending migrations, and exit.
    Migrate,
    /// Seed the demo city of `make run` (idempotent), and exit.
    SeedDemo,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if let Some(Command::Migrate) = cli.command {
        let core = jifen_platform::settings::CoreSettings::from_env();
        let guard = jifen_platform::telemetry::init(jifen_members::SERVICE_NAME, None)?;
        let name = jifen_platform::settings::var_or("JIFEN_MEMBERS_DATABASE", "jifen_members");
        jifen_members::migrate(&core.database_url, &name)
            .await?
            .close()
            .await?;
        tracing::info!(database = %name, "migrations applied");
        guard.shutdown().await;
        return Ok(());
    }
    let settings = jifen_members::Settings::from_env()?;
    if let Some(Command::SeedDemo) = cli.command {
        let guard = jifen_platform::telemetry::init(jifen_members::SERVICE_NAME, None)?;
        let started = std::time::Instant::now();
        let summary = jifen_members::demo::seed(&settings).await?;
        println!(
            "demo city ready in {:.1}s: root {}, {} organizations and {} members created (demo accounts: password {})",
            started.elapsed().as_secs_f64(),
            summary.root_id,
            summary.organizations_created,
            summary.members_created,
            jifen_members::demo::DEMO_PASSWORD
        );
        guard.shutdown().await;
        return Ok(());
    }
    let guard = jifen_platform::telemetry::init(
        jifen_members::SERVICE_NAME,
        settings.otlp_endpoint.as_deref(),
    )?;
    let app = jifen_members::Application::build(settings).await?;
    let outcome = app
        .run_until_stopped(jifen_platform::shutdown::on_signal())
        .await;
    guard.shutdown().await;
    outcome
}

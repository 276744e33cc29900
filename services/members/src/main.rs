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
    SeedDemo {
        /// The city's size: `full` (5 committees × 8 branches × 25 members), `small` (2 × 2 × 12)
        /// or `<committees>x<branches>x<members>`; each shape has its own marker.
        #[arg(long, default_value = "full", value_parser = jifen_demo::Shape::parse)]
        scale: jifen_demo::Shape,
    },
    /// Write the manifest of the seeded demo city (ids, paths, accounts, secretaries) that the
    /// other services' `seed-demo-history` read, and exit.
    DemoManifest {
        #[arg(long, default_value = "full", value_parser = jifen_demo::Shape::parse)]
        scale: jifen_demo::Shape,
        /// Where to write it (JSON).
        #[arg(long)]
        out: std::path::PathBuf,
    },
    /// Rewrite every phone and ID card stored under a previous key (`JIFEN_PII_PREVIOUS_KEYS`)
    /// under the current one (`JIFEN_PII_KEY`), and exit; fails when some remain.
    RekeyPii {
        /// Members per transaction.
        #[arg(long, default_value_t = 500)]
        batch: u64,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if let Some(Command::Migrate) = cli.command {
        let core = jifen_platform::settings::CoreSettings::from_env()?;
        let guard = jifen_platform::telemetry::init(jifen_members::SERVICE_NAME, None)?;
        let name = jifen_platform::settings::var_or("JIFEN_MEMBERS_DATABASE", "jifen_members")?;
        jifen_members::migrate(&core.database_url, &name)
            .await?
            .close()
            .await?;
        tracing::info!(database = %name, "migrations applied");
        guard.shutdown().await;
        return Ok(());
    }
    let settings = jifen_members::Settings::from_env()?;
    if let Some(Command::DemoManifest { scale, out }) = &cli.command {
        let guard = jifen_platform::telemetry::init(jifen_members::SERVICE_NAME, None)?;
        let manifest = jifen_members::demo::manifest(&settings, *scale).await?;
        std::fs::write(out, serde_json::to_vec_pretty(&manifest)?)?;
        println!(
            "demo manifest of the {} city written to {}",
            manifest.shape,
            out.display()
        );
        guard.shutdown().await;
        return Ok(());
    }
    if let Some(Command::SeedDemo { scale }) = cli.command {
        let guard = jifen_platform::telemetry::init(jifen_members::SERVICE_NAME, None)?;
        let started = std::time::Instant::now();
        let summary = jifen_members::demo::seed_shape(&settings, scale).await?;
        if summary.already_seeded {
            println!(
                "demo city already seeded (marker {}): nothing to do",
                jifen_members::demo::seed_version(scale)
            );
        } else {
            println!(
                "demo city ready in {:.1}s: root {}, {} organizations and {} members created (demo accounts: password {})",
                started.elapsed().as_secs_f64(),
                summary.root_id,
                summary.organizations_created,
                summary.members_created,
                jifen_members::demo::DEMO_PASSWORD
            );
        }
        if !summary.usernames_taken.is_empty() {
            println!(
                "  demo usernames held by other accounts (those demo members have no account): {}",
                summary.usernames_taken.join(", ")
            );
        }
        guard.shutdown().await;
        return Ok(());
    }
    if let Some(Command::RekeyPii { batch }) = cli.command {
        let guard = jifen_platform::telemetry::init(jifen_members::SERVICE_NAME, None)?;
        let summary = jifen_members::rekey_pii(&settings, batch).await?;
        guard.shutdown().await;
        println!(
            "personal data of {} members rewritten under the current key; {} remain",
            summary.rewritten, summary.remaining
        );
        anyhow::ensure!(
            summary.remaining == 0,
            "{} members still hold personal data under another key (locked by a concurrent change, or written by an instance still running with an old key): run rekey-pii again once every instance runs with the new key",
            summary.remaining
        );
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

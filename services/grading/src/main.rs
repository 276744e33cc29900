//! `jifen-grading`: serve (default), `migrate`, the year-end `batch`, `reconcile`,
//! `republish-finals`, or `final-drift`.

use clap::{Parser, Subcommand};
use std::io::IsTerminal as _;
use std::io::Write as _;

/// mimalloc: with it the declaration bench (HTTP/2, protobuf and JSON allocating on every request)
/// ran 14% fewer instructions than with the system allocator (callgrind, docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "jifen-grading",
    about = "jifen grading service: points ledger, yearly grading, appeals, year-end batch"
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
    /// Grade every branch of a subtree for a year (a Kubernetes indexed Job runs one shard per pod).
    Batch {
        #[arg(long)]
        year: i32,
        /// The organization whose subtree is graded.
        #[arg(long)]
        org: uuid::Uuid,
        /// `i/n`: this pod's part (0 <= i < n); the whole subtree when absent.
        #[arg(long)]
        shard: Option<jifen_grading::batch::Shard>,
    },
    /// Compare the ledger projection of a year with the declarations service's own records, and
    /// the quarter results with the evaluations service's closed rounds; exit status 1 on any
    /// difference.
    Reconcile {
        #[arg(long)]
        year: i32,
        /// The organization whose subtree is compared (default: every root organization).
        #[arg(long)]
        org: Option<uuid::Uuid>,
    },
    /// List the members of final gradings whose final total or evaluation points differ from
    /// what their ledger gives now (after a correction of the rules' computation); changes
    /// nothing (docs/decisions/0010-exact-evaluation.md).
    FinalDrift {
        #[arg(long)]
        year: i32,
        /// The organization whose subtree is listed (default: every root organization).
        #[arg(long)]
        org: Option<uuid::Uuid>,
    },
    /// Stage every final grade of a year again as `grading.member_grade.finalized.v1`, for a
    /// consumer created after the finalization; the running service's relay publishes them.
    RepublishFinals {
        #[arg(long)]
        year: i32,
        /// The organization whose subtree is republished (default: every root organization).
        #[arg(long)]
        org: Option<uuid::Uuid>,
    },
    /// Grade, confirm, hear an appeal and finalize last year of the demo city (idempotent;
    /// docs/decisions/0014-demo-history.md), once the projection holds what the declarations and
    /// evaluations steps published; and exit.
    SeedDemoHistory {
        #[command(flatten)]
        args: jifen_demo::HistoryArgs,
        /// How long to wait for the projection, in seconds.
        #[arg(long, default_value_t = 180)]
        wait_secs: u64,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Migrate) => {
            let core = jifen_platform::settings::CoreSettings::from_env()?;
            let guard = jifen_platform::telemetry::init(jifen_grading::SERVICE_NAME, None)?;
            let name = jifen_grading::database_name()?;
            jifen_grading::migrate(&core.database_url, &name)
                .await?
                .close()
                .await?;
            tracing::info!(database = %name, "migrations applied");
            guard.shutdown().await;
            Ok(())
        }
        Some(Command::Batch { year, org, shard }) => batch(year, org, shard).await,
        Some(Command::Reconcile { year, org }) => {
            let clean = reconcile(year, org).await?;
            if !clean {
                std::process::exit(1);
            }
            Ok(())
        }
        Some(Command::RepublishFinals { year, org }) => republish_finals(year, org).await,
        Some(Command::FinalDrift { year, org }) => final_drift(year, org).await,
        Some(Command::SeedDemoHistory { args, wait_secs }) => {
            let settings = jifen_grading::Settings::from_env()?;
            let guard = jifen_platform::telemetry::init(jifen_grading::SERVICE_NAME, None)?;
            let outcome = jifen_grading::demo::seed_history(
                &settings,
                jifen_demo::Manifest::read(&args.manifest)?,
                args.seed,
                args.today(),
                std::time::Duration::from_secs(wait_secs),
            )
            .await;
            guard.shutdown().await;
            outcome
        }
        Some(Command::Serve) | None => {
            let settings = jifen_grading::Settings::from_env()?;
            let guard = jifen_platform::telemetry::init(
                jifen_grading::SERVICE_NAME,
                settings.otlp_endpoint.as_deref(),
            )?;
            let app = jifen_grading::Application::build(settings).await?;
            let outcome = app
                .run_until_stopped(jifen_platform::shutdown::on_signal())
                .await;
            guard.shutdown().await;
            outcome
        }
    }
}

/// The batch: a progress line on a terminal, structured progress logs otherwise.
async fn batch(
    year: i32,
    org: uuid::Uuid,
    shard: Option<jifen_grading::batch::Shard>,
) -> anyhow::Result<()> {
    let (_, guard, db) = command_start().await?;
    let grading = jifen_grading::usecases::Grading::new(db, jifen_platform::clock::Clock::system());
    let shard = shard.unwrap_or(jifen_grading::batch::Shard::ALL);
    let terminal = std::io::stderr().is_terminal();
    let started = std::time::Instant::now();
    let mut last_log = std::time::Instant::now();
    let mut progress = |done: u64, total: u64| {
        if terminal {
            let mut err = std::io::stderr();
            let _ = write!(
                err,
                "\r定级 grading {done}/{total} branches ({:.0?})",
                started.elapsed()
            );
            let _ = err.flush();
        } else if done == total || last_log.elapsed() >= std::time::Duration::from_secs(5) {
            last_log = std::time::Instant::now();
            tracing::info!(
                done,
                total,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "batch progress"
            );
        }
    };
    let outcome = jifen_grading::batch::run(&grading, org, year, shard, &mut progress).await;
    if terminal {
        eprintln!();
    }
    let report = outcome.map_err(|e| anyhow::anyhow!("batch failed: {e}"))?;
    tracing::info!(
        year,
        %org,
        shard = %format!("{}/{}", shard.index, shard.count),
        branches = report.branches,
        stored = report.stored,
        unchanged = report.unchanged,
        settled = report.settled,
        elapsed_ms = started.elapsed().as_millis() as u64,
        seconds = started.elapsed().as_secs_f64(),
        "batch done"
    );
    guard.shutdown().await;
    Ok(())
}

/// The reconciliation; answers whether the projection matched everywhere.
async fn reconcile(year: i32, org: Option<uuid::Uuid>) -> anyhow::Result<bool> {
    let (core, guard, db) = command_start().await?;
    let signer = jifen_platform::auth::TokenSigner::from_dir(
        std::path::Path::new(&core.jwt_keys_dir),
        &jifen_platform::settings::var_or("JIFEN_JWT_SIGNING_KID", "dev")?,
    )?;
    let declarations =
        jifen_platform::settings::var_or("JIFEN_DECLARATIONS_URL", "http://127.0.0.1:15052")?;
    let evaluations =
        jifen_platform::settings::var_or("JIFEN_EVALUATIONS_URL", "http://127.0.0.1:15053")?;
    let sources = jifen_grading::reconcile::Sources {
        declarations: &declarations,
        evaluations: &evaluations,
    };
    let orgs = match org {
        Some(id) => vec![id],
        None => jifen_grading::store::projection::roots(&db).await?,
    };
    let grading = jifen_grading::usecases::Grading::new(db, jifen_platform::clock::Clock::system());
    let mut clean = true;
    for org in orgs {
        let outcome = jifen_grading::reconcile::run(&grading, &sources, &signer, org, year).await?;
        clean &= outcome.is_clean();
        for d in &outcome.differences {
            println!(
                "DIFFERENCE member {}: projection (base, bonus, deductions) {:?} vs truth {:?}; missing {:?}; extra {:?}",
                d.member_id, d.totals.0, d.totals.1, d.missing, d.extra
            );
        }
        for d in &outcome.quarter_differences {
            println!(
                "QUARTER DIFFERENCE member {} round {}: projection {:?} vs evaluations {:?}",
                d.member_id, d.round_id, d.projection, d.truth
            );
        }
        println!(
            "reconciled {year} under {org}: {} members, {} entries, {} differences; {} quarter results, {} quarter differences",
            outcome.members,
            outcome.entries,
            outcome.differences.len(),
            outcome.quarters,
            outcome.quarter_differences.len()
        );
    }
    guard.shutdown().await;
    Ok(clean)
}

/// `republish-finals`: stages the events in the outbox; a running grading service publishes them.
async fn republish_finals(year: i32, org: Option<uuid::Uuid>) -> anyhow::Result<()> {
    let (_, guard, db) = command_start().await?;
    let orgs = match org {
        Some(id) => vec![id],
        None => jifen_grading::store::projection::roots(&db).await?,
    };
    if orgs.is_empty() {
        println!("the grading service knows no organization yet: nothing to republish");
    }
    let grading = jifen_grading::usecases::Grading::new(db, jifen_platform::clock::Clock::system());
    let actor = format!("cli:{}", whoami());
    for org in orgs {
        let staged = grading
            .republish_finals(&actor, org, year)
            .await
            .map_err(|e| {
                anyhow::anyhow!("republishing the final grades of {year} under {org}: {e}")
            })?;
        println!("staged {staged} final grades of {year} under {org}");
    }
    guard.shutdown().await;
    Ok(())
}

/// `final-drift`: one line per member whose final points differ from the ledger's, in points.
async fn final_drift(year: i32, org: Option<uuid::Uuid>) -> anyhow::Result<()> {
    let (_, guard, db) = command_start().await?;
    let orgs = match org {
        Some(id) => vec![id],
        None => jifen_grading::store::projection::roots(&db).await?,
    };
    let grading = jifen_grading::usecases::Grading::new(db, jifen_platform::clock::Clock::system());
    let points = |tenths: i32| jifen_standard::DeciPoints::from_tenths(tenths).to_string();
    for org in orgs {
        let report = grading
            .final_drift(org, year)
            .await
            .map_err(|e| anyhow::anyhow!("listing the final drift of {year} under {org}: {e}"))?;
        for d in &report.drifts {
            println!(
                "DRIFT member {} branch {}: final {} (evaluation {}, grade {}), ledger now {} (evaluation {})",
                d.member_id,
                d.branch_id,
                points(d.final_total),
                points(d.final_evaluation),
                d.grade,
                points(d.ledger_total),
                points(d.ledger_evaluation)
            );
        }
        println!(
            "{} members with a final grade of {year} under {org}; {} differ from their ledger now",
            report.finals,
            report.drifts.len()
        );
    }
    guard.shutdown().await;
    Ok(())
}

/// What every one-off command starts with: the settings, telemetry (logs only) and the pool
/// (`jifen_grading::open_for_command`).
async fn command_start() -> anyhow::Result<(
    jifen_platform::settings::CoreSettings,
    jifen_platform::telemetry::TelemetryGuard,
    sea_orm::DatabaseConnection,
)> {
    let core = jifen_platform::settings::CoreSettings::from_env()?;
    let guard = jifen_platform::telemetry::init(jifen_grading::SERVICE_NAME, None)?;
    let db = jifen_grading::open_for_command(&core).await?;
    Ok((core, guard, db))
}

/// The operator's user name for the audit line (`$USER`, else `unknown`).
fn whoami() -> String {
    std::env::var("USER").unwrap_or_else(|_| "unknown".to_owned())
}

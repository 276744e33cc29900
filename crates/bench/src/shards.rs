//! `jifen-bench grading-shards`: the year-end batch over one city run as 1, 2 and 4 shard
//! processes started together (`jifen-grading batch --shard i/n`, separate OS processes, as the
//! pods of a Kubernetes indexed Job), each time over the same database.
//!
//! The city is the `grading` scenario's (branches of 40 members, 60 ledger lines a member), seeded
//! once into the database `jifen_bench_shards_<members>` and reused by later runs (`--fresh`
//! seeds again; `DROP DATABASE` it to reclaim the space). Before each run the batch's own tables
//! (`gradings`, `grading_members`, `audit`) are emptied, so every run grades the whole city from
//! nothing. Printed per run: wall time from the first start to the last exit, members per second,
//! each process's wall time and peak resident memory (VmHWM), and the CPU time the processes and
//! the PostgreSQL server spent.

use crate::grading::{jifen_grading_migrate, seed};
use sea_orm::{ConnectionTrait as _, DatabaseConnection, DbBackend, Statement};
use std::time::{Duration, Instant};

/// What one run with `shards` processes measured.
pub struct ShardRun {
    pub members: u64,
    pub shards: u32,
    pub wall: Duration,
    /// Per process: wall time and peak resident memory (KiB).
    pub processes: Vec<(Duration, u64)>,
    /// CPU seconds of the batch processes (user + system) and of every PostgreSQL backend.
    pub cpu_batch: f64,
    pub cpu_postgres: f64,
    /// How many branches more than one process graded, and how many none did.
    pub graded_twice: i64,
    pub ungraded: i64,
}

pub(crate) async fn scalar(db: &DatabaseConnection, sql: &str) -> anyhow::Result<i64> {
    Ok(db
        .query_one_raw(Statement::from_string(DbBackend::Postgres, sql))
        .await?
        .and_then(|r| r.try_get::<i64>("", "n").ok())
        .unwrap_or(0))
}

async fn exec(db: &DatabaseConnection, sql: &str) -> anyhow::Result<()> {
    db.execute_raw(Statement::from_string(DbBackend::Postgres, sql))
        .await?;
    Ok(())
}

/// The city's database, seeded unless an earlier run left it complete (the `dashboard` scenario
/// reads the same city).
pub(crate) async fn city(
    members: u64,
    fresh: bool,
) -> anyhow::Result<(String, String, DatabaseConnection)> {
    let server = jifen_testkit::database_server_url();
    let name = format!("jifen_bench_shards_{members}");
    let admin =
        jifen_platform::db::connect(&jifen_platform::db::database_url(&server, "postgres"), 1)
            .await?;
    let exists = scalar(
        &admin,
        &format!("SELECT count(*) AS n FROM pg_database WHERE datname = '{name}'"),
    )
    .await?
        > 0;
    if exists && !fresh {
        let db = jifen_grading_migrate(&server, &name).await?;
        let seeded = scalar(
            &db,
            "SELECT coalesce((SELECT members FROM bench_seeded), -1) AS n \
             FROM (SELECT to_regclass('bench_seeded') IS NOT NULL AS ok) t",
        )
        .await
        .unwrap_or(-1);
        if u64::try_from(seeded).ok() == Some(members) {
            println!("grading-shards: reusing the city in {name}");
            return Ok((server, name, db));
        }
        db.close().await?;
    }
    if exists {
        exec(&admin, &format!("DROP DATABASE \"{name}\" WITH (FORCE)")).await?;
    }
    exec(&admin, &format!("CREATE DATABASE \"{name}\"")).await?;
    admin.close().await?;
    let db = jifen_grading_migrate(&server, &name).await?;
    let started = Instant::now();
    seed(&db, members).await?;
    exec(
        &db,
        &format!("CREATE TABLE bench_seeded AS SELECT {members}::bigint AS members"),
    )
    .await?;
    println!(
        "grading-shards: seeded {members} members into {name} in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    Ok((server, name, db))
}

/// The children's CPU time (user + system, waited for) of this process, in seconds.
fn children_cpu() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    let Some(close) = stat.rfind(')') else {
        return 0.0;
    };
    let fields: Vec<&str> = stat[close + 2..].split(' ').collect();
    // cutime and cstime: fields 16 and 17 of stat(5), 13 and 14 after the command.
    fields.get(13..15).map_or(0.0, |f| {
        f.iter().filter_map(|v| v.parse::<f64>().ok()).sum::<f64>()
    }) / 100.0
}

/// CPU seconds of the PostgreSQL server so far: every `postgres` process's own time and its
/// waited-for children's (the postmaster's children are the backends that have exited, such as
/// a finished batch's). Other clients' backends count too: run on a quiet server.
fn postgres_cpu() -> f64 {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0.0;
    };
    let mut total = 0.0;
    for entry in entries.flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        if !stat[open + 1..close].starts_with("postgres") {
            continue;
        }
        let fields: Vec<&str> = stat[close + 2..].split(' ').collect();
        // utime, stime, cutime, cstime: fields 14 to 17 of stat(5).
        total += fields.get(11..15).map_or(0.0, |f| {
            f.iter().filter_map(|v| v.parse::<f64>().ok()).sum::<f64>()
        }) / 100.0;
    }
    total
}

fn peak_kib(pid: u32) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
}

/// Runs `shards` batch processes together over the city and checks that they graded it whole.
async fn run(
    server: &str,
    name: &str,
    db: &DatabaseConnection,
    members: u64,
    shards: u32,
) -> anyhow::Result<ShardRun> {
    exec(db, "TRUNCATE gradings, grading_members, audit").await?;
    let binary = std::env::current_exe()?
        .parent()
        .ok_or_else(|| anyhow::anyhow!("no directory for the bench binary"))?
        .join("jifen-grading");
    let cpu_before = (children_cpu(), postgres_cpu());
    let started = Instant::now();
    let mut children = Vec::new();
    for index in 0..shards {
        let child = tokio::process::Command::new(&binary)
            .args([
                "batch",
                "--year",
                "2026",
                "--org",
                "00000000-0000-7000-8000-000000000000",
                "--shard",
                &format!("{index}/{shards}"),
            ])
            .env("JIFEN_DATABASE_URL", server)
            .env("JIFEN_GRADING_DATABASE", name)
            .env("RUST_LOG", "warn")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| anyhow::anyhow!("starting {}: {e}", binary.display()))?;
        let pid = child.id().unwrap_or(0);
        children.push((child, pid, 0u64, None::<Duration>));
    }
    while children.iter().any(|c| c.3.is_none()) {
        for (child, pid, peak, done) in &mut children {
            if done.is_some() {
                continue;
            }
            if let Some(kib) = peak_kib(*pid) {
                *peak = (*peak).max(kib);
            }
            if let Some(status) = child.try_wait()? {
                anyhow::ensure!(status.success(), "jifen-grading batch failed: {status}");
                *done = Some(started.elapsed());
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let wall = started.elapsed();
    let cpu_batch = children_cpu() - cpu_before.0;
    let cpu_postgres = postgres_cpu() - cpu_before.1;

    let graded = scalar(db, "SELECT count(*) AS n FROM grading_members").await?;
    anyhow::ensure!(
        u64::try_from(graded).ok() == Some(members),
        "{shards} shards graded {graded} of {members} members"
    );
    let graded_twice = scalar(
        db,
        "SELECT count(*) AS n FROM (SELECT subject FROM audit WHERE action = 'compute' \
         GROUP BY subject HAVING count(*) > 1) t",
    )
    .await?;
    let ungraded = scalar(
        db,
        "SELECT count(*) AS n FROM organizations o WHERE kind = 'branch' AND NOT EXISTS \
         (SELECT 1 FROM gradings g WHERE g.branch_id = o.id AND g.year = 2026)",
    )
    .await?;
    Ok(ShardRun {
        members,
        shards,
        wall,
        processes: children
            .iter()
            .map(|(_, _, peak, done)| (done.unwrap_or(wall), *peak))
            .collect(),
        cpu_batch,
        cpu_postgres,
        graded_twice,
        ungraded,
    })
}

/// Seeds (or reuses) the city of `members` and runs the batch with each shard count.
pub async fn shard_runs(
    members: u64,
    counts: &[u32],
    fresh: bool,
) -> anyhow::Result<Vec<ShardRun>> {
    let (server, name, db) = city(members, fresh).await?;
    let mut runs = Vec::new();
    for &shards in counts {
        let r = run(&server, &name, &db, members, shards).await?;
        r.print();
        runs.push(r);
    }
    db.close().await?;
    Ok(runs)
}

impl ShardRun {
    pub fn print(&self) {
        let slowest = self.processes.iter().map(|p| p.0).max().unwrap_or_default();
        let peak = self.processes.iter().map(|p| p.1).max().unwrap_or(0);
        println!(
            "{:<34} {:>9.2} s  ({:.0} members/s; {} processes, slowest {:.2} s, peak RSS {:.0} MiB each at most; \
             CPU {:.1} s batch + {:.1} s PostgreSQL; branches graded twice {}, by none {})",
            format!(
                "  batch, {} shard(s), {} members",
                self.shards, self.members
            ),
            self.wall.as_secs_f64(),
            self.members as f64 / self.wall.as_secs_f64(),
            self.processes.len(),
            slowest.as_secs_f64(),
            peak as f64 / 1024.0,
            self.cpu_batch,
            self.cpu_postgres,
            self.graded_twice,
            self.ungraded,
        );
        for (i, (wall, peak)) in self.processes.iter().enumerate() {
            println!(
                "{:<34} {:>9.2} s  peak RSS {:.0} MiB",
                format!("    --shard {i}/{}", self.shards),
                wall.as_secs_f64(),
                *peak as f64 / 1024.0
            );
        }
    }
}

//! The year-end batch (`jifen-grading batch`) over a whole city, beside the ceiling of a bare SQL
//! `GROUP BY member` sum over the same ledger lines.
//!
//! The seed bulk-loads the grading projection directly (the issue allows it): one city, branches
//! of 40 members, each member with 12 months × 5 approved lines (60 lines; 18 million for 300,000
//! members) and four valid quarters, plus the per-member packed year (`member_years`) the service keeps
//! beside the ledger in the same transaction as each event. The batch runs as the release binary in a child process, so
//! its peak resident memory (VmHWM) is its own. Target: within 3× of the ceiling's time, under
//! 1 GiB, growing linearly (100k and 300k members).

use sea_orm::{ConnectionTrait as _, DatabaseConnection, DbBackend, Statement};
use std::time::{Duration, Instant};

const MEMBERS_PER_BRANCH: u64 = 40;

/// What one size measured.
pub struct GradingBench {
    pub members: u64,
    pub lines: u64,
    pub seed: Duration,
    pub ceiling: Duration,
    pub batch: Duration,
    pub peak_rss_kib: u64,
}

pub(crate) async fn exec(db: &DatabaseConnection, sql: &str) -> anyhow::Result<()> {
    db.execute_raw(Statement::from_string(DbBackend::Postgres, sql))
        .await?;
    Ok(())
}

/// `'<prefix>-0000-7000-8000-<i as 12 hex digits>'::uuid` for integer `i` (SQL expression).
pub(crate) fn uuid_sql(prefix: &str, i: &str) -> String {
    format!("('{prefix}-0000-7000-8000-' || lpad(to_hex({i}), 12, '0'))::uuid")
}

/// Loads a city of `members` members into the grading database `db`.
pub async fn seed(db: &DatabaseConnection, members: u64) -> anyhow::Result<()> {
    let branches = members.div_ceil(MEMBERS_PER_BRANCH);
    let root = uuid_sql("00000000", "0");
    let branch = uuid_sql("00000001", "b");
    let member = uuid_sql("00000002", "i");
    let member_branch = uuid_sql("00000001", &format!("i / {MEMBERS_PER_BRANCH}"));
    let reference = uuid_sql("00000003", "i * 12 + m");
    exec(db, "SET synchronous_commit = off").await?;
    exec(
        db,
        &format!(
            "INSERT INTO organizations (id, parent_id, name, kind, unit_type, path, version) \
             VALUES ({root}, NULL, '市委', 'committee', 'other', '/' || {root} || '/', 1)"
        ),
    )
    .await?;
    exec(
        db,
        &format!(
            "INSERT INTO organizations (id, parent_id, name, kind, unit_type, path, version) \
             SELECT {branch}, {root}, '支部' || b, 'branch', 'other', \
             '/' || {root} || '/' || {branch} || '/', 1 FROM generate_series(0, {}) b",
            branches - 1
        ),
    )
    .await?;
    exec(
        db,
        &format!(
            "INSERT INTO members (id, org_id, org_path, name, category, status, exempt, sanctions, version) \
             SELECT {member}, {member_branch}, '/' || {root} || '/' || {member_branch} || '/', \
             '党员' || i, CASE WHEN i % 10 = 9 THEN 'probationary' ELSE 'full' END, 'active', false, '[]', 1 \
             FROM generate_series(0, {}) i",
            members - 1
        ),
    )
    .await?;
    // The ledger without its indexes while loading, then indexed once.
    exec(
        db,
        "ALTER TABLE ledger_entries DROP CONSTRAINT ledger_entries_pkey",
    )
    .await?;
    exec(db, "DROP INDEX ledger_entries_ref_idx").await?;
    exec(
        db,
        &format!(
            "INSERT INTO ledger_entries (member_id, year, month, source, ref, line, item_code, points, note) \
             SELECT {member}, 2026, m, 'declaration', {reference}, l, \
             (ARRAY['P02', 'P03', 'F01', 'F02', 'B06'])[l + 1], 10 * (1 + (i + m + l) % 2), '' \
             FROM generate_series(0, {}) i, generate_series(1, 12) m, generate_series(0, 4) l",
            members - 1
        ),
    )
    .await?;
    exec(
        db,
        "ALTER TABLE ledger_entries ADD PRIMARY KEY (member_id, year, ref, line)",
    )
    .await?;
    exec(
        db,
        "CREATE INDEX ledger_entries_ref_idx ON ledger_entries (ref)",
    )
    .await?;
    exec(
        db,
        &format!(
            "INSERT INTO quarter_results (member_id, round_id, year, quarter, closed_at, score, ballots, poor_ballots, valid, score_total) \
             SELECT {member}, {}, 2026, q, '2026-12-28T00:00:00Z', 800 + (i % 200), 8, i % 3, true, 8 * (800 + (i % 200)) - (i % 5) \
             FROM generate_series(0, {}) i, generate_series(1, 4) q",
            uuid_sql("00000004", &format!("(i / {MEMBERS_PER_BRANCH}) * 4 + q")),
            members - 1
        ),
    )
    .await?;
    // The per-member packed year the service keeps beside the ledger (as its event handler
    // writes it, with the same SQL functions).
    exec(
        db,
        "INSERT INTO member_years (member_id, year, entries, quarters) \
         SELECT e.member_id, 2026, e.entries, q.quarters FROM \
         (SELECT member_id, string_agg(member_year_entry(month, source = 'branch', points, \
          item_code), '' ORDER BY ref, line) AS entries \
          FROM ledger_entries WHERE year = 2026 GROUP BY member_id) e JOIN \
         (SELECT member_id, string_agg(member_year_quarter(quarter, closed_at, round_id, score, \
          ballots, poor_ballots, valid, score_total), '' ORDER BY round_id) AS quarters \
          FROM quarter_results WHERE year = 2026 GROUP BY member_id) q USING (member_id)",
    )
    .await?;
    exec(db, "VACUUM ANALYZE").await?;
    Ok(())
}

/// Seeds, times the ceiling and the batch for a city of `members`.
pub async fn batch_vs_ceiling(members: u64) -> anyhow::Result<GradingBench> {
    let database = jifen_testkit::fresh_database("bench_grading").await?;
    let db = jifen_grading_migrate(&database.server_url, &database.name).await?;
    let started = Instant::now();
    seed(&db, members).await?;
    let seeded = started.elapsed();

    let started = Instant::now();
    let sums = db
        .query_all_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT member_id, sum(points) FROM ledger_entries WHERE year = 2026 GROUP BY member_id",
        ))
        .await?;
    let ceiling = started.elapsed();
    anyhow::ensure!(
        sums.len() as u64 == members,
        "the ceiling saw {} members",
        sums.len()
    );

    let binary = std::env::current_exe()?
        .parent()
        .ok_or_else(|| anyhow::anyhow!("no directory for the bench binary"))?
        .join("jifen-grading");
    let started = Instant::now();
    let mut child = tokio::process::Command::new(&binary)
        .args([
            "batch",
            "--year",
            "2026",
            "--org",
            "00000000-0000-7000-8000-000000000000",
        ])
        .env("JIFEN_DATABASE_URL", &database.server_url)
        .env("JIFEN_GRADING_DATABASE", &database.name)
        .env("RUST_LOG", "warn")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .spawn()
        .map_err(|e| anyhow::anyhow!("starting {}: {e}", binary.display()))?;
    let pid = child.id().unwrap_or(0);
    let mut peak = 0;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/status"))
            && let Some(kib) = text
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        {
            peak = peak.max(kib);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let batch = started.elapsed();
    anyhow::ensure!(status.success(), "jifen-grading batch failed: {status}");
    let graded = db
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT count(*) AS n FROM grading_members",
        ))
        .await?
        .and_then(|r| r.try_get::<i64>("", "n").ok())
        .unwrap_or(0);
    anyhow::ensure!(
        graded as u64 == members,
        "the batch graded {graded} of {members} members"
    );
    db.close().await?;
    Ok(GradingBench {
        members,
        lines: members * 60,
        seed: seeded,
        ceiling,
        batch,
        peak_rss_kib: peak,
    })
}

pub async fn jifen_grading_migrate(server: &str, name: &str) -> anyhow::Result<DatabaseConnection> {
    use sea_orm_migration::MigratorTrait as _;
    let db =
        jifen_platform::db::connect(&jifen_platform::db::database_url(server, name), 4).await?;
    jifen_migrations::GradingMigrator::up(&db, None).await?;
    Ok(db)
}

impl GradingBench {
    pub fn print(&self) {
        println!(
            "{:<34} {:>9} members {:>11} lines  seed {:>6.1} s",
            "grading city",
            self.members,
            self.lines,
            self.seed.as_secs_f64()
        );
        println!(
            "{:<34} {:>9.2} s",
            "  ceiling: SQL GROUP BY member",
            self.ceiling.as_secs_f64()
        );
        println!(
            "{:<34} {:>9.2} s  ({:.1}× the ceiling, target ≤ 3×; {:.0} members/s; peak RSS {:.0} MiB, target < 1024)",
            "  jifen-grading batch",
            self.batch.as_secs_f64(),
            self.batch.as_secs_f64() / self.ceiling.as_secs_f64(),
            self.members as f64 / self.batch.as_secs_f64(),
            self.peak_rss_kib as f64 / 1024.0
        );
    }
}

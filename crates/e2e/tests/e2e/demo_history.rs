//! `make run`'s history (docs/decisions/0014-demo-history.md) on the small city: the seeding
//! steps run twice as `make run` runs them; last year is final with every grade, this year has
//! participation every month, the ledger export has rows, and the second run changes no count
//! (everything read through the gateway).

use crate::cluster::{ADMIN_PASSWORD, Cluster};
use calamine::Reader as _;
use chrono::Datelike as _;
use std::collections::BTreeMap;

/// Runs one seeding command and fails with its output when it fails.
fn check(step: &str, out: &std::process::Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{step} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// The whole seeding of `make run` (scripts/run.sh), on the small city.
async fn seed(cluster: &Cluster, manifest: &str) -> String {
    let mut log = String::new();
    log += &check(
        "seed-demo",
        &cluster
            .members_command(&["seed-demo", "--scale", "small"])
            .await,
    );
    log += &check(
        "demo-manifest",
        &cluster
            .members_command(&["demo-manifest", "--scale", "small", "--out", manifest])
            .await,
    );
    let history = ["seed-demo-history", "--manifest", manifest];
    let (declarations, evaluations) = tokio::join!(
        cluster.declarations_command(&history),
        cluster.evaluations_command(&history)
    );
    log += &check("declarations history", &declarations);
    log += &check("evaluations history", &evaluations);
    log += &check(
        "grading history",
        &cluster
            .grading_command(&[
                "seed-demo-history",
                "--manifest",
                manifest,
                "--wait-secs",
                "150",
            ])
            .await,
    );
    log
}

/// Every item of a paged listing.
async fn all(cluster: &Cluster, token: &str, path: &str) -> Vec<serde_json::Value> {
    let mut items = Vec::new();
    let mut page_token = String::new();
    let sep = if path.contains('?') { '&' } else { '?' };
    loop {
        let (status, body) = cluster
            .get(
                token,
                &format!("{path}{sep}page_size=200&page_token={page_token}"),
            )
            .await;
        assert_eq!(status, 200, "{path}: {body}");
        items.extend(body["items"].as_array().unwrap().iter().cloned());
        page_token = body["next_page_token"].as_str().unwrap_or("").to_owned();
        if page_token.is_empty() {
            return items;
        }
    }
}

/// What the history holds, counted through the API.
#[derive(Debug, PartialEq, Eq)]
struct Counts {
    /// Declarations by month and status.
    declarations: BTreeMap<String, BTreeMap<String, usize>>,
    ledger_entries: usize,
    ballots: i64,
    rounds: usize,
    grades: BTreeMap<String, usize>,
}

async fn counts(
    cluster: &Cluster,
    admin: &str,
    root: &str,
    branches: &[String],
    members: &[String],
    months: &[String],
    last_year: i32,
) -> Counts {
    let mut declarations = BTreeMap::new();
    for month in months {
        let mut by_status: BTreeMap<String, usize> = BTreeMap::new();
        for d in all(
            cluster,
            admin,
            &format!("/api/v1/orgs/{root}/declarations?month={month}"),
        )
        .await
        {
            *by_status
                .entry(d["status"].as_str().unwrap().to_owned())
                .or_default() += 1;
        }
        declarations.insert(month.clone(), by_status);
    }
    let mut ledger_entries = 0;
    for m in members {
        let (status, ledger) = cluster
            .get(
                admin,
                &format!("/api/v1/members/{m}/ledger?year={last_year}"),
            )
            .await;
        assert_eq!(status, 200, "{ledger}");
        ledger_entries += ledger["entries"].as_array().unwrap().len();
    }
    let mut ballots = 0;
    let mut rounds = 0;
    for b in branches {
        for r in all(
            cluster,
            admin,
            &format!("/api/v1/orgs/{b}/evaluation-rounds"),
        )
        .await
        {
            assert_eq!(r["status"], "closed", "{r}");
            ballots += r["ballots"].as_i64().unwrap();
            rounds += 1;
        }
    }
    let (status, grading) = cluster
        .get(admin, &format!("/api/v1/orgs/{root}/gradings/{last_year}"))
        .await;
    assert_eq!(status, 200, "{grading}");
    assert_eq!(grading["status"], "final", "{grading}");
    let mut grades = BTreeMap::new();
    for m in grading["members"].as_array().unwrap() {
        *grades
            .entry(m["grade"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    Counts {
        declarations,
        ledger_entries,
        ballots,
        rounds,
        grades,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_demo_history_is_seeded_once_graded_final_and_lived_this_year() {
    let started = std::time::Instant::now();
    // The dashboard uncached: the test reads the figures as grading holds them.
    let cluster =
        Cluster::start_with("e2ehist", &[("JIFEN_DASHBOARD_CACHE_TTL_SECS", "0".into())]).await;
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("manifest.json").display().to_string();
    let first_log = seed(&cluster, &manifest).await;
    eprintln!(
        "seeded in {:.1}s:\n{first_log}",
        started.elapsed().as_secs_f64()
    );
    assert!(
        first_log.contains("declarations history ready"),
        "{first_log}"
    );

    let admin = cluster.login("admin", ADMIN_PASSWORD).await;
    let (_, me) = cluster.get(&admin, "/api/v1/me").await;
    let root = me["roles"][0]["org_id"].as_str().unwrap().to_owned();
    let mut branches = Vec::new();
    for c in all(&cluster, &admin, &format!("/api/v1/orgs/{root}/children")).await {
        for b in all(
            &cluster,
            &admin,
            &format!("/api/v1/orgs/{}/children", c["id"].as_str().unwrap()),
        )
        .await
        {
            branches.push(b["id"].as_str().unwrap().to_owned());
        }
    }
    assert_eq!(branches.len(), 4);
    let members: Vec<String> = all(
        &cluster,
        &admin,
        &format!("/api/v1/orgs/{root}/members?recursive=true"),
    )
    .await
    .iter()
    .map(|m| m["id"].as_str().unwrap().to_owned())
    .collect();
    assert_eq!(members.len(), 48);

    let today = (chrono::Utc::now() + chrono::Duration::hours(8)).date_naive();
    let (this_year, last_year) = (today.year(), today.year() - 1);
    let months: Vec<String> = (1..=12)
        .map(|m| format!("{last_year}-{m:02}"))
        .chain((1..=today.month()).map(|m| format!("{this_year}-{m:02}")))
        .collect();

    // The seeding ends when the services hold the history; grading's projection of this
    // year's events follows (the grading step waits only for last year's). As `make run`'s
    // dashboard fills in: this year's figures come, then stop changing (two reads a second
    // apart alike: the backlog is applied), with participation every month up to now.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let mut previous = None;
    loop {
        let (status, trend) = cluster
            .get(
                &admin,
                &format!("/api/v1/dashboard/orgs/{root}/trend?year={this_year}"),
            )
            .await;
        assert_eq!(status, 200, "{trend}");
        if previous.as_ref() == Some(&trend) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "this year's dashboard still changing after 120 s: {trend}"
        );
        previous = Some(trend);
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
    for m in 1..=today.month() {
        let month = format!("{this_year}-{m:02}");
        let (status, board) = cluster
            .get(
                &admin,
                &format!("/api/v1/dashboard/orgs/{root}?month={month}"),
            )
            .await;
        assert_eq!(status, 200, "{board}");
        assert!(
            board["participation_rate"].as_f64().unwrap() > 0.0,
            "{month}: {board}"
        );
    }

    let first = counts(
        &cluster, &admin, &root, &branches, &members, &months, last_year,
    )
    .await;
    for g in [
        "excellent",
        "qualified",
        "basically_qualified",
        "unqualified",
    ] {
        assert!(
            first.grades.get(g).copied().unwrap_or(0) > 0,
            "no {g}: {first:?}"
        );
    }
    assert_eq!(first.grades.values().sum::<usize>(), 48, "{first:?}");
    let last_year_statuses: BTreeMap<&str, usize> = first
        .declarations
        .iter()
        .filter(|(m, _)| m.starts_with(&last_year.to_string()))
        .flat_map(|(_, s)| s.iter())
        .fold(BTreeMap::new(), |mut acc, (s, n)| {
            *acc.entry(s.as_str()).or_default() += n;
            acc
        });
    assert!(
        last_year_statuses["approved"] > 400,
        "{last_year_statuses:?}"
    );
    assert!(
        !last_year_statuses.contains_key("submitted"),
        "{last_year_statuses:?}"
    );
    let current = format!("{this_year}-{:02}", today.month());
    assert!(
        first.declarations[&current]
            .get("submitted")
            .copied()
            .unwrap_or(0)
            > 0,
        "the current month waits for review: {:?}",
        first.declarations[&current]
    );
    assert!(first.ledger_entries > 1000, "{first:?}");

    // The ledger export of last year has a row per member.
    let res = cluster
        .http
        .get(format!(
            "{}/api/v1/orgs/{root}/exports/ledger.xlsx?year={last_year}",
            cluster.base
        ))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let bytes = res.bytes().await.unwrap().to_vec();
    let mut workbook: calamine::Xlsx<_> =
        calamine::open_workbook_from_rs(std::io::Cursor::new(bytes)).unwrap();
    let sheet = workbook.sheet_names()[0].clone();
    let rows = workbook.worksheet_range(&sheet).unwrap().rows().count();
    assert!(rows > 48, "{rows} rows");

    // The second run adds nothing.
    let second_log = seed(&cluster, &manifest).await;
    eprintln!("seeded again at {:.1}s", started.elapsed().as_secs_f64());
    for step in ["declarations", "evaluations", "grading"] {
        assert!(
            second_log.contains(&format!("{step} history already seeded")),
            "{second_log}"
        );
    }
    let second = counts(
        &cluster, &admin, &root, &branches, &members, &months, last_year,
    )
    .await;
    assert_eq!(first, second);
}

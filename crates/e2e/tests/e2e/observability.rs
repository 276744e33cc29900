//! Observability of the whole cluster, on one cluster (one start for both checks):
//!
//! 1. one trace across services: a declaration approved through the gateway is one trace from
//!    the gateway's HTTP span through the declarations service's gRPC span to the grading
//!    service's consumption of the event, as exported over OTLP (each span under its service's
//!    `service.name`), and the JSON log lines of those requests carry the same `trace_id`;
//! 2. every service's `/metrics`, after that traffic, has the families the dashboards and alerts
//!    use and passes `promtool check metrics` without a single lint.

use crate::cluster::{ADMIN_PASSWORD, Cluster, eventually};
use crate::otlp::{OtlpReceiver, ReceivedSpan};
use std::io::Write as _;
use std::time::{Duration, Instant};

/// The current month in Shanghai, `YYYY-MM`.
fn this_month() -> String {
    (chrono::Utc::now() + chrono::Duration::hours(8))
        .format("%Y-%m")
        .to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn one_trace_from_the_gateway_to_the_grading_consumer_and_lint_free_metrics() {
    let receiver = OtlpReceiver::start().await;
    let cluster = Cluster::start_with(
        "e2eobs",
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint.clone()),
            // Export every 200 ms instead of every 5 s.
            ("OTEL_BSP_SCHEDULE_DELAY", "200".to_owned()),
            // The request and consumption lines (started/finished processing, event applied).
            (
                "RUST_LOG",
                "info,tower_http=debug,jifen_eventbus=debug".to_owned(),
            ),
        ],
    )
    .await;
    let trace_id = approve_a_declaration_in_a_known_trace(&cluster).await;
    assert_one_trace(&cluster, &receiver, &trace_id).await;
    assert_metrics_lint_free(&cluster).await;
}

/// Seeds the demo city, has demo0002 declare and submit, and demo0001 approve with a
/// `traceparent` of a new trace; returns that trace's id.
async fn approve_a_declaration_in_a_known_trace(cluster: &Cluster) -> String {
    let out = cluster.members_command(&["seed-demo"]).await;
    assert!(
        out.status.success(),
        "seed-demo failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let month = this_month();
    let year = &month[..4];
    if year != "2026" {
        // Only 2026 ships a standard; publish the same document for the running year.
        let admin = cluster.login("admin", ADMIN_PASSWORD).await;
        let mut doc = jifen_standard::default_2026()
            .unwrap()
            .to_json_value()
            .unwrap();
        doc["year"] = serde_json::json!(year.parse::<i32>().unwrap());
        let (status, body) = cluster
            .put(&admin, &format!("/api/v1/standards/{year}"), doc)
            .await;
        assert_eq!(status, 200, "{body}");
    }
    let member = cluster.login("demo0002", "jifen-demo").await;
    let secretary = cluster.login("demo0001", "jifen-demo").await;
    let (_, me) = cluster.get(&member, "/api/v1/me").await;
    let member_id = me["member_id"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/members/{member_id}/declarations/{month}");
    eventually(60, "the declarations replica to know demo0002", || async {
        (cluster.get(&member, &path).await.0 == 200).then_some(())
    })
    .await;
    let (status, draft) = cluster
        .put(
            &member,
            &path,
            serde_json::json!({"lines": [{"item_code": "F01", "quantity": 1}]}),
        )
        .await;
    assert_eq!(status, 200, "{draft}");
    let id = draft["id"].as_str().unwrap().to_owned();
    let (status, submitted) = cluster
        .post(
            &member,
            &format!("/api/v1/declarations/{id}:submit"),
            serde_json::json!({}),
        )
        .await;
    assert_eq!(status, 200, "{submitted}");

    let trace_id = format!("{:032x}", uuid::Uuid::new_v4().as_u128());
    let res = cluster
        .http
        .post(format!("{}/api/v1/declarations/{id}:review", cluster.base))
        .bearer_auth(&secretary)
        .header("traceparent", format!("00-{trace_id}-00f067aa0ba902b7-01"))
        .json(&serde_json::json!({"decision": "approve"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        200,
        "{}",
        res.text().await.unwrap_or_default()
    );
    trace_id
}

/// The spans of `trace_id` link gateway → declarations → grading, each exported by its service,
/// and the log lines of those requests carry the trace id.
async fn assert_one_trace(cluster: &Cluster, receiver: &OtlpReceiver, trace_id: &str) {
    let in_trace = |spans: Vec<ReceivedSpan>| -> Vec<ReceivedSpan> {
        spans
            .into_iter()
            .filter(|s| s.trace_id == trace_id)
            .collect()
    };
    // Each service exports in its own batches: wait until the three links are all in.
    let deadline = Instant::now() + Duration::from_secs(60);
    let (gateway, declarations, consumed) = loop {
        let spans = in_trace(receiver.spans());
        if let Some(found) = links(&spans) {
            break found;
        }
        assert!(
            Instant::now() < deadline,
            "no gateway → declarations → grading chain in trace {trace_id} after 60 s:\n{}",
            spans
                .iter()
                .map(|s| format!(
                    "{} {} {}<-{}",
                    s.service, s.name, s.span_id, s.parent_span_id
                ))
                .collect::<Vec<_>>()
                .join("\n")
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    println!(
        "trace {trace_id}: gateway {} → declarations {} → grading {} ({})",
        gateway.span_id, declarations.span_id, consumed.span_id, consumed.name
    );

    // The JSON log lines of those requests carry the trace id (and their span's id).
    let logs = eventually(10, "log lines of the trace in three services", || async {
        let logs = cluster.logs();
        let lines = |service: &str| -> Vec<serde_json::Value> {
            logs.iter()
                .filter(|(name, _)| *name == service)
                .flat_map(|(_, text)| text.lines())
                .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
                .filter(|l| l["trace_id"] == trace_id)
                .collect()
        };
        let found = ["gateway", "declarations", "grading"].map(lines);
        found.iter().all(|l| !l.is_empty()).then_some(found)
    })
    .await;
    let [gateway_lines, declarations_lines, grading_lines] = &logs;
    let span_ids = |lines: &[serde_json::Value]| -> Vec<String> {
        lines
            .iter()
            .filter_map(|l| l["span_id"].as_str().map(str::to_owned))
            .collect()
    };
    assert!(span_ids(gateway_lines).contains(&gateway.span_id));
    assert!(span_ids(declarations_lines).contains(&declarations.span_id));
    assert!(span_ids(grading_lines).contains(&consumed.span_id));
}

/// In one trace's `spans`: the gateway's span under the caller's, the declarations service's
/// gRPC span under a gateway span, and the grading service's consumption of the declarations
/// event under a declarations span (the one current when the event was staged).
fn links(spans: &[ReceivedSpan]) -> Option<(ReceivedSpan, ReceivedSpan, ReceivedSpan)> {
    let by_id = |id: &str| spans.iter().find(|s| s.span_id == id);
    let gateway = spans
        .iter()
        .find(|s| s.service == "jifen-gateway" && s.parent_span_id == "00f067aa0ba902b7")?;
    let declarations = spans.iter().find(|s| {
        s.service == "jifen-declarations"
            && s.name == "grpc.request"
            && by_id(&s.parent_span_id).is_some_and(|p| p.service == "jifen-gateway")
    })?;
    let consumed = spans.iter().find(|s| {
        s.service == "jifen-grading"
            && s.name.starts_with("declarations.")
            && s.name.ends_with(" process")
            && by_id(&s.parent_span_id).is_some_and(|p| p.service == "jifen-declarations")
    })?;
    Some((gateway.clone(), declarations.clone(), consumed.clone()))
}

/// `/metrics` of every service (and of the gateway) has the families of docs/operations.md and
/// passes `promtool check metrics`.
async fn assert_metrics_lint_free(cluster: &Cluster) {
    const EVERYWHERE: [&str; 4] = [
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "process_open_fds",
        "process_start_time_seconds",
    ];
    const SERVICES: [&str; 6] = [
        "jifen_grpc_server_requests_total",
        "jifen_grpc_server_request_duration_seconds",
        "jifen_outbox_backlog",
        "jifen_outbox_oldest_age_seconds",
        "jifen_db_pool_connections",
        "jifen_db_pool_max_connections",
    ];
    const CONSUMERS: [&str; 2] = [
        "jifen_consumer_queue_messages",
        "jifen_consumer_dead_letters",
    ];
    let mut targets: Vec<(&str, String)> = cluster.ops.clone();
    targets.push(("gateway", cluster.base.clone()));
    for (service, base) in targets {
        let mut expected: Vec<&str> = EVERYWHERE.to_vec();
        if service == "gateway" {
            expected.extend(["http_requests_total", "http_request_duration_seconds"]);
        } else {
            expected.extend(SERVICES);
        }
        if ["declarations", "evaluations", "grading"].contains(&service) {
            expected.extend(CONSUMERS);
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        let text = loop {
            let text = cluster
                .http
                .get(format!("{base}/metrics"))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            let missing: Vec<&str> = expected
                .iter()
                .copied()
                .filter(|f| !text.contains(&format!("# TYPE {f} ")))
                .collect();
            if missing.is_empty() {
                break text;
            }
            assert!(
                Instant::now() < deadline,
                "{service} /metrics lacks {missing:?}:\n{text}"
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        };
        assert!(
            text.contains("jifen_grpc_server_requests_total{") == (service != "gateway")
                && (service == "gateway" || text.contains("code=\"OK\"")),
            "{service}: no gRPC request counted with code OK:\n{text}"
        );
        let mut promtool = std::process::Command::new("promtool")
            .args(["check", "metrics"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("promtool is installed by scripts/dev-services.sh up");
        promtool
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
        let out = promtool.wait_with_output().unwrap();
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.status.success() && said.trim().is_empty(),
            "promtool check metrics on {service} /metrics: {said}"
        );
        println!(
            "promtool check metrics: {service} /metrics ({} families) passed",
            text.matches("# TYPE ").count()
        );
    }
}

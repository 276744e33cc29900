//! Crash test: the real `jifen-declarations` binary is SIGKILLed while members submit
//! declarations, and restarted on the same database; a consumer bound to the declaration events
//! must then have received the submitted event of every acknowledged submission exactly once.

use crate::helpers::*;
use jifen_eventbus::{Consumer, ConsumerSpec, EventHandler, HandleError, IncomingEvent};
use jifen_platform::auth::RoleName;
use jifen_proto::declarations::v1 as dpb;
use jifen_proto::declarations::v1::declarations_service_client::DeclarationsServiceClient;
use jifen_testkit::process::{ServiceProcess, reserve_port, workspace_binary};
use sea_orm::{
    ConnectionTrait as _, DatabaseConnection, DatabaseTransaction, DbBackend, Statement,
};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Records every applied event (no uniqueness: a duplicate would show as a second row).
struct Sink;

#[async_trait::async_trait]
impl EventHandler for Sink {
    async fn handle(
        &self,
        tx: &DatabaseTransaction,
        event: &IncomingEvent,
    ) -> Result<(), HandleError> {
        tx.execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "INSERT INTO received (routing_key, subject) VALUES ($1, $2)",
            [
                event.routing_key.clone().into(),
                event.subject.clone().into(),
            ],
        ))
        .await
        .map_err(|e| HandleError::Transient(e.into()))?;
        Ok(())
    }
}

fn binary() -> PathBuf {
    let built = PathBuf::from(env!("CARGO_BIN_EXE_jifen-declarations"));
    if built.exists() {
        return built;
    }
    workspace_binary("jifen-declarations")
        .expect("build it with `cargo build -p jifen-declarations --bins`")
}

struct Service {
    envs: Vec<(String, String)>,
    ops: SocketAddr,
    logs: PathBuf,
    starts: usize,
}

impl Service {
    async fn start(&mut self) -> ServiceProcess {
        self.starts += 1;
        let process = ServiceProcess::spawn(
            &binary(),
            &[],
            &self.envs,
            self.logs.join(format!("decl-{}.log", self.starts)),
        )
        .unwrap();
        let url = format!("http://{}/readyz", self.ops);
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(r) = http.get(&url).send().await
                && r.status() == 200
            {
                return process;
            }
            assert!(
                Instant::now() < deadline,
                "the service did not start: {}",
                process.log_text()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

async fn submitted_events(sink: &DatabaseConnection, subject: &str) -> i64 {
    count(
        sink,
        "SELECT count(*) FROM received WHERE subject = $1 AND routing_key = 'declarations.declaration.submitted.v1'",
        vec![subject.into()],
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn acknowledged_submissions_are_published_exactly_once_across_a_crash() {
    // Held until the test ends: the restarted process binds the same ports.
    let (grpc_port, ops_port) = (reserve_port().unwrap(), reserve_port().unwrap());
    let (grpc, ops): (SocketAddr, SocketAddr) = (grpc_port.addr(), ops_port.addr());
    let c = spawn_with(Declarations::External(grpc)).await;

    // The consumer's queue is bound before anything is published.
    let sink_db_guard = jifen_testkit::fresh_database("decl_sink").await.unwrap();
    let sink = jifen_declarations::migrate(&sink_db_guard.server_url, &sink_db_guard.name)
        .await
        .unwrap();
    sink.execute_unprepared("CREATE TABLE received (n bigserial PRIMARY KEY, routing_key text NOT NULL, subject text NOT NULL)")
        .await
        .unwrap();
    let consumer = Consumer::new(
        sink.clone(),
        c.bus.clone(),
        ConsumerSpec {
            name: "test.declarations-sink".into(),
            bindings: vec!["declarations.declaration.#".into()],
        },
        Arc::new(Sink),
    );
    consumer.declare().await.unwrap();
    tokio::spawn(consumer.run(c.cancel.clone()));

    let logs = tempfile::tempdir().unwrap();
    let envs: Vec<(String, String)> = [
        ("JIFEN_DATABASE_URL", c.decl_database.server_url.clone()),
        ("JIFEN_DECLARATIONS_DATABASE", c.decl_database.name.clone()),
        ("JIFEN_AMQP_URL", jifen_testkit::amqp_url()),
        ("JIFEN_BUS_PREFIX", c.bus_prefix.clone()),
        (
            "JIFEN_JWT_KEYS_DIR",
            c.keys_dir.path().display().to_string(),
        ),
        ("JIFEN_DECLARATIONS_GRPC_ADDR", grpc.to_string()),
        ("JIFEN_DECLARATIONS_OPS_ADDR", ops.to_string()),
        (
            "JIFEN_EVIDENCE_DIR",
            logs.path().join("evidence").display().to_string(),
        ),
        ("RUST_LOG", "info".to_owned()),
        // SIGTERM at the end of the test: stop at once, no load balancer to drain.
        ("JIFEN_SHUTDOWN_DRAIN_SECS", "0".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let mut service = Service {
        envs,
        ops,
        logs: logs.path().to_path_buf(),
        starts: 0,
    };
    let mut process = service.start().await;

    // The binary runs on the real clock: declare the current month (Shanghai), publishing the
    // shipped standard for the running year when it is not 2026.
    let month = (chrono::Utc::now() + chrono::Duration::hours(8))
        .format("%Y-%m")
        .to_string();
    let year: i32 = month[..4].parse().unwrap();
    if year != 2026 {
        let mut doc = jifen_standard::default_2026()
            .unwrap()
            .to_json_value()
            .unwrap();
        doc["year"] = serde_json::json!(year);
        c.decl(&c.admin_token())
            .await
            .put_standard(dpb::PutStandardRequest {
                year,
                document_json: doc.to_string(),
            })
            .await
            .unwrap();
    }

    let branch = c.branch("崩溃测试支部").await;
    let mut people = Vec::new();
    for i in 0..80 {
        people.push(c.member(&branch, &format!("成员{i:02}")).await);
    }
    c.replicated(&people.iter().map(|m| m.id.as_str()).collect::<Vec<_>>())
        .await;

    async fn declare(
        c: &Cluster,
        m: &jifen_proto::members::v1::Member,
        month: &str,
    ) -> Result<String, tonic::Status> {
        let mut client = c.decl(&c.member_token(m)).await;
        let saved = client
            .save_declaration(dpb::SaveDeclarationRequest {
                member_id: m.id.clone(),
                month: month.into(),
                lines: vec![line("F01", 1, &[])],
            })
            .await?
            .into_inner();
        client
            .submit_declaration(dpb::SubmitDeclarationRequest {
                id: saved.id.clone(),
            })
            .await?;
        Ok(saved.id)
    }

    let c = Arc::new(c);
    let mut acknowledged: Vec<String> = Vec::new();
    for m in &people[..5] {
        acknowledged.push(declare(&c, m, &month).await.unwrap());
    }
    // Four writers with submissions in flight when the process dies.
    let chunks: Vec<Vec<_>> = people[5..70].chunks(17).map(<[_]>::to_vec).collect();
    let writers: Vec<_> = chunks
        .into_iter()
        .map(|chunk| {
            let (c, month) = (c.clone(), month.clone());
            tokio::spawn(async move {
                let mut ids = Vec::new();
                for m in &chunk {
                    match declare(&c, m, &month).await {
                        Ok(id) => ids.push(id),
                        Err(_) => break,
                    }
                }
                ids
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    process.kill_hard().await.unwrap();
    for w in writers {
        acknowledged.extend(w.await.unwrap());
    }
    assert!(
        acknowledged.len() > 5,
        "the writers were acknowledged before the crash"
    );

    // Restart on the same database; submissions go on.
    let mut process = service.start().await;
    for m in &people[70..] {
        acknowledged.push(declare(&c, m, &month).await.unwrap());
    }

    eventually("every acknowledged submission's event", || async {
        for id in &acknowledged {
            if submitted_events(&sink, id).await == 0 {
                return None;
            }
        }
        Some(())
    })
    .await;
    // Wait until the outbox is drained: then no duplicate can still be on its way.
    eventually("the outbox to drain", || async {
        (count(
            &c.decl_db,
            "SELECT count(*) FROM outbox WHERE published_at IS NULL",
            vec![],
        )
        .await
            == 0)
            .then_some(())
    })
    .await;
    let published = count(
        &c.decl_db,
        "SELECT count(*) FROM outbox WHERE routing_key LIKE 'declarations.declaration.%'",
        vec![],
    )
    .await;
    eventually("the sink to apply every published event", || async {
        (count(&sink, "SELECT count(*) FROM inbox", vec![]).await >= published).then_some(())
    })
    .await;
    for id in &acknowledged {
        assert_eq!(
            submitted_events(&sink, id).await,
            1,
            "declaration {id}: exactly once"
        );
    }
    let duplicated = count(
        &c.decl_db,
        "SELECT count(*) FROM (SELECT subject FROM outbox WHERE routing_key = 'declarations.declaration.submitted.v1' GROUP BY subject HAVING count(*) > 1) d",
        vec![],
    )
    .await;
    assert_eq!(duplicated, 0, "one submitted event staged per declaration");
    // The secretary sees every acknowledged declaration as submitted.
    let mut sec = DeclarationsServiceClient::with_interceptor(
        tonic::transport::Endpoint::from_shared(format!("http://{grpc}"))
            .unwrap()
            .connect()
            .await
            .unwrap(),
        jifen_platform::grpc::TraceInjector::with_bearer(
            &c.role_token(RoleName::Secretary, &branch),
        )
        .unwrap(),
    );
    let listed = sec
        .list_declarations(dpb::ListDeclarationsRequest {
            org_id: branch.id.clone(),
            month: month.clone(),
            status: 2,
            page_size: 200,
            page_token: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    let listed: std::collections::HashSet<String> =
        listed.declarations.into_iter().map(|d| d.id).collect();
    assert!(
        acknowledged.iter().all(|id| listed.contains(id)),
        "every acknowledged submission is stored"
    );
    process.terminate().await.unwrap();
    drop(sink_db_guard);
}

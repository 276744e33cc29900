//! Crash test: the real `jifen-members` binary is SIGKILLed right after acknowledged writes and
//! restarted on the same database; a consumer bound to `members.#` must then have received the
//! created event of every acknowledged member exactly once, each with a `traceparent`.

use crate::helpers::*;
use base64::Engine as _;
use jifen_eventbus::{BusConfig, Consumer, ConsumerSpec, EventHandler, HandleError, IncomingEvent};
use jifen_proto::common::v1 as common;
use jifen_proto::members::v1 as pb;
use jifen_testkit::process::{ServiceProcess, reserve_port, workspace_binary};
use lapin::options::QueueDeclareOptions;
use lapin::types::FieldTable;
use sea_orm::{
    ConnectionTrait as _, DatabaseConnection, DatabaseTransaction, DbBackend, Statement,
};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

const CONSUMER: &str = "test.members-sink";

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
            "INSERT INTO received (event_id, routing_key, subject, traceparent) VALUES ($1, $2, $3, $4)",
            [event.id.into(), event.routing_key.clone().into(), event.subject.clone().into(), event.traceparent.clone().into()],
        ))
        .await?;
        Ok(())
    }
}

/// The service binary: cargo builds it for this package's integration tests.
fn members_binary() -> PathBuf {
    let built = PathBuf::from(env!("CARGO_BIN_EXE_jifen-members"));
    if built.exists() {
        return built;
    }
    workspace_binary("jifen-members").expect("build it with `cargo build -p jifen-members --bins`")
}

async fn wait_for_consumer(bus: &BusConfig) {
    let queue = bus.queue_name(CONSUMER);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        // A failed passive declare closes the channel: a new connection each time.
        if let Ok(conn) =
            lapin::Connection::connect(&bus.amqp_url, lapin::ConnectionProperties::default()).await
        {
            let declared = match conn.create_channel().await {
                Ok(ch) => ch
                    .queue_declare(
                        queue.as_str().into(),
                        QueueDeclareOptions {
                            passive: true,
                            ..Default::default()
                        },
                        FieldTable::default(),
                    )
                    .await
                    .is_ok_and(|q| q.consumer_count() > 0),
                Err(_) => false,
            };
            let _ = conn.close(200, "probe".into()).await;
            if declared {
                return;
            }
        }
        assert!(Instant::now() < deadline, "the test consumer never started");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

struct Service {
    envs: Vec<(String, String)>,
    grpc: SocketAddr,
    dir: PathBuf,
    starts: usize,
}

impl Service {
    async fn start(&mut self) -> ServiceProcess {
        self.starts += 1;
        let log = self.dir.join(format!("members-{}.log", self.starts));
        let process = ServiceProcess::spawn(&members_binary(), &[], &self.envs, log).unwrap();
        // Ready once it answers a login.
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let attempt = async {
                let channel =
                    tonic::transport::Endpoint::from_shared(format!("http://{}", self.grpc))
                        .ok()?
                        .connect()
                        .await
                        .ok()?;
                let mut client = pb::members_service_client::MembersServiceClient::new(channel);
                client
                    .authenticate(pb::AuthenticateRequest {
                        username: "admin".into(),
                        password: "jifen-admin".into(),
                    })
                    .await
                    .ok()
            };
            if attempt.await.is_some() {
                return process;
            }
            assert!(
                Instant::now() < deadline,
                "the service did not start: {}",
                process.log_text()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

async fn received_created(sink: &DatabaseConnection, subject: &str) -> (i64, i64) {
    let row = sink
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT count(*), count(traceparent) FROM received WHERE subject = $1 AND routing_key = 'members.member.created.v1'",
            [subject.into()],
        ))
        .await
        .unwrap()
        .unwrap();
    (
        row.try_get_by_index(0).unwrap(),
        row.try_get_by_index(1).unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn acknowledged_members_are_published_exactly_once_across_a_crash() {
    init_telemetry();
    let keys = Keys::generate();
    let database = jifen_testkit::fresh_database("members").await.unwrap();
    let prefix = jifen_testkit::unique_prefix("fault");
    let bus = BusConfig::new(jifen_testkit::amqp_url()).with_prefix(&prefix);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(format!("{KID}.pub.pem")), &keys.public_pem).unwrap();

    // The consumer first, so that its queue is bound before anything is published.
    let sink_database = jifen_testkit::fresh_database("members_sink").await.unwrap();
    let sink = jifen_members::migrate(&sink_database.server_url, &sink_database.name)
        .await
        .unwrap();
    sink.execute_unprepared(
        "CREATE TABLE received (n bigserial PRIMARY KEY, event_id uuid NOT NULL, routing_key text NOT NULL, \
         subject text NOT NULL, traceparent text)",
    )
    .await
    .unwrap();
    let stop_consumer = tokio_util::sync::CancellationToken::new();
    let consumer = Consumer::new(
        sink.clone(),
        bus.clone(),
        ConsumerSpec {
            name: CONSUMER.into(),
            bindings: vec!["members.#".into()],
        },
        Arc::new(Sink),
    );
    let consumer_task = tokio::spawn(consumer.run(stop_consumer.clone()));
    wait_for_consumer(&bus).await;

    // Held until the test ends: the restarted process binds the same ports.
    let (grpc_port, ops_port) = (reserve_port().unwrap(), reserve_port().unwrap());
    let (grpc, ops): (SocketAddr, SocketAddr) = (grpc_port.addr(), ops_port.addr());
    let envs: Vec<(String, String)> = [
        ("JIFEN_DATABASE_URL", database.server_url.clone()),
        ("JIFEN_MEMBERS_DATABASE", database.name.clone()),
        ("JIFEN_AMQP_URL", jifen_testkit::amqp_url()),
        ("JIFEN_BUS_PREFIX", prefix.clone()),
        ("JIFEN_JWT_KEYS_DIR", dir.path().display().to_string()),
        (
            "JIFEN_PII_KEY",
            base64::engine::general_purpose::STANDARD.encode(keys.pii_key),
        ),
        ("JIFEN_MEMBERS_GRPC_ADDR", grpc.to_string()),
        ("JIFEN_MEMBERS_OPS_ADDR", ops.to_string()),
        ("RUST_LOG", "info".to_owned()),
        // SIGTERM at the end of the test: stop at once, no load balancer to drain.
        ("JIFEN_SHUTDOWN_DRAIN_SECS", "0".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let mut service = Service {
        envs,
        grpc,
        dir: dir.path().to_path_buf(),
        starts: 0,
    };

    let mut process = service.start().await;
    let principal = connect(grpc, None)
        .await
        .authenticate(pb::AuthenticateRequest {
            username: "admin".into(),
            password: "jifen-admin".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let token = keys.token_for(&principal);
    let root_id = principal.roles[0].org_id.clone();
    let mut admin = connect(grpc, Some(&token)).await;
    let root = admin
        .get_organization(pb::GetOrganizationRequest { id: root_id })
        .await
        .unwrap()
        .into_inner();
    let committee = create_org(&mut admin, &root, "市直属党委", common::OrgKind::Committee).await;
    let branch = create_org(&mut admin, &committee, "第一支部", common::OrgKind::Branch).await;

    // Writers acknowledged one by one, with more writes in flight when the process dies.
    let mut acknowledged: Vec<String> = Vec::new();
    for i in 0..5 {
        acknowledged.push(
            create_member(&mut admin, &branch, &format!("崩溃前{i}"))
                .await
                .id,
        );
    }
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let token = token.clone();
            let branch = branch.clone();
            tokio::spawn(async move {
                let mut client = connect(grpc, Some(&token)).await;
                let mut ids = Vec::new();
                for i in 0.. {
                    match client
                        .create_member(member_request(&branch, &format!("并发{w}-{i}")))
                        .await
                    {
                        Ok(m) => ids.push(m.into_inner().id),
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
        "the concurrent writers got acknowledgements before the crash"
    );

    // Restart on the same database; it bootstraps nothing new and relays what is pending.
    let mut process = service.start().await;
    let mut admin = connect(grpc, Some(&token)).await;
    for i in 0..3 {
        acknowledged.push(
            create_member(&mut admin, &branch, &format!("重启后{i}"))
                .await
                .id,
        );
    }

    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut missing = 0;
        for id in &acknowledged {
            if received_created(&sink, id).await.0 == 0 {
                missing += 1;
            }
        }
        if missing == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{missing} acknowledged members never arrived; log: {}",
            process.log_text()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // Give duplicates, if any, a chance to show up.
    tokio::time::sleep(Duration::from_secs(2)).await;
    for id in &acknowledged {
        assert_eq!(
            received_created(&sink, id).await,
            (1, 1),
            "member {id}: exactly once, with a traceparent"
        );
    }
    let db = jifen_platform::db::connect(&database.url, 2).await.unwrap();
    let duplicated = query_i64(
        &db,
        "SELECT count(*) FROM (SELECT subject FROM outbox WHERE routing_key = 'members.member.created.v1' \
         GROUP BY subject HAVING count(*) > 1) d",
        vec![],
    )
    .await;
    assert_eq!(duplicated, 0, "one created event staged per member");
    assert_eq!(
        query_i64(
            &db,
            "SELECT count(*) FROM organizations WHERE parent_id IS NULL",
            vec![]
        )
        .await,
        1
    );
    assert_eq!(
        query_i64(
            &db,
            "SELECT count(*) FROM outbox WHERE published_at IS NULL",
            vec![]
        )
        .await,
        0
    );

    process.terminate().await.unwrap();
    stop_consumer.cancel();
    consumer_task.await.unwrap().unwrap();
}

//! Test harness: the members service and the declarations service started in-process on port 0,
//! each on a fresh database, sharing a unique bus prefix (so the declarations replica is fed by
//! the real members events over RabbitMQ), with tokens signed by a per-test key and a manual
//! clock the test moves.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use chrono::{DateTime, Utc};
use jifen_declarations::Clock;
use jifen_eventbus::BusConfig;
use jifen_platform::auth::{Principal, RoleClaim, RoleName, TokenSigner, TokenVerifier};
use jifen_platform::grpc::TraceInjector;
use jifen_proto::common::v1 as common;
use jifen_proto::declarations::v1 as dpb;
use jifen_proto::declarations::v1::declarations_service_client::DeclarationsServiceClient;
use jifen_proto::members::v1 as mpb;
use jifen_proto::members::v1::members_service_client::MembersServiceClient;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use uuid::Uuid;

pub type Members = MembersServiceClient<InterceptedService<Channel, TraceInjector>>;
pub type Decl = DeclarationsServiceClient<InterceptedService<Channel, TraceInjector>>;

/// 2026-11-10 12:00 in Shanghai: November 2026 is open, October closed on the 5th.
pub const START: &str = "2026-11-10T04:00:00Z";

pub fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap()
        .with_timezone(&Utc)
}

pub struct Cluster {
    pub members_addr: SocketAddr,
    pub decl_addr: SocketAddr,
    pub members_db: DatabaseConnection,
    pub decl_db: DatabaseConnection,
    pub bus: BusConfig,
    /// `JIFEN_BUS_PREFIX` of this test.
    pub bus_prefix: String,
    pub signer: TokenSigner,
    pub root: mpb::Organization,
    pub clock: Clock,
    pub cancel: CancellationToken,
    /// The declarations database (the service's own when it runs as a child process).
    pub decl_database: jifen_testkit::TestDatabase,
    /// Holds `test.pub.pem`, for a service started as a child process.
    pub keys_dir: tempfile::TempDir,
    _databases: Vec<jifen_testkit::TestDatabase>,
    _evidence: tempfile::TempDir,
}

/// Where the declarations service runs.
pub enum Declarations {
    /// In this process, on port 0, with the manual clock.
    InProcess,
    /// Started by the test (e.g. the real binary) at this address.
    External(SocketAddr),
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.cancel.cancel();
        // Quorum queues are heavy; a test's leftovers would slow the shared broker down.
        jifen_eventbus::delete_topology_blocking(
            &self.bus,
            &[
                jifen_declarations::events::MEMBERS_REPLICA,
                jifen_declarations::events::FINAL_GRADES,
            ],
        );
    }
}

pub async fn spawn() -> Cluster {
    spawn_with(Declarations::InProcess).await
}

pub async fn spawn_with(declarations: Declarations) -> Cluster {
    let mdb = jifen_testkit::fresh_database("decl_members").await.unwrap();
    let ddb = jifen_testkit::fresh_database("declarations").await.unwrap();
    let bus_prefix = jifen_testkit::unique_prefix("decl");
    let bus = BusConfig::new(jifen_testkit::amqp_url()).with_prefix(&bus_prefix);
    let (private_pem, public_pem) = jifen_platform::auth::generate_key_pair().unwrap();
    let signer = TokenSigner::from_pem("test", &private_pem).unwrap();
    let verifier = TokenVerifier::from_pems([("test", public_pem.as_str())]).unwrap();
    let keys_dir = tempfile::tempdir().unwrap();
    std::fs::write(keys_dir.path().join("test.pub.pem"), &public_pem).unwrap();
    let cancel = CancellationToken::new();

    let evidence = tempfile::tempdir().unwrap();
    let clock = Clock::manual(at(START));
    let mut settings = jifen_declarations::Settings::for_tests(
        &ddb.server_url,
        &ddb.name,
        bus.clone(),
        verifier.clone(),
        evidence.path(),
    );
    settings.clock = clock.clone();
    // The declarations service first: its replica queue is bound before any members event.
    let (decl_addr, decl_db) = match declarations {
        Declarations::InProcess => {
            let decl = jifen_declarations::Application::build(settings)
                .await
                .unwrap();
            let bound = (decl.grpc_addr(), decl.db().clone());
            tokio::spawn(decl.run_until_stopped(cancel.clone()));
            bound
        }
        Declarations::External(addr) => {
            // The replica's queue is declared now, as the service does at start-up.
            jifen_eventbus::Consumer::new(
                jifen_declarations::migrate(&ddb.server_url, &ddb.name)
                    .await
                    .unwrap(),
                bus.clone(),
                jifen_declarations::replica_spec(),
                std::sync::Arc::new(jifen_declarations::events::MembersReplica),
            )
            .declare()
            .await
            .unwrap();
            (
                addr,
                jifen_platform::db::connect(&ddb.url, 4).await.unwrap(),
            )
        }
    };

    let members = jifen_members::Application::build(jifen_members::Settings::for_tests(
        &mdb.server_url,
        &mdb.name,
        bus.clone(),
        verifier,
        rand::random(),
    ))
    .await
    .unwrap();
    let (members_addr, members_db) = (members.grpc_addr(), members.db().clone());
    tokio::spawn(members.run_until_stopped(cancel.clone()));

    let row = members_db
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT id FROM organizations WHERE parent_id IS NULL",
        ))
        .await
        .unwrap()
        .unwrap();
    let root_id: Uuid = row.try_get_by_index(0).unwrap();
    let mut cluster = Cluster {
        members_addr,
        decl_addr,
        members_db,
        decl_db,
        bus,
        bus_prefix,
        signer,
        root: mpb::Organization {
            id: root_id.to_string(),
            path: format!("/{root_id}/"),
            ..Default::default()
        },
        clock,
        cancel,
        decl_database: ddb,
        keys_dir,
        _databases: vec![mdb],
        _evidence: evidence,
    };
    let admin = cluster.admin_token();
    cluster.root = cluster
        .members(&admin)
        .await
        .get_organization(mpb::GetOrganizationRequest {
            id: root_id.to_string(),
        })
        .await
        .unwrap()
        .into_inner();
    cluster
}

async fn channel(addr: SocketAddr) -> Channel {
    tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap()
}

impl Cluster {
    pub fn token(&self, p: &Principal) -> String {
        self.signer.sign(p, 3600).unwrap()
    }

    pub fn admin_token(&self) -> String {
        self.role_token(RoleName::Admin, &self.root)
    }

    pub fn role_token(&self, role: RoleName, org: &mpb::Organization) -> String {
        self.token(&Principal {
            subject: format!("{}-{}", role.as_str(), &org.id[..8]),
            username: Some(format!("{}-{}", role.as_str(), &org.id[..8])),
            member_id: None,
            roles: vec![RoleClaim {
                role,
                org_id: org.id.parse().unwrap(),
                org_path: org.path.clone(),
            }],
            round_id: None,
        })
    }

    pub fn member_token(&self, m: &mpb::Member) -> String {
        self.token(&member_principal(m))
    }

    pub async fn members(&self, token: &str) -> Members {
        MembersServiceClient::with_interceptor(
            channel(self.members_addr).await,
            TraceInjector::with_bearer(token).unwrap(),
        )
    }

    pub async fn decl(&self, token: &str) -> Decl {
        DeclarationsServiceClient::with_interceptor(
            channel(self.decl_addr).await,
            TraceInjector::with_bearer(token).unwrap(),
        )
        .max_decoding_message_size(64 * 1024 * 1024)
    }

    pub async fn branch(&self, name: &str) -> mpb::Organization {
        self.members(&self.admin_token())
            .await
            .create_organization(mpb::CreateOrganizationRequest {
                parent_id: self.root.id.clone(),
                name: name.into(),
                kind: common::OrgKind::Branch.into(),
                unit_type: common::UnitType::Other.into(),
            })
            .await
            .unwrap()
            .into_inner()
    }

    pub async fn member(&self, branch: &mpb::Organization, name: &str) -> mpb::Member {
        self.members(&self.admin_token())
            .await
            .create_member(mpb::CreateMemberRequest {
                org_id: branch.id.clone(),
                name: name.into(),
                gender: common::Gender::Female.into(),
                category: common::MemberCategory::Full.into(),
                joined_on: "2010-07-01".into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
    }

    /// Waits until the declarations replica holds every member of `ids`.
    pub async fn replicated(&self, ids: &[&str]) {
        let ids: Vec<Uuid> = ids.iter().map(|i| i.parse().unwrap()).collect();
        eventually("the members replica", || async {
            let n = count(
                &self.decl_db,
                "SELECT count(*) FROM member_replica WHERE id = ANY($1)",
                vec![ids.clone().into()],
            )
            .await;
            (n == ids.len() as i64).then_some(())
        })
        .await;
    }
}

/// The principal of `m`'s own token ([`Cluster::member_token`]).
pub fn member_principal(m: &mpb::Member) -> Principal {
    Principal {
        subject: format!("member-{}", m.id),
        username: Some(m.name.clone()),
        member_id: Some(m.id.parse().unwrap()),
        roles: vec![RoleClaim {
            role: RoleName::Member,
            org_id: m.org_id.parse().unwrap(),
            org_path: m.org_path.clone(),
        }],
        round_id: None,
    }
}

pub async fn count(db: &DatabaseConnection, sql: &str, values: Vec<sea_orm::Value>) -> i64 {
    let row = db
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            sql,
            values,
        ))
        .await
        .unwrap()
        .unwrap();
    row.try_get_by_index(0).unwrap()
}

/// Polls `f` every 50 ms until it answers, for at most 30 s.
pub async fn eventually<T, F, Fut>(what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A minimal valid PNG (1×1), different for each `seed`.
pub fn png(seed: u8) -> Vec<u8> {
    let mut bytes = b"\x89PNG\r\n\x1a\n".to_vec();
    bytes.extend_from_slice(&[
        0, 0, 0, 13, b'I', b'H', b'D', b'R', 0, 0, 0, 1, 0, 0, 0, 1, 8, 6, 0, 0, 0, seed,
    ]);
    bytes
}

pub fn line(code: &str, quantity: i32, evidence: &[&str]) -> dpb::LineInput {
    dpb::LineInput {
        item_code: code.into(),
        quantity,
        note: String::new(),
        evidence: evidence.iter().map(|e| (*e).to_owned()).collect(),
    }
}

/// The machine code (`ErrorInfo.reason`) of a failed call.
pub fn code_of(status: &tonic::Status) -> String {
    jifen_platform::grpc::status_details(status)
        .0
        .unwrap_or_default()
}

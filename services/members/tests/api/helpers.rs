//! Test harness: the members service started in-process on port 0 against the real local
//! PostgreSQL and RabbitMQ, with a fresh database and a unique bus prefix per test, and tokens
//! signed with a key pair generated per test.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use jifen_eventbus::BusConfig;
use jifen_members::{Application, Settings};
use jifen_platform::auth::{Principal, RoleClaim, RoleName, TokenSigner, TokenVerifier};
use jifen_platform::grpc::TraceInjector;
use jifen_proto::common::v1 as common;
use jifen_proto::members::v1 as pb;
use jifen_proto::members::v1::members_service_client::MembersServiceClient;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};
use std::net::SocketAddr;
use tokio_util::sync::CancellationToken;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use uuid::Uuid;

pub type Client = MembersServiceClient<InterceptedService<Channel, TraceInjector>>;

/// Key id of the per-test signing key.
pub const KID: &str = "test";

pub fn init_telemetry() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // Installs the W3C propagator; logs only with RUST_LOG set.
        let _ = jifen_platform::telemetry::init("jifen-members-tests", None);
    });
}

/// Per-test keys: JWT key pair and PII master key.
#[derive(Clone)]
pub struct Keys {
    pub signer: TokenSigner,
    pub verifier: TokenVerifier,
    pub private_pem: String,
    pub public_pem: String,
    pub pii_key: [u8; 32],
}

impl Keys {
    pub fn generate() -> Self {
        let (private_pem, public_pem) = jifen_platform::auth::generate_key_pair().unwrap();
        Self {
            signer: TokenSigner::from_pem(KID, &private_pem).unwrap(),
            verifier: TokenVerifier::from_pems([(KID, public_pem.as_str())]).unwrap(),
            private_pem,
            public_pem,
            pii_key: rand::random(),
        }
    }

    pub fn token(&self, principal: &Principal) -> String {
        self.signer.sign(principal, 600).unwrap()
    }

    pub fn role_token(&self, role: RoleName, org: &pb::Organization) -> String {
        self.token(&Principal {
            subject: Uuid::now_v7().to_string(),
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

    /// A token for member `m` with the member role over their organization.
    pub fn member_token(&self, m: &pb::Member) -> String {
        self.token(&Principal {
            subject: Uuid::now_v7().to_string(),
            username: None,
            member_id: Some(m.id.parse().unwrap()),
            roles: vec![RoleClaim {
                role: RoleName::Member,
                org_id: m.org_id.parse().unwrap(),
                org_path: m.org_path.clone(),
            }],
            round_id: None,
        })
    }

    /// A token carrying exactly the principal the service answered (Authenticate/GetPrincipal).
    pub fn token_for(&self, p: &common::Principal) -> String {
        let roles = p
            .roles
            .iter()
            .map(|r| RoleClaim {
                role: match common::Role::try_from(r.role).unwrap() {
                    common::Role::Admin => RoleName::Admin,
                    common::Role::Secretary => RoleName::Secretary,
                    common::Role::Member => RoleName::Member,
                    other => panic!("unexpected role {other:?}"),
                },
                org_id: r.org_id.parse().unwrap(),
                org_path: r.org_path.clone(),
            })
            .collect();
        self.token(&Principal {
            subject: p.subject.clone(),
            username: Some(p.username.clone()),
            member_id: p.member_id.as_ref().map(|m| m.parse().unwrap()),
            roles,
            round_id: None,
        })
    }

    pub fn service_token(&self) -> String {
        self.signer.service_token("gateway").unwrap()
    }
}

pub struct TestApp {
    pub grpc_addr: SocketAddr,
    pub ops_addr: SocketAddr,
    pub db: DatabaseConnection,
    pub database: jifen_testkit::TestDatabase,
    pub bus: BusConfig,
    pub keys: Keys,
    pub root: pb::Organization,
    cancel: CancellationToken,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

pub fn settings(database: &jifen_testkit::TestDatabase, bus: &BusConfig, keys: &Keys) -> Settings {
    Settings::for_tests(
        &database.server_url,
        &database.name,
        bus.clone(),
        keys.verifier.clone(),
        keys.pii_key,
    )
}

/// Starts the service on a fresh database and a unique bus prefix.
pub async fn spawn_app() -> TestApp {
    init_telemetry();
    let database = jifen_testkit::fresh_database("members").await.unwrap();
    let bus = BusConfig::new(jifen_testkit::amqp_url())
        .with_prefix(&jifen_testkit::unique_prefix("members"));
    let keys = Keys::generate();
    let app = Application::build(settings(&database, &bus, &keys))
        .await
        .unwrap();
    let (grpc_addr, ops_addr, db) = (app.grpc_addr(), app.ops_addr(), app.db().clone());
    let cancel = CancellationToken::new();
    let task = tokio::spawn(app.run_until_stopped(cancel.clone()));
    let root_id: Uuid =
        query_one_uuid(&db, "SELECT id FROM organizations WHERE parent_id IS NULL").await;
    let mut t = TestApp {
        grpc_addr,
        ops_addr,
        db,
        database,
        bus,
        keys,
        root: pb::Organization::default(),
        cancel,
        task: Some(task),
    };
    let root_path = format!("/{root_id}/");
    let bootstrap_admin = t.keys.token(&Principal {
        subject: "bootstrap-test".into(),
        username: Some("admin".into()),
        member_id: None,
        roles: vec![RoleClaim {
            role: RoleName::Admin,
            org_id: root_id,
            org_path: root_path,
        }],
        round_id: None,
    });
    t.root = t
        .client(Some(&bootstrap_admin))
        .await
        .get_organization(pb::GetOrganizationRequest {
            id: root_id.to_string(),
        })
        .await
        .unwrap()
        .into_inner();
    t
}

impl TestApp {
    pub async fn client(&self, token: Option<&str>) -> Client {
        connect(self.grpc_addr, token).await
    }

    /// A client for the admin of the root.
    pub async fn root_admin(&self) -> Client {
        self.client(Some(&self.keys.role_token(RoleName::Admin, &self.root)))
            .await
    }

    pub async fn as_role(&self, role: RoleName, org: &pb::Organization) -> Client {
        self.client(Some(&self.keys.role_token(role, org))).await
    }

    pub async fn as_member(&self, m: &pb::Member) -> Client {
        self.client(Some(&self.keys.member_token(m))).await
    }

    /// Stops the service and waits for it.
    pub async fn stop(mut self) {
        self.cancel.cancel();
        if let Some(task) = self.task.take() {
            task.await.unwrap().unwrap();
        }
    }
}

pub async fn connect(addr: SocketAddr, token: Option<&str>) -> Client {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let injector = match token {
        Some(t) => TraceInjector::with_bearer(t).unwrap(),
        None => TraceInjector::new(),
    };
    MembersServiceClient::with_interceptor(channel, injector)
}

pub async fn query_one_uuid(db: &DatabaseConnection, sql: &str) -> Uuid {
    let row = db
        .query_one_raw(Statement::from_string(DbBackend::Postgres, sql))
        .await
        .unwrap()
        .unwrap();
    row.try_get_by_index(0).unwrap()
}

pub async fn query_i64(db: &DatabaseConnection, sql: &str, values: Vec<sea_orm::Value>) -> i64 {
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

/// A valid ID card number (GB 11643 check character) that differs by `seed`.
pub fn id_card(seed: u32) -> String {
    let first17 = format!(
        "110105{:04}{:02}{:02}{:03}",
        1950 + seed % 50,
        1 + seed % 12,
        1 + seed % 28,
        seed % 1000
    );
    let weights = [7u32, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    let sum: u32 = first17
        .bytes()
        .zip(weights)
        .map(|(d, w)| u32::from(d - b'0') * w)
        .sum();
    let check = b"10X98765432"[(sum % 11) as usize] as char;
    format!("{first17}{check}")
}

pub fn org_request(
    parent: &pb::Organization,
    name: &str,
    kind: common::OrgKind,
) -> pb::CreateOrganizationRequest {
    pb::CreateOrganizationRequest {
        parent_id: parent.id.clone(),
        name: name.into(),
        kind: kind.into(),
        unit_type: common::UnitType::GovernmentOrgan.into(),
    }
}

pub async fn create_org(
    client: &mut Client,
    parent: &pb::Organization,
    name: &str,
    kind: common::OrgKind,
) -> pb::Organization {
    client
        .create_organization(org_request(parent, name, kind))
        .await
        .unwrap()
        .into_inner()
}

pub fn member_request(org: &pb::Organization, name: &str) -> pb::CreateMemberRequest {
    pb::CreateMemberRequest {
        org_id: org.id.clone(),
        name: name.into(),
        gender: common::Gender::Female.into(),
        category: common::MemberCategory::Full.into(),
        joined_on: "2010-07-01".into(),
        ..Default::default()
    }
}

pub async fn create_member(client: &mut Client, org: &pb::Organization, name: &str) -> pb::Member {
    client
        .create_member(member_request(org, name))
        .await
        .unwrap()
        .into_inner()
}

/// A committee under the root with one branch: (committee, branch).
pub async fn committee_with_branch(
    app: &TestApp,
    name: &str,
) -> (pb::Organization, pb::Organization) {
    let mut admin = app.root_admin().await;
    let committee = create_org(
        &mut admin,
        &app.root,
        &format!("{name}党委"),
        common::OrgKind::Committee,
    )
    .await;
    let branch = create_org(
        &mut admin,
        &committee,
        &format!("{name}第一支部"),
        common::OrgKind::Branch,
    )
    .await;
    (committee, branch)
}

/// The fields named by a status's `BadRequest` violations, and its machine code.
pub fn details(status: &tonic::Status) -> (Option<String>, Vec<String>) {
    let (code, fields) = jifen_platform::grpc::status_details(status);
    (code, fields.into_iter().map(|(f, _)| f).collect())
}

/// Outbox rows (routing key, payload, traceparent) about `subject`, oldest first.
pub async fn outbox_for(
    db: &DatabaseConnection,
    subject: &str,
) -> Vec<(String, Vec<u8>, Option<String>)> {
    let rows = db
        .query_all_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT routing_key, payload, traceparent FROM outbox WHERE subject = $1 ORDER BY id",
            [subject.into()],
        ))
        .await
        .unwrap();
    rows.iter()
        .map(|r| {
            (
                r.try_get("", "routing_key").unwrap(),
                r.try_get("", "payload").unwrap(),
                r.try_get("", "traceparent").unwrap(),
            )
        })
        .collect()
}

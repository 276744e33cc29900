//! Test harness: the evaluations service and a members service in-process on port 0, sharing a
//! unique bus prefix, each on a fresh database; tokens signed with a key pair made per test.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use jifen_eventbus::{BusConfig, OutgoingEvent, Relay, stage};
use jifen_platform::auth::{Principal, RoleClaim, RoleName, TokenSigner, TokenVerifier};
use jifen_platform::grpc::TraceInjector;
use jifen_proto::common::v1 as common;
use jifen_proto::evaluations::v1 as pb;
use jifen_proto::evaluations::v1::evaluations_service_client::EvaluationsServiceClient;
use jifen_proto::members::v1 as mpb;
use jifen_proto::members::v1::members_service_client::MembersServiceClient;
use sea_orm::{
    ConnectionTrait as _, DatabaseConnection, DbBackend, Statement, TransactionTrait as _,
};
use sea_orm_migration::MigratorTrait as _;
use std::net::SocketAddr;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use uuid::Uuid;

pub type Client = EvaluationsServiceClient<InterceptedService<Channel, TraceInjector>>;
pub type Members = MembersServiceClient<InterceptedService<Channel, TraceInjector>>;

pub const KID: &str = "test";

pub fn init_telemetry() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = jifen_platform::telemetry::init("jifen-evaluations-tests", None);
    });
}

pub struct TestApp {
    pub grpc_addr: SocketAddr,
    pub members_addr: SocketAddr,
    /// The evaluations database.
    pub db: DatabaseConnection,
    pub bus: BusConfig,
    pub signer: TokenSigner,
    pub root: mpb::Organization,
    cancel: CancellationToken,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.cancel.cancel();
        // Quorum queues are heavy; a test's leftovers would slow the shared broker down.
        jifen_eventbus::delete_topology_blocking(&self.bus, &jifen_evaluations::events::CONSUMERS);
    }
}

/// A branch under a fresh committee, with members.
pub struct Branch {
    pub org: mpb::Organization,
    pub committee: mpb::Organization,
    pub members: Vec<mpb::Member>,
}

pub async fn spawn_app() -> TestApp {
    init_telemetry();
    let (private_pem, public_pem) = jifen_platform::auth::generate_key_pair().unwrap();
    let signer = TokenSigner::from_pem(KID, &private_pem).unwrap();
    let verifier = TokenVerifier::from_pems([(KID, public_pem.as_str())]).unwrap();
    let bus = BusConfig::new(jifen_testkit::amqp_url())
        .with_prefix(&jifen_testkit::unique_prefix("eval"));

    // The evaluations service first: its queues exist before the members service publishes.
    let db_e = jifen_testkit::fresh_database("eval").await.unwrap();
    let mut settings = jifen_evaluations::Settings::for_tests(
        &db_e.server_url,
        &db_e.name,
        bus.clone(),
        verifier.clone(),
        rand::random(),
    );
    settings.sweep_interval = Duration::from_millis(200);
    let evaluations = jifen_evaluations::Application::build(settings)
        .await
        .unwrap();
    let (grpc_addr, db) = (evaluations.grpc_addr(), evaluations.db().clone());
    let cancel = CancellationToken::new();
    tokio::spawn(evaluations.run_until_stopped(cancel.clone()));

    let db_m = jifen_testkit::fresh_database("evalm").await.unwrap();
    let members = jifen_members::Application::build(jifen_members::Settings::for_tests(
        &db_m.server_url,
        &db_m.name,
        bus.clone(),
        verifier,
        rand::random(),
    ))
    .await
    .unwrap();
    let members_addr = members.grpc_addr();
    let root_id: Uuid = {
        let row = members
            .db()
            .query_one_raw(Statement::from_string(
                DbBackend::Postgres,
                "SELECT id FROM organizations WHERE parent_id IS NULL",
            ))
            .await
            .unwrap()
            .unwrap();
        row.try_get_by_index(0).unwrap()
    };
    tokio::spawn(members.run_until_stopped(cancel.clone()));
    let mut app = TestApp {
        grpc_addr,
        members_addr,
        db,
        bus,
        signer,
        root: mpb::Organization {
            id: root_id.to_string(),
            path: format!("/{root_id}/"),
            ..Default::default()
        },
        cancel,
    };
    app.root = app
        .members()
        .await
        .get_organization(mpb::GetOrganizationRequest {
            id: root_id.to_string(),
        })
        .await
        .unwrap()
        .into_inner();
    app
}

async fn channel(addr: SocketAddr) -> Channel {
    tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap()
}

impl TestApp {
    pub fn token(&self, p: &Principal) -> String {
        self.signer.sign(p, 600).unwrap()
    }

    pub fn role_token(&self, role: RoleName, org: &mpb::Organization) -> String {
        self.token(&Principal {
            subject: Uuid::now_v7().to_string(),
            username: None,
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

    /// The token the gateway signs for a redeemed code.
    pub fn evaluator_token(&self, r: &pb::RedeemInvitationResponse) -> String {
        self.token(&Principal {
            subject: format!("evaluator:{}", r.ticket),
            username: None,
            member_id: None,
            roles: vec![RoleClaim {
                role: RoleName::Evaluator,
                org_id: r.org_id.parse().unwrap(),
                org_path: r.org_path.clone(),
            }],
            round_id: Some(r.round_id.parse().unwrap()),
        })
    }

    pub fn service_token(&self) -> String {
        self.signer.service_token("gateway").unwrap()
    }

    pub async fn client(&self, token: &str) -> Client {
        EvaluationsServiceClient::with_interceptor(
            channel(self.grpc_addr).await,
            TraceInjector::with_bearer(token).unwrap(),
        )
    }

    pub async fn as_role(&self, role: RoleName, org: &mpb::Organization) -> Client {
        self.client(&self.role_token(role, org)).await
    }

    pub async fn members(&self) -> Members {
        let admin = self.role_token(RoleName::Admin, &self.root);
        MembersServiceClient::with_interceptor(
            channel(self.members_addr).await,
            TraceInjector::with_bearer(&admin).unwrap(),
        )
    }

    /// A committee with a branch of `n` members (names 成员01 …), all in the replica.
    pub async fn branch(&self, n: usize) -> Branch {
        let mut m = self.members().await;
        let suffix = &Uuid::now_v7().simple().to_string()[20..];
        let committee = m
            .create_organization(mpb::CreateOrganizationRequest {
                parent_id: self.root.id.clone(),
                name: format!("党委{suffix}"),
                kind: common::OrgKind::Committee.into(),
                unit_type: common::UnitType::GovernmentOrgan.into(),
            })
            .await
            .unwrap()
            .into_inner();
        let org = m
            .create_organization(mpb::CreateOrganizationRequest {
                parent_id: committee.id.clone(),
                name: format!("支部{suffix}"),
                kind: common::OrgKind::Branch.into(),
                unit_type: common::UnitType::GovernmentOrgan.into(),
            })
            .await
            .unwrap()
            .into_inner();
        let mut members = Vec::new();
        for i in 0..n {
            members.push(
                m.create_member(mpb::CreateMemberRequest {
                    org_id: org.id.clone(),
                    name: format!("成员{:02}", i + 1),
                    gender: common::Gender::Female.into(),
                    category: common::MemberCategory::Full.into(),
                    joined_on: "2010-07-01".into(),
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_inner(),
            );
        }
        self.wait_replica(&org.id, n).await;
        Branch {
            org,
            committee,
            members,
        }
    }

    /// Waits until the replica holds the organization and `n` active members in it.
    pub async fn wait_replica(&self, org_id: &str, n: usize) {
        let org: Uuid = org_id.parse().unwrap();
        wait_until("the replica to catch up", || async {
            let orgs = self
                .count(
                    "SELECT count(*) FROM replica_organizations WHERE id = $1",
                    vec![org.into()],
                )
                .await;
            let members = self
                .count(
                    "SELECT count(*) FROM replica_members WHERE org_id = $1 AND status = 'active'",
                    vec![org.into()],
                )
                .await;
            orgs == 1 && members == i64::try_from(n).unwrap()
        })
        .await;
    }

    pub async fn count(&self, sql: &str, values: Vec<sea_orm::Value>) -> i64 {
        let row = self
            .db
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

    /// Opens a round of `quarter` as the branch's secretary.
    pub async fn open(&self, b: &Branch, quarter: &str) -> pb::Round {
        self.as_role(RoleName::Secretary, &b.org)
            .await
            .open_round(pb::OpenRoundRequest {
                org_id: b.org.id.clone(),
                quarter: quarter.into(),
                closes_at: None,
            })
            .await
            .unwrap()
            .into_inner()
    }

    pub async fn issue(
        &self,
        b: &Branch,
        round: &pb::Round,
        n: i32,
        kind: pb::EvaluatorKind,
    ) -> Vec<String> {
        self.as_role(RoleName::Secretary, &b.org)
            .await
            .issue_invitations(pb::IssueInvitationsRequest {
                round_id: round.id.clone(),
                count: n,
                evaluator_kind: kind.into(),
            })
            .await
            .unwrap()
            .into_inner()
            .codes
    }

    /// Redeems `code` as the gateway would for 群众 and answers an evaluator client.
    pub async fn evaluator(&self, code: &str) -> (Client, pb::RedeemInvitationResponse) {
        let r = self
            .client(&self.service_token())
            .await
            .redeem_invitation(pb::RedeemInvitationRequest { code: code.into() })
            .await
            .unwrap()
            .into_inner();
        (self.client(&self.evaluator_token(&r)).await, r)
    }

    /// Outbox rows (routing key, payload) about `subject`, oldest first.
    pub async fn outbox_for(&self, subject: &str) -> Vec<(String, Vec<u8>)> {
        let rows = self
            .db
            .query_all_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT routing_key, payload FROM outbox WHERE subject = $1 ORDER BY id",
                [subject.into()],
            ))
            .await
            .unwrap();
        rows.iter()
            .map(|r| {
                (
                    r.try_get("", "routing_key").unwrap(),
                    r.try_get("", "payload").unwrap(),
                )
            })
            .collect()
    }
}

/// A ballot entry.
pub fn rate(m: &mpb::Member, r: pb::Rating) -> pb::RatingEntry {
    pb::RatingEntry {
        member_id: m.id.clone(),
        rating: r.into(),
    }
}

pub fn cast(round: &pb::Round, ratings: Vec<pb::RatingEntry>) -> pb::CastBallotRequest {
    pb::CastBallotRequest {
        round_id: round.id.clone(),
        ratings,
    }
}

/// The machine code and fields of a status.
pub fn details(status: &tonic::Status) -> (Option<String>, Vec<String>) {
    let (code, fields) = jifen_platform::grpc::status_details(status);
    (code, fields.into_iter().map(|(f, _)| f).collect())
}

/// Publishes `events` the way the service `source` would: staged in a scratch database's outbox
/// and relayed once to the test's bus (how a test stands in for another service).
pub async fn publish(app: &TestApp, source: &str, events: Vec<OutgoingEvent>) {
    let scratch = jifen_testkit::fresh_database("evalpub").await.unwrap();
    let conn = jifen_platform::db::connect(&scratch.url, 2).await.unwrap();
    jifen_migrations::EvaluationsMigrator::up(&conn, None)
        .await
        .unwrap();
    let tx = conn.begin().await.unwrap();
    let n = events.len();
    for event in events {
        stage(&tx, source, event).await.unwrap();
    }
    tx.commit().await.unwrap();
    let relay = Relay::new(conn.clone(), app.bus.clone(), source);
    assert_eq!(relay.drain_once().await.unwrap(), n);
}

/// Polls `check` every 50 ms until it holds, for at most 90 s (parallel tests share two cores).
pub async fn wait_until<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    loop {
        if check().await {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

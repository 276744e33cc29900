//! The architecture's floor for the declaration hot path: the same two requests (`PUT` a
//! declaration, `POST …:submit` it) from the same client through the real gateway (JWT, scope
//! gate, JSON ↔ protobuf, a traced gRPC call carrying the token), answered by a declarations
//! service that authenticates the caller and runs **one** SQL statement per call: an `INSERT` for
//! the save, an `UPDATE` for the submit. No standard, no caps, no version, no audit, no outbox.
//!
//! Any implementation of the declarations contract behind the gateway does at least this much
//! work per operation, so the floor's throughput bounds what the real path can reach on this
//! machine. It exists for the bench only: it answers the two calls it is measured on and
//! `UNIMPLEMENTED` to the rest, and it is never part of the cluster.

use crate::cluster::Cluster;
use jifen_platform::auth::TokenVerifier;
use jifen_platform::grpc as status;
use jifen_proto::declarations::v1 as pb;
use jifen_proto::declarations::v1::declarations_service_server::{
    DeclarationsService, DeclarationsServiceServer,
};
use jifen_proto::events::v1::DeclarationStatus;
use sea_orm::{ConnectionTrait as _, DatabaseConnection, DbBackend, Statement};
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};
use uuid::Uuid;

/// The one-statement declarations service.
#[derive(Clone)]
struct Floor {
    db: DatabaseConnection,
    verifier: TokenVerifier,
}

fn not_in_floor<T>() -> Result<Response<T>, Status> {
    Err(Status::unimplemented("not part of the floor benchmark"))
}

fn internal(e: sea_orm::DbErr) -> Status {
    status::internal(&e)
}

#[tonic::async_trait]
impl DeclarationsService for Floor {
    async fn save_declaration(
        &self,
        request: Request<pb::SaveDeclarationRequest>,
    ) -> Result<Response<pb::Declaration>, Status> {
        let principal = status::principal(&request, &self.verifier)?;
        let request = request.into_inner();
        if principal.member_id.map(|m| m.to_string()).as_deref() != Some(&request.member_id) {
            return Err(Status::permission_denied("only the member declares"));
        }
        let lines: Vec<serde_json::Value> = request
            .lines
            .iter()
            .map(|l| serde_json::json!({"item_code": l.item_code, "quantity": l.quantity, "note": l.note}))
            .collect();
        let id = Uuid::now_v7();
        self.db
            .execute_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "INSERT INTO floor_declarations (id, member_id, month, lines, status) VALUES ($1, $2, $3, $4, 'draft')",
                [
                    id.into(),
                    request.member_id.clone().into(),
                    request.month.clone().into(),
                    serde_json::Value::Array(lines).into(),
                ],
            ))
            .await
            .map_err(internal)?;
        Ok(Response::new(pb::Declaration {
            id: id.to_string(),
            member_id: request.member_id,
            month: request.month,
            status: DeclarationStatus::Draft as i32,
            lines: request
                .lines
                .into_iter()
                .enumerate()
                .map(|(i, l)| pb::DeclarationLine {
                    line_id: i.to_string(),
                    item_code: l.item_code,
                    quantity: l.quantity,
                    note: l.note,
                    evidence: l.evidence,
                    ..Default::default()
                })
                .collect(),
            version: 1,
            ..Default::default()
        }))
    }

    async fn submit_declaration(
        &self,
        request: Request<pb::SubmitDeclarationRequest>,
    ) -> Result<Response<pb::Declaration>, Status> {
        let principal = status::principal(&request, &self.verifier)?;
        let id: Uuid = request
            .into_inner()
            .id
            .parse()
            .map_err(|_| Status::invalid_argument("id"))?;
        let member = principal
            .member_id
            .map(|m| m.to_string())
            .unwrap_or_default();
        let done = self
            .db
            .execute_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "UPDATE floor_declarations SET status = 'submitted' WHERE id = $1 AND member_id = $2 AND status = 'draft'",
                [id.into(), member.clone().into()],
            ))
            .await
            .map_err(internal)?;
        if done.rows_affected() != 1 {
            return Err(Status::failed_precondition("not a draft of yours"));
        }
        Ok(Response::new(pb::Declaration {
            id: id.to_string(),
            member_id: member,
            status: DeclarationStatus::Submitted as i32,
            version: 2,
            ..Default::default()
        }))
    }

    async fn get_standard(
        &self,
        _: Request<pb::GetStandardRequest>,
    ) -> Result<Response<pb::Standard>, Status> {
        not_in_floor()
    }
    async fn put_standard(
        &self,
        _: Request<pb::PutStandardRequest>,
    ) -> Result<Response<pb::Standard>, Status> {
        not_in_floor()
    }
    async fn get_declaration(
        &self,
        _: Request<pb::GetDeclarationRequest>,
    ) -> Result<Response<pb::Declaration>, Status> {
        not_in_floor()
    }
    async fn review_declaration(
        &self,
        _: Request<pb::ReviewDeclarationRequest>,
    ) -> Result<Response<pb::Declaration>, Status> {
        not_in_floor()
    }
    async fn batch_approve(
        &self,
        _: Request<pb::BatchApproveRequest>,
    ) -> Result<Response<pb::BatchApproveResponse>, Status> {
        not_in_floor()
    }
    async fn list_declarations(
        &self,
        _: Request<pb::ListDeclarationsRequest>,
    ) -> Result<Response<pb::ListDeclarationsResponse>, Status> {
        not_in_floor()
    }
    async fn get_declaration_history(
        &self,
        _: Request<pb::GetDeclarationHistoryRequest>,
    ) -> Result<Response<pb::DeclarationHistory>, Status> {
        not_in_floor()
    }
    async fn record_branch_entries(
        &self,
        _: Request<pb::RecordBranchEntriesRequest>,
    ) -> Result<Response<pb::RecordBranchEntriesResponse>, Status> {
        not_in_floor()
    }
    async fn revoke_branch_record(
        &self,
        _: Request<pb::RevokeBranchRecordRequest>,
    ) -> Result<Response<pb::BranchRecord>, Status> {
        not_in_floor()
    }
    async fn list_branch_records(
        &self,
        _: Request<pb::ListBranchRecordsRequest>,
    ) -> Result<Response<pb::ListBranchRecordsResponse>, Status> {
        not_in_floor()
    }
    async fn reopen_period(
        &self,
        _: Request<pb::ReopenPeriodRequest>,
    ) -> Result<Response<pb::Reopening>, Status> {
        not_in_floor()
    }
    async fn upload_evidence(
        &self,
        _: Request<pb::UploadEvidenceRequest>,
    ) -> Result<Response<pb::Evidence>, Status> {
        not_in_floor()
    }
    async fn get_evidence(
        &self,
        _: Request<pb::GetEvidenceRequest>,
    ) -> Result<Response<pb::EvidenceFile>, Status> {
        not_in_floor()
    }
}

/// A running floor: the one-statement service and a second gateway in front of it.
pub struct FloorGateway {
    /// The second gateway's base URL: declarations go to the floor, the rest to the cluster.
    pub base: String,
    cancel: CancellationToken,
    _db: jifen_testkit::TestDatabase,
}

impl FloorGateway {
    /// Starts the floor service on a fresh database (pool of 16, as the real service's) and a
    /// gateway built as the cluster's, whose declarations calls go to it.
    pub async fn start(cluster: &Cluster) -> anyhow::Result<Self> {
        let tdb = jifen_testkit::fresh_database("bench_floor").await?;
        let db = jifen_platform::db::connect(&tdb.url, 16).await?;
        db.execute_unprepared(
            "CREATE TABLE floor_declarations (id uuid PRIMARY KEY, member_id text NOT NULL, month text NOT NULL, lines jsonb NOT NULL, status text NOT NULL)",
        )
        .await?;
        let cancel = CancellationToken::new();
        let server = jifen_platform::grpc::GrpcServer::new()?
            .add_service(DeclarationsServiceServer::new(Floor {
                db,
                verifier: cluster.verifier.clone(),
            }))
            .await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        tokio::spawn(server.serve(listener, cancel.clone()));
        let base = cluster
            .extra_gateway(&format!("http://{addr}"), cancel.clone())
            .await?;
        Ok(Self {
            base,
            cancel,
            _db: tdb,
        })
    }
}

impl Drop for FloorGateway {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

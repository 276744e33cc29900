//! Infrastructure shared by every jifen service — and nothing else: business rules live in the
//! service that owns them (STYLE.md).
//!
//! * [`settings`]: environment variables with local defaults, parsed once.
//! * [`telemetry`]: tracing + OpenTelemetry (OTLP export when configured), W3C propagation.
//! * [`db`]: PostgreSQL databases per service, connection and migration.
//! * [`grpc`]: server assembly (health, reflection, trace extraction, drain), client trace
//!   injection, and `Status` construction with details; [`grpc_metrics`]: the server's request
//!   metrics layer.
//! * [`auth`]: JWT signing/verification and the caller's [`auth::Principal`] with scope checks.
//! * [`clock`]: "now", the system clock or a manual one that tests move.
//! * [`final_grades`]: the decoded `grading.member_grade.finalized.v1`, for the services that
//!   keep a table of final years.
//! * [`ops`]: the `/healthz`, `/readyz` and `/metrics` HTTP endpoints every service exposes.
//! * [`shutdown`]: one cancellation token fanned out from SIGINT/SIGTERM, drained then stopped.

pub mod auth;
pub mod clock;
pub mod db;
pub mod final_grades;
pub mod grpc;
pub mod grpc_metrics;
pub mod ops;
pub mod settings;
pub mod shutdown;
pub mod telemetry;
pub mod text;

//! Tests of the grading service against real PostgreSQL and RabbitMQ: events published through a
//! real outbox relay, consumed by the service running in-process.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod batch;
mod dashboard;
mod drift;
mod export;
mod helpers;
mod replay;
mod rollup;

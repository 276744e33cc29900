//! Integration tests of the declarations service: the members and declarations services started
//! in-process against the real local PostgreSQL and RabbitMQ, spoken to over gRPC.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod batch;
mod fault;
mod helpers;
mod lifecycle;
mod replay;

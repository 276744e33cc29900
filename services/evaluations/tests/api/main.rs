//! Integration tests of the evaluations service against the real local PostgreSQL and RabbitMQ,
//! with a real members service feeding the replica through the bus.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod anonymity;
mod batch;
mod helpers;
mod rounds;
mod standards;
mod voting;

//! Integration tests of the members service against the real local PostgreSQL and RabbitMQ.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod authorization;
mod bootstrap;
mod demo;
mod events;
mod fault;
mod helpers;
mod import;
mod members;
mod rotation;
mod shutdown;
mod startup;

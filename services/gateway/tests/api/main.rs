//! The gateway through HTTP only, against a real members service, PostgreSQL, RabbitMQ and Redis.

mod authz;
mod bad_input;
mod cross_cutting;
mod evaluations;
mod helpers;
mod identity;
mod orgs_members;

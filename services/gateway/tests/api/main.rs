//! The gateway through HTTP only, against a real members service, a real declarations service,
//! PostgreSQL, RabbitMQ and Redis.

mod authz;
mod bad_input;
mod cross_cutting;
mod declarations;
mod evaluations;
mod evidence;
mod helpers;
mod identity;
mod orgs_members;
mod standards;
mod support;

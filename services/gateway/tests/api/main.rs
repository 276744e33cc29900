//! The gateway through HTTP only, against real members, declarations, evaluations and grading
//! services, PostgreSQL, RabbitMQ and Redis.

mod authz;
mod bad_input;
mod cross_cutting;
mod dashboard;
mod declarations;
mod evaluations;
mod evidence;
mod exports;
mod fuzz;
mod grading;
mod grading_year;
mod helpers;
mod identity;
mod limits;
mod orgs_members;
mod standards;
mod support;

//! End-to-end tests: the cluster as `make run` starts it (the built `jifen-members`,
//! `jifen-declarations`, `jifen-evaluations`, `jifen-grading` and `jifen-gateway` binaries, configured by environment variables), spoken to over HTTP only.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod browser;
mod cluster;
mod declarations;
mod demo;
mod demo_history;
mod evaluation;
mod events;
mod grading;
mod h5_evaluation;
mod h5_member;
mod observability;
mod otlp;
mod pages;

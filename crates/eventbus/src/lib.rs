//! jifen's event bus: a transactional outbox relayed to RabbitMQ, and inbox consumers.
//!
//! The contract is DESIGN.md §4 "Events":
//!
//! * A use-case writes its state change and its event in one PostgreSQL transaction
//!   ([`stage`] inserts into `outbox`). Nothing publishes to RabbitMQ from a request.
//! * The [`Relay`] publishes outbox rows to the durable topic exchange `jifen.events` with
//!   publisher confirms and `mandatory`, and marks a row published only after the broker confirmed
//!   it. A crash anywhere in between republishes the row (at-least-once), never loses it.
//! * A [`Consumer`] owns one quorum queue with a delivery limit and a dead-letter queue. It records
//!   every processed event id in `inbox` in the same transaction as the handler's changes, so a
//!   redelivered event is applied exactly once.
//! * The envelope is CloudEvents-style AMQP properties and headers, and carries the W3C
//!   `traceparent`/`tracestate` captured when the event was staged, so one trace spans services.
//!
//! Only the private `store` module speaks SQL.
//!
//! # Use
//!
//! ```no_run
//! use std::sync::Arc;
//! use jifen_eventbus::{
//!     BusConfig, Consumer, ConsumerSpec, EventHandler, HandleError, IncomingEvent, OutgoingEvent,
//!     Relay, stage,
//! };
//! use sea_orm::{DatabaseTransaction, TransactionTrait as _};
//! use tokio_util::sync::CancellationToken;
//!
//! struct MembersReplica;
//!
//! #[async_trait::async_trait]
//! impl EventHandler for MembersReplica {
//!     async fn handle(&self, _tx: &DatabaseTransaction, _event: &IncomingEvent) -> Result<(), HandleError> {
//!         // decode the payload; upsert the replica row if its version is newer, through `tx`
//!         Ok(())
//!     }
//! }
//!
//! # async fn example(db: sea_orm::DatabaseConnection) -> Result<(), Box<dyn std::error::Error>> {
//! let config = BusConfig::new("amqp://guest:guest@127.0.0.1:5672/%2f");
//! let cancel = CancellationToken::new();
//!
//! // In a use-case: the state change and its event commit together.
//! let tx = db.begin().await?;
//! // … write the aggregate with `tx` …
//! let event = OutgoingEvent {
//!     routing_key: "members.member.created.v1".into(),
//!     subject: "0190f1f2-…".into(),
//!     payload: vec![/* protobuf */],
//! };
//! stage(&tx, "members", event).await?;
//! tx.commit().await?;
//!
//! // At start-up: one relay per service, one consumer per subscription.
//! tokio::spawn(Relay::new(db.clone(), config.clone(), "members").run(cancel.clone()));
//! let spec = ConsumerSpec { name: "declarations.members-replica".into(), bindings: vec!["members.#".into()] };
//! tokio::spawn(Consumer::new(db, config, spec, Arc::new(MembersReplica)).run(cancel.clone()));
//! # Ok(())
//! # }
//! ```
//!
//! Every service's migrator lists [`migration::all`] to get the `outbox` and `inbox` tables.
//!
//! # Metrics
//!
//! * `jifen_outbox_published_total` (counter): events the broker confirmed.
//! * `jifen_outbox_publish_seconds` (histogram): time to publish one claimed batch and receive
//!   all its confirms.
//! * `jifen_events_consumed_total{consumer, outcome}` (counter), `outcome` one of `applied`,
//!   `duplicate`, `dead_lettered`, `requeued`.

mod amqp;
mod config;
mod consumer;
mod envelope;
mod error;
pub mod gauges;
pub mod migration;
mod outbox;
mod propagation;
mod relay;
mod store;
mod topology;

pub use config::{BusConfig, DEFAULT_RETENTION};
pub use consumer::{Consumer, ConsumerSpec, EventHandler, HandleError, IncomingEvent};
pub use error::BusError;
pub use outbox::{OutgoingEvent, StagedEvent, stage};
pub use relay::Relay;
pub use topology::{declare_topology, delete_topology, delete_topology_blocking};

/// The PostgreSQL notification channel [`stage`] signals (through `outbox_stage`, which names it
/// too) and the [`Relay`] listens on.
pub const OUTBOX_CHANNEL: &str = "jifen_outbox";

/// Header carrying the reason a message was dead-lettered by a consumer.
pub const REASON_HEADER: &str = "x-jifen-reason";

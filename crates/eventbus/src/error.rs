//! The event bus's error type.
//!
//! Infrastructure failures (PostgreSQL, RabbitMQ) keep their source so the cause chain is logged
//! once by whoever gives up; the relay and consumers themselves never give up on them, they
//! reconnect with capped backoff.

/// Everything that can go wrong in the event bus.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    /// A PostgreSQL statement (through sea-orm) failed.
    #[error("database error")]
    Db(#[from] sea_orm::DbErr),
    /// A PostgreSQL operation through sqlx (LISTEN/NOTIFY) failed.
    #[error("database listener error")]
    Listener(#[from] sqlx::Error),
    /// A RabbitMQ operation failed (connection, channel, publish, ack).
    #[error("RabbitMQ error")]
    Amqp(#[from] lapin::Error),
    /// RabbitMQ did not answer in time (a publish confirm, a declaration, an ack…); the
    /// connection is treated as broken and replaced.
    #[error("RabbitMQ did not complete {0} in time")]
    Timeout(&'static str),
    /// The RabbitMQ connection or channel is gone, or the broker cancelled the consumer.
    #[error("RabbitMQ connection lost: {0}")]
    Disconnected(&'static str),
    /// The broker refused (nack) or returned (unroutable) published messages.
    #[error("RabbitMQ did not accept {count} message(s): {detail}")]
    NotAccepted {
        /// How many messages were not accepted.
        count: usize,
        /// What the broker said about the first one.
        detail: String,
    },
    /// An event or a configuration value cannot be represented on the wire
    /// (e.g. a routing key longer than 255 bytes).
    #[error("invalid event or configuration: {0}")]
    Invalid(String),
    /// The database connection is not PostgreSQL.
    #[error("the event bus needs a PostgreSQL connection")]
    NotPostgres,
}

impl BusError {
    /// Whether the error came from RabbitMQ (the connection must be re-established).
    pub(crate) fn is_broker(&self) -> bool {
        matches!(
            self,
            Self::Amqp(_) | Self::Timeout(_) | Self::Disconnected(_) | Self::NotAccepted { .. }
        )
    }
}

/// An error and its whole cause chain on one line, for logs.
pub(crate) fn report(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

//! Connecting to RabbitMQ, and the capped backoff every reconnect loop uses.
//!
//! Invariants:
//! * no automatic recovery inside lapin; the relay and consumers drop a broken connection and
//!   build a fresh one (redeclaring their topology), which is simple to reason about: whatever
//!   was unconfirmed or unacknowledged on the old connection is redone;
//! * every await on lapin is bounded ([`within`]): a lapin promise whose connection died at the
//!   wrong moment may never resolve, and a consumer or relay stuck on it would never reconnect.

use std::future::Future;
use std::time::Duration;

use lapin::{Connection, ConnectionProperties};

use crate::BusError;

/// How long any single RabbitMQ operation (connect, declare, publish, ack, confirm) may take.
pub(crate) const OPERATION_TIMEOUT: Duration = Duration::from_secs(15);

/// Runs a RabbitMQ operation with [`OPERATION_TIMEOUT`]; `what` names it in the error.
pub(crate) async fn within<T, E>(
    what: &'static str,
    operation: impl Future<Output = Result<T, E>>,
) -> Result<T, BusError>
where
    BusError: From<E>,
{
    match tokio::time::timeout(OPERATION_TIMEOUT, operation).await {
        Ok(result) => Ok(result?),
        Err(_elapsed) => Err(BusError::Timeout(what)),
    }
}

/// Opens a connection named `name` (shown in the RabbitMQ management UI).
pub(crate) async fn connect(url: &str, name: &str) -> Result<Connection, BusError> {
    let properties = ConnectionProperties::default().with_connection_name(name.into());
    within("connect", Connection::connect(url, properties)).await
}

/// Exponential backoff from 100 ms, doubling, capped at 5 s, with a little jitter.
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    next: Duration,
}

impl Backoff {
    const MIN: Duration = Duration::from_millis(100);
    const MAX: Duration = Duration::from_secs(5);

    pub(crate) fn new() -> Self {
        Self { next: Self::MIN }
    }

    /// The delay to wait now; the following one is twice as long (up to the cap).
    pub(crate) fn next_delay(&mut self) -> Duration {
        let delay = self.next;
        self.next = (self.next * 2).min(Self::MAX);
        // Up to +25% jitter so that many clients do not reconnect in lockstep.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let jitter_ms = u64::from(nanos) % (delay.as_millis() as u64 / 4 + 1);
        delay + Duration::from_millis(jitter_ms)
    }

    pub(crate) fn reset(&mut self) {
        self.next = Self::MIN;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let mut b = Backoff::new();
        let first = b.next_delay();
        assert!(first >= Duration::from_millis(100) && first <= Duration::from_millis(125));
        let mut last = first;
        for _ in 0..20 {
            last = b.next_delay();
        }
        assert!(
            last >= Duration::from_secs(5) && last <= Duration::from_millis(6250),
            "{last:?}"
        );
        b.reset();
        assert!(b.next_delay() <= Duration::from_millis(125));
    }
}

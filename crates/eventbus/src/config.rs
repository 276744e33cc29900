//! Bus configuration: where RabbitMQ is and how exchanges and queues are named.
//!
//! Invariant: every exchange and queue name the bus uses is derived from a [`BusConfig`], so a
//! test that sets a unique prefix ([`BusConfig::with_prefix`]) shares nothing with other tests.

use std::fmt;
use std::time::Duration;

/// Event bus settings. Build with [`BusConfig::new`] and adjust fields as needed.
#[derive(Clone)]
pub struct BusConfig {
    /// AMQP URL, e.g. `amqp://guest:guest@127.0.0.1:5672/%2f`.
    pub amqp_url: String,
    /// The durable topic exchange events are published to (`jifen.events`).
    pub exchange: String,
    /// The direct exchange dead-lettered messages go to (`jifen.dlx`).
    pub dead_letter_exchange: String,
    /// Prepended to every consumer queue name: empty in production, unique in tests.
    pub queue_prefix: String,
    /// How many unacknowledged deliveries a consumer holds at most (default 256): the batch
    /// being applied and the deliveries that arrive meanwhile, so keep it about twice
    /// `batch_size`.
    pub prefetch: u16,
    /// How many deliveries a consumer applies in one transaction at most (default 128; never
    /// more than `prefetch`).
    pub batch_size: u16,
    /// How long a consumer lets a batch fill before it applies what it has (default 2 ms). Under
    /// a backlog batches fill while the previous one is applied, without waiting.
    pub batch_linger: Duration,
    /// How long published outbox rows and inbox rows are kept before the relay's retention
    /// sweep deletes them (default 7 days; [`crate::relay`]). An inbox row is what makes a
    /// redelivery a duplicate, so keep it longer than any message can wait in a queue.
    pub retention: Duration,
    /// How often the retention sweep runs (default 1 hour).
    pub retention_interval: Duration,
    /// How many times a message is delivered before RabbitMQ dead-letters it (default 5).
    pub delivery_limit: u32,
    /// How often the relay polls the outbox when no notification woke it (default 1 s).
    pub poll_interval: Duration,
    /// How long the relay waits after a notification before it claims a batch (default 10 ms),
    /// so that under load one batch carries the events of every transaction committed meanwhile
    /// instead of one claim-publish-mark transaction per event.
    pub relay_linger: Duration,
    /// How often the relay samples the outbox backlog and a consumer its queues for `/metrics`
    /// (default 15 s; the first sample is taken at start).
    pub sample_interval: Duration,
}

/// Default of [`BusConfig::retention`]: seven days.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);

impl BusConfig {
    /// Production names and defaults for the broker at `amqp_url`.
    pub fn new(amqp_url: impl Into<String>) -> Self {
        Self {
            amqp_url: amqp_url.into(),
            exchange: "jifen.events".to_owned(),
            dead_letter_exchange: "jifen.dlx".to_owned(),
            queue_prefix: String::new(),
            prefetch: 256,
            batch_size: 128,
            batch_linger: Duration::from_millis(2),
            retention: DEFAULT_RETENTION,
            retention_interval: Duration::from_secs(3600),
            delivery_limit: 5,
            poll_interval: Duration::from_secs(1),
            relay_linger: Duration::from_millis(10),
            sample_interval: Duration::from_secs(15),
        }
    }

    /// Prefixes the exchange names and the queue names with `p` (for tests). A `.` separator is
    /// added unless `p` is empty or already ends with one, so `with_prefix("t-x-1")` gives the
    /// exchange `t-x-1.jifen.events` and consumer queues `t-x-1.<name>`.
    /// How long published outbox rows and inbox rows are kept ([`BusConfig::retention`]).
    pub fn with_retention(mut self, retention: Duration) -> Self {
        self.retention = retention;
        self
    }

    pub fn with_prefix(mut self, p: &str) -> Self {
        if p.is_empty() {
            return self;
        }
        let p = if p.ends_with('.') {
            p.to_owned()
        } else {
            format!("{p}.")
        };
        self.exchange = format!("{p}{}", self.exchange);
        self.dead_letter_exchange = format!("{p}{}", self.dead_letter_exchange);
        self.queue_prefix = format!("{p}{}", self.queue_prefix);
        self
    }

    /// The fanout exchange (and queue) that keeps events no consumer is bound for.
    pub fn unrouted_name(&self) -> String {
        format!("{}.unrouted", self.exchange)
    }

    /// The queue of the consumer called `name`.
    pub fn queue_name(&self, name: &str) -> String {
        format!("{}{name}", self.queue_prefix)
    }

    /// The dead-letter queue of the consumer called `name`.
    pub fn dead_letter_queue_name(&self, name: &str) -> String {
        format!("{}{name}.dlq", self.queue_prefix)
    }

    /// The routing key under which the consumer called `name` dead-letters to the DLX.
    pub fn dead_letter_routing_key(name: &str) -> String {
        format!("{name}.dlq")
    }
}

impl BusConfig {
    /// The largest batch a consumer applies: `batch_size`, but never more than `prefetch` (0 is
    /// unlimited in AMQP) nor less than one.
    pub(crate) fn effective_batch_size(&self) -> usize {
        let size = match self.prefetch {
            0 => self.batch_size,
            prefetch => self.batch_size.min(prefetch),
        };
        usize::from(size.max(1))
    }

    /// Checks that every name derived from this configuration (and from the consumer names
    /// given) fits AMQP's 255-byte limit, so that a misconfiguration fails at start-up instead
    /// of being retried forever.
    pub(crate) fn validate(&self, consumer_names: &[&str]) -> Result<(), crate::BusError> {
        let mut names = vec![
            self.exchange.clone(),
            self.dead_letter_exchange.clone(),
            self.unrouted_name(),
        ];
        for name in consumer_names {
            names.push(self.queue_name(name));
            names.push(self.dead_letter_queue_name(name));
            // The consumer tag is `<name>.<32 hex digits>`.
            names.push(format!("{name}.{}", "0".repeat(32)));
        }
        for name in names {
            crate::envelope::short("name", &name)?;
        }
        if self.batch_size == 0 {
            return Err(crate::BusError::Invalid(
                "batch_size must be at least 1".to_owned(),
            ));
        }
        if self.exchange.is_empty() || self.dead_letter_exchange.is_empty() {
            return Err(crate::BusError::Invalid(
                "exchange names must not be empty".to_owned(),
            ));
        }
        Ok(())
    }
}

impl fmt::Debug for BusConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BusConfig")
            .field("amqp_url", &redact_url(&self.amqp_url))
            .field("exchange", &self.exchange)
            .field("dead_letter_exchange", &self.dead_letter_exchange)
            .field("queue_prefix", &self.queue_prefix)
            .field("prefetch", &self.prefetch)
            .field("batch_size", &self.batch_size)
            .field("batch_linger", &self.batch_linger)
            .field("delivery_limit", &self.delivery_limit)
            .field("poll_interval", &self.poll_interval)
            .field("relay_linger", &self.relay_linger)
            .field("sample_interval", &self.sample_interval)
            .finish()
    }
}

/// The URL with its password replaced, for logs.
pub(crate) fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (authority, path) = rest
        .split_once('/')
        .map_or((rest, None), |(a, p)| (a, Some(p)));
    let redacted = match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _password)) => format!("{user}:***@{host}"),
            None => authority.to_owned(),
        },
        None => authority.to_owned(),
    };
    match path {
        Some(path) => format!("{scheme}://{redacted}/{path}"),
        None => format!("{scheme}://{redacted}"),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_the_design() {
        let c = BusConfig::new("amqp://localhost");
        assert_eq!(c.exchange, "jifen.events");
        assert_eq!(c.dead_letter_exchange, "jifen.dlx");
        assert_eq!(c.queue_prefix, "");
        assert_eq!(c.prefetch, 256);
        assert_eq!(c.batch_size, 128);
        assert_eq!(c.batch_linger, Duration::from_millis(2));
        assert_eq!(c.effective_batch_size(), 128);
        assert_eq!(c.delivery_limit, 5);
        assert_eq!(c.poll_interval, Duration::from_secs(1));
        assert_eq!(c.queue_name("a.b"), "a.b");
        assert_eq!(c.dead_letter_queue_name("a.b"), "a.b.dlq");
        assert_eq!(c.unrouted_name(), "jifen.events.unrouted");
    }

    #[test]
    fn prefix_applies_to_exchanges_and_queues() {
        let c = BusConfig::new("amqp://localhost").with_prefix("t-x-1");
        assert_eq!(c.exchange, "t-x-1.jifen.events");
        assert_eq!(c.dead_letter_exchange, "t-x-1.jifen.dlx");
        assert_eq!(c.queue_name("q"), "t-x-1.q");
        assert_eq!(c.dead_letter_queue_name("q"), "t-x-1.q.dlq");
        assert_eq!(BusConfig::dead_letter_routing_key("q"), "q.dlq");
        let same = BusConfig::new("amqp://localhost").with_prefix("t-x-1.");
        assert_eq!(same.exchange, c.exchange);
        assert_eq!(
            BusConfig::new("amqp://localhost").with_prefix("").exchange,
            "jifen.events"
        );
    }

    #[test]
    fn overlong_names_fail_validation() {
        let c = BusConfig::new("amqp://localhost");
        assert!(c.validate(&["declarations.members-replica"]).is_ok());
        assert!(c.validate(&[&"x".repeat(250)]).is_err());
        assert!(
            BusConfig::new("amqp://localhost")
                .with_prefix(&"p".repeat(250))
                .validate(&[])
                .is_err()
        );
    }

    #[test]
    fn batches_are_never_larger_than_the_prefetch_nor_empty() {
        let mut c = BusConfig::new("amqp://localhost");
        c.prefetch = 1;
        assert_eq!(c.effective_batch_size(), 1);
        c.prefetch = 0;
        assert_eq!(c.effective_batch_size(), 128, "prefetch 0 is unlimited");
        c.batch_size = 0;
        let refused = c.validate(&[]).unwrap_err().to_string();
        assert!(
            refused.contains("batch_size must be at least 1"),
            "{refused}"
        );
    }

    #[test]
    fn debug_hides_the_password() {
        let c = BusConfig::new("amqp://guest:secret@127.0.0.1:5672/%2f");
        let shown = format!("{c:?}");
        assert!(!shown.contains("secret"), "{shown}");
        assert!(shown.contains("guest:***@127.0.0.1:5672/%2f"), "{shown}");
    }
}

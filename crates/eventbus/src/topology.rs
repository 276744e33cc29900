//! RabbitMQ topology: exchanges and queues, declared idempotently by whoever connects.
//!
//! * `<exchange>` (`jifen.events`): durable topic exchange, with alternate exchange
//!   `<exchange>.unrouted`, a durable fanout bound to a durable queue of the same name capped at
//!   1 000 000 messages, so an event no consumer is bound for yet is kept, never dropped.
//! * `<dead_letter_exchange>` (`jifen.dlx`): durable direct exchange.
//! * Per consumer: quorum queue `<prefix><name>` with an explicit `x-delivery-limit` (RabbitMQ
//!   3.10 has no default), dead-lettering to the DLX with routing key `<name>.dlq`, bound to the
//!   event exchange by the consumer's patterns; and quorum queue `<prefix><name>.dlq` bound to
//!   the DLX by `<name>.dlq`.
//!
//! Invariant: declarations are identical every time (same arguments), so redeclaring on every
//! reconnect is harmless.

use lapin::options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable, LongString};
use lapin::{Channel, ExchangeKind};

use crate::envelope::short;
use crate::{BusConfig, BusError};

/// Maximum number of messages kept in the unrouted queue.
const UNROUTED_MAX_LENGTH: i64 = 1_000_000;

fn durable_exchange() -> ExchangeDeclareOptions {
    ExchangeDeclareOptions {
        durable: true,
        ..ExchangeDeclareOptions::default()
    }
}

fn text(value: &str) -> AMQPValue {
    AMQPValue::LongString(LongString::from(value.as_bytes()))
}

/// Declares the durable topic exchange `config.exchange` (with its alternate exchange and the
/// queue that keeps unrouted events) and the direct dead-letter exchange.
pub async fn declare_topology(channel: &Channel, config: &BusConfig) -> Result<(), BusError> {
    let unrouted = config.unrouted_name();
    let unrouted_name = short("exchange", &unrouted)?;
    channel
        .exchange_declare(
            unrouted_name.clone(),
            ExchangeKind::Fanout,
            durable_exchange(),
            FieldTable::default(),
        )
        .await?;
    let mut unrouted_args = FieldTable::default();
    unrouted_args.insert(
        "x-max-length".into(),
        AMQPValue::LongLongInt(UNROUTED_MAX_LENGTH),
    );
    channel
        .queue_declare(
            unrouted_name.clone(),
            QueueDeclareOptions::durable(),
            unrouted_args,
        )
        .await?;
    channel
        .queue_bind(
            unrouted_name.clone(),
            unrouted_name,
            "".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;

    let mut exchange_args = FieldTable::default();
    exchange_args.insert("alternate-exchange".into(), text(&unrouted));
    channel
        .exchange_declare(
            short("exchange", &config.exchange)?,
            ExchangeKind::Topic,
            durable_exchange(),
            exchange_args,
        )
        .await?;
    channel
        .exchange_declare(
            short("exchange", &config.dead_letter_exchange)?,
            ExchangeKind::Direct,
            durable_exchange(),
            FieldTable::default(),
        )
        .await?;
    Ok(())
}

/// Declares the queue and dead-letter queue of the consumer `name`, and their bindings.
/// Expects [`declare_topology`] to have run.
pub(crate) async fn declare_consumer_queues(
    channel: &Channel,
    config: &BusConfig,
    name: &str,
    bindings: &[String],
) -> Result<(), BusError> {
    let queue = short("queue", &config.queue_name(name))?;
    let dlq = short("queue", &config.dead_letter_queue_name(name))?;
    let dl_key = BusConfig::dead_letter_routing_key(name);

    let mut dlq_args = FieldTable::default();
    dlq_args.insert("x-queue-type".into(), text("quorum"));
    channel
        .queue_declare(dlq.clone(), QueueDeclareOptions::durable(), dlq_args)
        .await?;
    channel
        .queue_bind(
            dlq,
            short("exchange", &config.dead_letter_exchange)?,
            short("routing key", &dl_key)?,
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;

    let mut args = FieldTable::default();
    args.insert("x-queue-type".into(), text("quorum"));
    args.insert(
        "x-delivery-limit".into(),
        AMQPValue::LongLongInt(i64::from(config.delivery_limit)),
    );
    args.insert(
        "x-dead-letter-exchange".into(),
        text(&config.dead_letter_exchange),
    );
    args.insert("x-dead-letter-routing-key".into(), text(&dl_key));
    channel
        .queue_declare(queue.clone(), QueueDeclareOptions::durable(), args)
        .await?;
    let exchange = short("exchange", &config.exchange)?;
    for pattern in bindings {
        channel
            .queue_bind(
                queue.clone(),
                exchange.clone(),
                short("binding", pattern)?,
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
    }
    Ok(())
}

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

/// Deletes what [`declare_topology`] and the consumers named in `consumers` declared under
/// `config`'s prefix: each consumer's queue and dead-letter queue, the unrouted queue and the
/// three exchanges, with the messages in them. For tests and benchmark runs, whose unique prefix
/// would otherwise leave quorum queues behind on a shared broker (they are heavy; many slow it
/// down). Errors are ignored: what cannot be deleted now is removed by the next
/// `scripts/dev-services.sh clean-test-dbs`. Gives up after 10 s (a broker that is down).
pub async fn delete_topology(config: &BusConfig, consumers: &[&str]) {
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        delete_all(config, consumers),
    )
    .await;
}

async fn delete_all(config: &BusConfig, consumers: &[&str]) {
    use lapin::options::{ExchangeDeleteOptions, QueueDeleteOptions};
    let Ok(conn) = crate::amqp::connect(&config.amqp_url, "jifen-cleanup").await else {
        return;
    };
    if let Ok(channel) = conn.create_channel().await {
        let mut queues: Vec<String> = consumers
            .iter()
            .flat_map(|c| [config.queue_name(c), config.dead_letter_queue_name(c)])
            .collect();
        queues.push(config.unrouted_name());
        for queue in queues {
            let _ = channel
                .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
                .await;
        }
        for exchange in [
            config.exchange.clone(),
            config.dead_letter_exchange.clone(),
            config.unrouted_name(),
        ] {
            let _ = channel
                .exchange_delete(exchange.as_str().into(), ExchangeDeleteOptions::default())
                .await;
        }
    }
    let _ = conn.close(200, "topology deleted".into()).await;
}

/// [`delete_topology`] from synchronous code (a test's `Drop`): runs it on a thread of its own,
/// with its own runtime, and waits for it.
pub fn delete_topology_blocking(config: &BusConfig, consumers: &[&str]) {
    let config = config.clone();
    let consumers: Vec<String> = consumers.iter().map(|c| (*c).to_owned()).collect();
    let work = move || {
        let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        let names: Vec<&str> = consumers.iter().map(String::as_str).collect();
        runtime.block_on(delete_topology(&config, &names));
    };
    let _ = std::thread::spawn(work).join();
}

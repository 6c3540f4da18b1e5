//! The one shared producer: idempotent, acks=all, bounded delivery time; and publishing a
//! webhook's events so that the answer waits for the broker's acknowledgement of each.

use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseProducer, DeliveryResult, FutureProducer, FutureRecord, Producer, ProducerContext};
use serde::Serialize;

use crate::kafka::errors::ErrorLog;
use crate::pipeline::Event;
use crate::routes::KafkaSettings;

/// The producer every part of a process shares (webhooks, dead letters, redrives).
pub type EventProducer = FutureProducer<Reported>;

/// The producer's context: librdkafka's errors go to a rate-limited [`ErrorLog`] (its log
/// lines keep rdkafka's default handling).
pub struct Reported(ErrorLog);

impl ClientContext for Reported {
    fn error(&self, error: KafkaError, reason: &str) {
        self.0.report(&error, reason);
    }
}

/// Returns librdkafka's reason once the producer has hit a fatal error (an idempotent
/// producer fenced, or refused the right to write idempotently): it then fails every event,
/// so the process must stop and be restarted rather than answer 503 for ever. Asks once a
/// second (a lock and a read in librdkafka).
pub async fn fatal(producer: &EventProducer) -> String {
    let mut every = tokio::time::interval(Duration::from_secs(1));
    loop {
        every.tick().await;
        if let Some((code, reason)) = producer.client().fatal_error() {
            return format!("{code:?}: {reason}");
        }
    }
}

/// Where the broker stored one event.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Published {
    pub rule: String,
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
}

/// Builds the producer. Switchyard's settings come first; `kafka.properties` win.
pub fn producer(settings: &KafkaSettings) -> Result<EventProducer, KafkaError> {
    config(settings).create_with_context(Reported(ErrorLog::producer()))
}

/// Why librdkafka would refuse to create the producer `settings` describe (properties that
/// are each fine but not together, such as `acks: 1` with idempotence on), found by creating
/// one with no brokers to reach and its log silenced: no network. Properties naming files or
/// libraries on this machine are left out: a config is checked where it is written, not only
/// where it runs, and checking it must not load a plugin.
pub fn config_error(settings: &KafkaSettings) -> Option<String> {
    let mut cfg = config(settings);
    cfg.remove("bootstrap.servers");
    for (key, _) in &settings.properties {
        if key.ends_with(".location") || key == "plugin.library.paths" || key.starts_with("sasl.kerberos.") {
            cfg.remove(key);
        }
    }
    cfg.create_with_context::<_, BaseProducer<Silent>>(Silent).err().map(|e| match e {
        KafkaError::ClientCreation(why) => why,
        KafkaError::ClientConfig(_, why, _, _) => why,
        other => other.to_string(),
    })
}

/// A context that drops librdkafka's log lines and delivery reports.
struct Silent;

impl ClientContext for Silent {
    fn log(&self, _: RDKafkaLogLevel, _: &str, _: &str) {}
    fn error(&self, _: KafkaError, _: &str) {}
}

impl ProducerContext for Silent {
    type DeliveryOpaque = ();
    fn delivery(&self, _: &DeliveryResult<'_>, _: ()) {}
}

fn config(settings: &KafkaSettings) -> ClientConfig {
    let mut cfg = ClientConfig::new();
    cfg.set("bootstrap.servers", &settings.brokers)
        .set("client.id", "switchyard")
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "0.2")
        // librdkafka gives up on a message when the webhook has stopped waiting for it.
        .set("message.timeout.ms", settings.publish_timeout.as_millis().max(1).to_string());
    for (k, v) in &settings.properties {
        cfg.set(k, v);
    }
    cfg
}

/// Why a webhook's events are not all on the broker.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("the broker did not acknowledge within {0:?}")]
    Timeout(Duration),
    #[error("the broker refused the event: {0}")]
    Kafka(KafkaError),
}

/// Publishes every event and waits until the broker acknowledged all of them, or `timeout`.
///
/// librdkafka copies each record when it is queued, so the events are consumed here and
/// freed before the wait: only their rule and topic names are kept for the answer.
pub async fn publish_all(
    producer: &EventProducer,
    events: Vec<Event>,
    timeout: Duration,
) -> Result<Vec<Published>, PublishError> {
    let mut pending = Vec::with_capacity(events.len());
    for event in events {
        let payload = event.payload();
        let Event { rule, topic, key, headers, value } = event;
        drop(value);
        let mut kafka_headers = OwnedHeaders::new_with_capacity(headers.len());
        for (k, v) in &headers {
            kafka_headers = kafka_headers.insert(Header { key: k, value: Some(v.as_bytes()) });
        }
        let mut record = FutureRecord::to(&topic).payload(payload.as_slice()).headers(kafka_headers);
        if let Some(key) = &key {
            record = record.key(key.as_str());
        }
        // A full local queue is answered at once (back-pressure → 503), not waited on.
        let delivery = producer.send_result(record).map_err(|(e, _)| PublishError::Kafka(e))?;
        pending.push((rule, topic, delivery));
    }
    // The records are all queued already, so waiting for their reports one after the other
    // takes as long as the slowest: no join (and no allocation) is needed.
    let acknowledged = async move {
        let mut published = Vec::with_capacity(pending.len());
        for (rule, topic, delivery) in pending {
            match delivery.await {
                Ok(Ok(d)) => published.push(Published { rule, topic, partition: d.partition, offset: d.offset }),
                Ok(Err((e, _))) => return Err(PublishError::Kafka(e)),
                // The producer lives as long as the server; a cancelled delivery means it is gone.
                Err(_) => return Err(PublishError::Kafka(KafkaError::Canceled)),
            }
        }
        Ok(published)
    };
    match tokio::time::timeout(timeout, acknowledged).await {
        Ok(result) => result,
        Err(_) => Err(PublishError::Timeout(timeout)),
    }
}

/// Publishes one record and waits until the broker acknowledged it, or `timeout`: where it
/// is stored (partition, offset).
pub async fn publish_one(
    producer: &EventProducer,
    record: FutureRecord<'_, [u8], [u8]>,
    timeout: Duration,
) -> Result<(i32, i64), PublishError> {
    let delivery = producer.send_result(record).map_err(|(e, _)| PublishError::Kafka(e))?;
    match tokio::time::timeout(timeout, delivery).await {
        Ok(Ok(Ok(d))) => Ok((d.partition, d.offset)),
        Ok(Ok(Err((e, _)))) => Err(PublishError::Kafka(e)),
        Ok(Err(_)) => Err(PublishError::Kafka(KafkaError::Canceled)),
        Err(_) => Err(PublishError::Timeout(timeout)),
    }
}

/// Waits (off the async workers) until queued messages are delivered or `within` passes.
pub async fn flush(producer: EventProducer, within: Duration) {
    let outcome = tokio::task::spawn_blocking(move || producer.flush(within)).await;
    match outcome {
        Ok(Ok(())) => tracing::info!("producer flushed"),
        Ok(Err(e)) => tracing::warn!(error = %e, "producer flush incomplete"),
        Err(e) => tracing::warn!(error = %e, "producer flush task failed"),
    }
}

//! Dead letters: an event whose call failed for good goes to the dead-letter topic with its
//! original key, value and headers, plus headers saying what happened. The event counts as
//! done only once the broker holds the dead letter.

use std::time::Duration;

use rdkafka::Message;
use rdkafka::message::{Header, Headers, OwnedHeaders, OwnedMessage};
use rdkafka::producer::FutureRecord;
use tokio_util::sync::CancellationToken;

use crate::kafka::producer::EventProducer;

/// Why an event was dead-lettered.
pub struct Failure<'a> {
    /// The dispatcher that gave up: `switchyard redrive` sends a letter back to it alone.
    pub dispatcher: &'a str,
    pub rule: &'a str,
    /// `http_status`, `retries_exhausted`, `unroutable` or `schema`.
    pub reason: &'static str,
    pub status: Option<u16>,
    pub error: &'a str,
    pub attempts: u32,
}

/// Names of the headers a dead letter gains.
pub const HEADERS: [&str; 9] = [
    "switchyard.dlq.dispatcher",
    "switchyard.dlq.reason",
    "switchyard.dlq.status",
    "switchyard.dlq.error",
    "switchyard.dlq.attempts",
    "switchyard.dlq.rule",
    "switchyard.dlq.topic",
    "switchyard.dlq.partition",
    "switchyard.dlq.offset",
];

/// Publishes the dead letter, retrying until the broker holds it, then logs and counts it;
/// false if cancelled first.
pub async fn publish(
    producer: &EventProducer,
    topic: &str,
    msg: &OwnedMessage,
    failure: &Failure<'_>,
    cancel: &CancellationToken,
) -> bool {
    let mut headers = OwnedHeaders::new();
    if let Some(original) = msg.headers() {
        for h in original.iter() {
            headers = headers.insert(Header { key: h.key, value: h.value });
        }
    }
    let status = failure.status.map(|s| s.to_string()).unwrap_or_default();
    let values = [
        failure.dispatcher.to_string(),
        failure.reason.to_string(),
        status,
        failure.error.to_string(),
        failure.attempts.to_string(),
        failure.rule.to_string(),
        msg.topic().to_string(),
        msg.partition().to_string(),
        msg.offset().to_string(),
    ];
    for (k, v) in HEADERS.iter().zip(&values) {
        headers = headers.insert(Header { key: k, value: Some(v.as_bytes()) });
    }
    let mut delay = Duration::from_millis(100);
    loop {
        let mut record = FutureRecord::to(topic).headers(headers.clone());
        if let Some(p) = msg.payload() {
            record = record.payload(p);
        }
        if let Some(k) = msg.key() {
            record = record.key(k);
        }
        let sent = tokio::select! {
            r = producer.send(record, Duration::from_secs(5)) => r,
            _ = cancel.cancelled() => return false,
        };
        match sent {
            Ok(_) => {
                tracing::warn!(
                    topic,
                    rule = failure.rule,
                    reason = failure.reason,
                    error = failure.error,
                    "event dead-lettered"
                );
                crate::metrics::dead_letter(failure.dispatcher, failure.rule, failure.reason);
                return true;
            }
            Err((e, _)) => {
                tracing::warn!(error = %e, "dead letter not accepted yet; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = cancel.cancelled() => return false,
                }
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        }
    }
}

//! Kafka: producer and consumer setup, publishing, and the embedded broker of `switchyard dev`.

pub mod consumer;
pub mod embedded;
pub mod producer;

pub use embedded::EmbeddedBroker;
pub use producer::{Published, publish_all};

/// What librdkafka says against one `kafka.properties` entry (an unknown name, a value of the
/// wrong kind, a feature not built in), without creating a client or touching the network:
/// `validate` then refuses what `serve` would fail to start with.
pub fn property_error(name: &str, value: &str) -> Option<String> {
    let mut probe = rdkafka::ClientConfig::new();
    probe.set(name, value);
    match probe.create_native_config() {
        Ok(_) => None,
        Err(rdkafka::error::KafkaError::ClientConfig(_, description, _, _)) => Some(description),
        Err(e) => Some(e.to_string()),
    }
}

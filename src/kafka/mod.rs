//! Kafka: producer and consumer setup, publishing, and the embedded broker of `switchyard dev`.

pub mod consumer;
pub mod embedded;
pub mod producer;

pub use embedded::EmbeddedBroker;
pub use producer::{Published, publish_all};

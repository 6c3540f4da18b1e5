//! `/readyz`: ready when routes are loaded and the broker answers for every topic this
//! process writes to: a topic that does not exist is named here, not found out by each
//! webhook after `publish_timeout_ms`.

use std::time::{Duration, Instant};

use http::{Response, StatusCode};
use rdkafka::producer::Producer;
use rdkafka::types::RDKafkaErrorCode;
use serde_json::json;

use super::State;
use super::response::{Body, json};
use crate::kafka::producer::EventProducer;
use crate::routes::Routes;

/// How long the broker gets to answer, for all topics together, before the gateway reports
/// not ready.
const BROKER_TIMEOUT: Duration = Duration::from_secs(2);

pub async fn answer(state: &State) -> Response<Body> {
    let producer = state.producer.clone();
    let topics = written_topics(&state.routes.load(), state.webhooks);
    let broker = tokio::task::spawn_blocking(move || probe(&producer, &topics)).await;
    match broker {
        Ok(Ok(n)) => json(StatusCode::OK, &json!({"status": "ready", "brokers": n})),
        Ok(Err(why)) => not_ready(&why),
        Err(e) => not_ready(&e.to_string()),
    }
}

/// The topics this process writes to: its sources' when it takes webhooks, else (a
/// dispatcher-only process) its dispatchers' dead-letter topics.
fn written_topics(routes: &Routes, webhooks: bool) -> Vec<String> {
    let mut topics: Vec<String> = match webhooks {
        true => routes.sources.iter().flat_map(|s| s.topics().map(str::to_owned)).collect(),
        false => routes.dispatchers.iter().map(|d| d.dead_letter_topic.clone()).collect(),
    };
    topics.sort();
    topics.dedup();
    topics
}

/// Asks the broker about each topic (about the whole cluster only when the process writes to
/// none: on a large cluster that answer is big); the number of brokers, or why not ready.
fn probe(producer: &EventProducer, topics: &[String]) -> Result<usize, String> {
    let deadline = Instant::now() + BROKER_TIMEOUT;
    let mut brokers = 0;
    let asks: Vec<Option<&str>> = match topics.is_empty() {
        true => vec![None],
        false => topics.iter().map(|t| Some(t.as_str())).collect(),
    };
    for topic in asks {
        let left = deadline.saturating_duration_since(Instant::now());
        let metadata =
            producer.client().fetch_metadata(topic, left).map_err(|e| format!("the broker did not answer: {e}"))?;
        brokers = metadata.brokers().len();
        if brokers == 0 {
            return Err("the broker reported no brokers".into());
        }
        if let Some(error) = metadata.topics().first().and_then(|t| t.error()) {
            let topic = topic.unwrap_or_default();
            return Err(format!("topic '{topic}': {}", RDKafkaErrorCode::from(error)));
        }
    }
    Ok(brokers)
}

fn not_ready(why: &str) -> Response<Body> {
    json(StatusCode::SERVICE_UNAVAILABLE, &json!({"status": "not_ready", "reason": why}))
}

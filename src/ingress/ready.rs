//! `/readyz`: ready when routes are loaded and the broker answers a metadata request.

use std::time::Duration;

use http::{Response, StatusCode};
use rdkafka::producer::Producer;
use serde_json::json;

use super::State;
use super::response::{Body, json};

/// How long the broker gets to answer before the gateway reports not ready.
const BROKER_TIMEOUT: Duration = Duration::from_secs(2);

pub async fn answer(state: &State) -> Response<Body> {
    let producer = state.producer.clone();
    let broker = tokio::task::spawn_blocking(move || {
        producer.client().fetch_metadata(None, BROKER_TIMEOUT).map(|m| m.brokers().len())
    })
    .await;
    match broker {
        Ok(Ok(n)) if n > 0 => json(StatusCode::OK, &json!({"status": "ready", "brokers": n})),
        Ok(Ok(_)) => not_ready("the broker reported no brokers"),
        Ok(Err(e)) => not_ready(&format!("the broker did not answer: {e}")),
        Err(e) => not_ready(&e.to_string()),
    }
}

fn not_ready(why: &str) -> Response<Body> {
    json(StatusCode::SERVICE_UNAVAILABLE, &json!({"status": "not_ready", "reason": why}))
}

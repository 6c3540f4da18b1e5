//! Metrics: names, labels and the Prometheus exporter, so call sites are one line each.
//!
//! Label values are bounded: source, rule and dispatcher names from the config, reasons and
//! outcomes from fixed lists, HTTP status codes. Never order ids, paths or secrets.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::OnceLock;
use std::time::Duration;

use metrics::{Counter, Gauge, Histogram, counter, gauge, histogram};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Latency buckets of every histogram (publish and dispatch durations), in seconds.
const BUCKETS: &[f64] = &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// Installs the exporter once per process (later calls reuse it).
pub fn install() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new().set_buckets(BUCKETS).ok()?;
            match builder.install_recorder() {
                Ok(handle) => {
                    describe();
                    Some(handle)
                }
                Err(e) => {
                    tracing::warn!(error = %e, "metrics recorder not installed");
                    None
                }
            }
        })
        .as_ref()
}

/// The `# HELP` line of every metric.
fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        "switchyard_webhooks_total",
        "Webhooks answered, by source, outcome (accepted, ignored, replied, rejected, dead_lettered) and HTTP status"
    );
    describe_counter!("switchyard_rejections_total", "Webhooks rejected, by source and reason");
    describe_histogram!(
        "switchyard_publish_duration_seconds",
        Unit::Seconds,
        "Time the broker took to acknowledge a webhook's events (or to fail)"
    );
    describe_counter!(
        "switchyard_publish_failures_total",
        "Webhooks whose events the broker did not all acknowledge (answered 503)"
    );
    describe_counter!(
        "switchyard_dispatch_attempts_total",
        "HTTP attempts of dispatch rules, by outcome (success, retry, failed)"
    );
    describe_histogram!(
        "switchyard_dispatch_duration_seconds",
        Unit::Seconds,
        "Time of one dispatch call, from sending the request to the end of the answer"
    );
    describe_counter!("switchyard_dispatch_retries_total", "Dispatch attempts that will be retried");
    describe_counter!(
        "switchyard_dispatch_unmatched_total",
        "Events a dispatcher consumed that none of its rules takes (done without a call)"
    );
    describe_counter!(
        "switchyard_dead_letters_total",
        "Events put on a dead-letter topic, by dispatcher, rule and reason"
    );
    describe_gauge!("switchyard_dispatch_in_flight", "Dispatch calls in flight");
    describe_gauge!("switchyard_consumer_lag", "Events on a partition not yet consumed by a dispatcher");
    describe_gauge!(
        "switchyard_tls_certificate_expiry_timestamp_seconds",
        Unit::Seconds,
        "When a certificate Switchyard presents or trusts expires (Unix time; the earliest of its file)"
    );
    describe_counter!("switchyard_config_reloads_total", "Config reloads, by result (ok, failed)");
    describe_counter!(
        "switchyard_kafka_errors_total",
        "Errors librdkafka reported, by client (producer, consumer) and code"
    );
    describe_counter!(
        "switchyard_tls_handshake_failures_total",
        "HTTPS connections that never got to a request, by reason (handshake, timeout, plain_http)"
    );
    describe_counter!("switchyard_log_lines_dropped_total", "Log lines dropped because the log writer fell behind");
}

/// The Prometheus text exposition of every metric.
pub fn render() -> String {
    let Some(handle) = install() else { return String::new() };
    counter!("switchyard_log_lines_dropped_total").absolute(crate::logging::dropped_lines());
    handle.render()
}

/// Keeps histograms from growing without bound; runs until the process ends.
pub async fn upkeep() {
    loop {
        tokio::time::sleep(Duration::from_secs(5)).await;
        if let Some(h) = install() {
            h.run_upkeep();
        }
    }
}

/// One webhook answered: `outcome` is accepted, ignored, replied, rejected or dead_lettered
/// (refused, and kept in the dead-letter topic: `reason` says why).
pub fn webhook(source: &str, outcome: &'static str, status: u16, reason: Option<&'static str>) {
    let status = http::StatusCode::from_u16(status).ok();
    let code = status.as_ref().map_or("other", |s| s.as_str());
    counter_for(&["switchyard_webhooks_total", source, outcome, code], || {
        counter!("switchyard_webhooks_total", "source" => source.to_owned(), "outcome" => outcome, "status" => code.to_owned())
    })
    .increment(1);
    if let Some(reason) = reason {
        counter_for(
            &["switchyard_rejections_total", source, reason],
            || counter!("switchyard_rejections_total", "source" => source.to_owned(), "reason" => reason),
        )
        .increment(1);
    }
}

/// How long the broker took to acknowledge a webhook's events (or to fail).
pub fn publish(source: &str, took: Duration, ok: bool) {
    histogram_for(
        &["switchyard_publish_duration_seconds", source],
        || histogram!("switchyard_publish_duration_seconds", "source" => source.to_owned()),
    )
    .record(took.as_secs_f64());
    if !ok {
        counter_for(
            &["switchyard_publish_failures_total", source],
            || counter!("switchyard_publish_failures_total", "source" => source.to_owned()),
        )
        .increment(1);
    }
}

/// One HTTP attempt of a dispatch rule: `outcome` is success, retry or failed.
pub fn dispatch_attempt(dispatcher: &str, rule: &str, outcome: &'static str) {
    counter_for(&["switchyard_dispatch_attempts_total", dispatcher, rule, outcome], || {
        counter!("switchyard_dispatch_attempts_total", "dispatcher" => dispatcher.to_owned(), "rule" => rule.to_owned(), "outcome" => outcome)
    })
    .increment(1);
    if outcome == "retry" {
        counter_for(&["switchyard_dispatch_retries_total", dispatcher, rule], || {
            counter!("switchyard_dispatch_retries_total", "dispatcher" => dispatcher.to_owned(), "rule" => rule.to_owned())
        })
        .increment(1);
    }
}

/// How long one HTTP attempt took, from sending the request to the end of the answer (or the
/// failure): the downstream service's latency as the dispatcher sees it.
pub fn dispatch_duration(dispatcher: &str, rule: &str, took: Duration) {
    histogram_for(&["switchyard_dispatch_duration_seconds", dispatcher, rule], || {
        histogram!("switchyard_dispatch_duration_seconds", "dispatcher" => dispatcher.to_owned(), "rule" => rule.to_owned())
    })
    .record(took.as_secs_f64());
}

/// An event no rule of `dispatcher` takes.
pub fn dispatch_unmatched(dispatcher: &str) {
    counter!("switchyard_dispatch_unmatched_total", "dispatcher" => dispatcher.to_owned()).increment(1);
}

pub fn dead_letter(dispatcher: &str, rule: &str, reason: &'static str) {
    counter!("switchyard_dead_letters_total", "dispatcher" => dispatcher.to_owned(), "rule" => rule.to_owned(), "reason" => reason)
        .increment(1);
}

/// A connection to the HTTPS listener that failed before its first request.
pub fn tls_handshake_failed(reason: &'static str) {
    counter!("switchyard_tls_handshake_failures_total", "reason" => reason).increment(1);
}

/// Calls in flight right now (`delta` +1 when one starts, -1 when it ends).
pub fn in_flight(dispatcher: &str, delta: f64) {
    gauge_for(
        &["switchyard_dispatch_in_flight", dispatcher],
        || gauge!("switchyard_dispatch_in_flight", "dispatcher" => dispatcher.to_owned()),
    )
    .increment(delta);
}

// Handles of the per-event metrics, by name and label values, per thread: the hot path then
// neither allocates label strings nor hashes a metric key in the shared registry. Label
// values are bounded (see the module doc), and so are these maps.
thread_local! {
    static COUNTERS: RefCell<HashMap<String, Counter>> = RefCell::default();
    static GAUGES: RefCell<HashMap<String, Gauge>> = RefCell::default();
    static HISTOGRAMS: RefCell<HashMap<String, Histogram>> = RefCell::default();
    static LOOKUP: RefCell<String> = RefCell::default();
}

fn counter_for(parts: &[&str], make: impl FnOnce() -> Counter) -> Counter {
    COUNTERS.with_borrow_mut(|cache| cached(cache, parts, make))
}

fn gauge_for(parts: &[&str], make: impl FnOnce() -> Gauge) -> Gauge {
    GAUGES.with_borrow_mut(|cache| cached(cache, parts, make))
}

fn histogram_for(parts: &[&str], make: impl FnOnce() -> Histogram) -> Histogram {
    HISTOGRAMS.with_borrow_mut(|cache| cached(cache, parts, make))
}

/// The handle for `parts` (joined with NUL, which no name holds), made on first use.
fn cached<H: Clone>(cache: &mut HashMap<String, H>, parts: &[&str], make: impl FnOnce() -> H) -> H {
    LOOKUP.with_borrow_mut(|key| {
        key.clear();
        for p in parts {
            key.push_str(p);
            key.push('\0');
        }
        if let Some(h) = cache.get(key.as_str()) {
            return h.clone();
        }
        let h = make();
        cache.insert(key.clone(), h.clone());
        h
    })
}

pub fn consumer_lag(dispatcher: &str, topic: &str, partition: i32, lag: i64) {
    gauge!("switchyard_consumer_lag", "dispatcher" => dispatcher.to_owned(), "topic" => topic.to_owned(), "partition" => partition.to_string())
        .set(lag as f64);
}

/// When the certificates of `certificate` expire (the earliest `notAfter`, Unix seconds).
pub fn certificate_expiry(certificate: &str, unix: i64) {
    gauge!("switchyard_tls_certificate_expiry_timestamp_seconds", "certificate" => certificate.to_owned())
        .set(unix as f64);
}

pub fn reload(ok: bool) {
    counter!("switchyard_config_reloads_total", "result" => if ok { "ok" } else { "failed" }).increment(1);
}

/// One error a Kafka client reported (`client`: producer or consumer; `code`: librdkafka's name).
pub fn kafka_error(client: &'static str, code: &str) {
    counter!("switchyard_kafka_errors_total", "client" => client, "code" => code.to_owned()).increment(1);
}

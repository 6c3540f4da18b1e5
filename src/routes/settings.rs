//! The `kafka:` and `ingress:` settings, compiled and checked: broker list, producer
//! properties librdkafka would refuse or that weaken what a 200 means, limits and timeouts.

use std::time::Duration;

use serde_saphyr::Location;

use super::{Ctx, MAX_AT_ONCE, networks};
use crate::config::model::{IngressConfig, KafkaConfig, Scalar, Spanned};

#[derive(Clone, Debug)]
pub struct KafkaSettings {
    pub brokers: String,
    pub publish_timeout: Duration,
    /// librdkafka properties from the config, applied over Switchyard's defaults.
    pub properties: Vec<(String, String)>,
}

#[derive(Clone, Debug)]
pub struct IngressSettings {
    pub max_body_bytes: usize,
    pub read_timeout: Duration,
    pub max_in_flight: usize,
    pub max_connections: usize,
    /// Budget of body bytes buffered at once (memory bound under many large bodies).
    pub max_buffered_bytes: usize,
    /// Proxies whose `X-Forwarded-For` names the client (`trusted_proxies`).
    pub trusted_proxies: Vec<ipnet::IpNet>,
}

/// The largest body a source takes: librdkafka's largest `message.max.bytes`.
const MAX_RECORD_BYTES: u64 = 1_000_000_000;

/// The `kafka:` settings; what they say wrong goes to `ctx`.
pub(super) fn compile_kafka(ctx: &mut Ctx, cfg: &KafkaConfig) -> KafkaSettings {
    let kafka = KafkaSettings {
        brokers: cfg.brokers.as_ref().and_then(|b| ctx.text(b)).unwrap_or_else(|| "localhost:9092".into()),
        publish_timeout: Duration::from_millis(cfg.publish_timeout_ms.as_ref().map_or(10_000, |t| t.value)),
        properties: cfg
            .properties
            .iter()
            .filter_map(|(k, v)| {
                let value = match &v.value {
                    Scalar::Str(s) => ctx.text(&Spanned(serde_saphyr::Spanned {
                        value: s.clone(),
                        referenced: v.referenced,
                        defined: v.defined,
                    }))?,
                    Scalar::Int(i) => i.to_string(),
                    Scalar::Float(f) => f.to_string(),
                    Scalar::Bool(b) => b.to_string(),
                };
                Some((k.clone(), value))
            })
            .collect(),
    };
    if let Some(error) = crate::kafka::brokers_error(&kafka.brokers) {
        ctx.error(cfg.brokers.as_ref().map_or(Location::UNKNOWN, |b| b.referenced), error);
    }
    let errors_before = ctx.diags.errors().count();
    for (name, spanned) in &cfg.properties {
        let value = kafka.properties.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
        if let Some(error) = value.and_then(|v| crate::kafka::property_error(name, v)) {
            ctx.error(spanned.referenced, format!("kafka property '{name}': {error}"));
        } else if let Some(weaker) = value.and_then(|v| weakens_acknowledgement(name, v)) {
            ctx.warning(
                spanned.referenced,
                format!("kafka property '{name}: {}': {weaker}", value.unwrap_or_default()),
            );
        }
    }
    // Properties each fine may still not go together: ask librdkafka about the whole set.
    if !kafka.properties.is_empty()
        && ctx.diags.errors().count() == errors_before
        && let Some(error) = crate::kafka::producer::config_error(&kafka)
    {
        let at = cfg.properties.values().next().map_or(Location::UNKNOWN, |v| v.referenced);
        ctx.error(at, format!("kafka.properties: {error}"));
    }
    ctx.at_least(&cfg.publish_timeout_ms, 1, "publish_timeout_ms");
    // It is the producer's `message.timeout.ms` too, which librdkafka holds in a C `int`.
    let most = i32::MAX as u64;
    ctx.at_most(&cfg.publish_timeout_ms, most, "publish_timeout_ms", "librdkafka's message.timeout.ms");
    kafka
}

/// The `ingress:` limits; what they say wrong goes to `ctx`.
pub(super) fn compile_ingress(ctx: &mut Ctx, cfg: &IngressConfig) -> IngressSettings {
    ctx.at_least(&cfg.max_body_bytes, 1, "max_body_bytes");
    ctx.at_least(&cfg.read_timeout_ms, 1, "read_timeout_ms");
    ctx.at_least(&cfg.max_in_flight, 1, "max_in_flight");
    ctx.at_least(&cfg.max_connections, 1, "max_connections");
    ctx.at_least(&cfg.max_buffered_bytes, 1, "max_buffered_bytes");
    // A body is one Kafka record's worth at most; counts of things at once stay countable.
    ctx.at_most(&cfg.max_body_bytes, MAX_RECORD_BYTES, "max_body_bytes", "librdkafka's largest message.max.bytes");
    ctx.at_most(&cfg.max_in_flight, MAX_AT_ONCE, "max_in_flight", "beyond that it limits nothing");
    ctx.at_most(&cfg.max_connections, MAX_AT_ONCE, "max_connections", "beyond that it limits nothing");
    let ingress = IngressSettings {
        max_body_bytes: cfg.max_body_bytes.as_ref().map_or(1 << 20, |v| v.value as usize),
        read_timeout: Duration::from_millis(cfg.read_timeout_ms.as_ref().map_or(10_000, |v| v.value)),
        max_in_flight: cfg.max_in_flight.as_ref().map_or(4096, |v| v.value.max(1) as usize),
        max_connections: cfg.max_connections.as_ref().map_or(10_000, |v| v.value.max(1) as usize),
        max_buffered_bytes: cfg.max_buffered_bytes.as_ref().map_or(64 << 20, |v| v.value.max(1) as usize),
        trusted_proxies: networks::compile(ctx, &cfg.trusted_proxies, "trusted_proxies")
            .map(|n| n.nets)
            .unwrap_or_default(),
    };
    if let Some(budget) = &cfg.max_buffered_bytes
        && (budget.value as usize) < ingress.max_body_bytes
    {
        let msg = format!(
            "max_buffered_bytes ({}) is smaller than max_body_bytes ({}): a body of the largest allowed size could never be read",
            budget.value, ingress.max_body_bytes
        );
        ctx.error(budget.referenced, msg);
    }
    ingress
}

/// Why a producer property overriding Switchyard's own weakens what a 200 means (the event
/// is on every in-sync replica, written once).
fn weakens_acknowledgement(name: &str, value: &str) -> Option<&'static str> {
    match (name, value.trim().to_ascii_lowercase().as_str()) {
        ("acks" | "request.required.acks", "all" | "-1") => None,
        ("acks" | "request.required.acks", _) => {
            Some("a webhook is then acknowledged before every in-sync replica holds its event (Switchyard sets 'all')")
        }
        ("enable.idempotence", "false" | "0") => {
            Some("a retried send may then write an event twice, or out of order (Switchyard sets 'true')")
        }
        _ => None,
    }
}

//! librdkafka's errors in the log, rate-limited. While a broker is unreachable every client
//! reports the same error several times a second, for as long as the outage lasts; each kind
//! of error is logged when it first comes, then at most once per [`WINDOW`] with the number of
//! reports it stands for. Every report is counted in `switchyard_kafka_errors_total`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rdkafka::error::KafkaError;

/// The least time between two log lines of one kind of error from one client.
pub const WINDOW: Duration = Duration::from_secs(30);

/// One client's error log: the producer's, or a dispatcher's consumer's.
pub struct ErrorLog {
    /// `producer` or `consumer`.
    client: &'static str,
    /// The consumer's dispatcher.
    dispatcher: Option<String>,
    seen: Mutex<HashMap<String, Seen>>,
}

struct Seen {
    logged_at: Instant,
    /// Reports since that line, not logged.
    held: u64,
}

/// What to do with one report.
#[derive(Debug, PartialEq, Eq)]
enum Line {
    /// The first of its kind (or the first since a quiet window): log it.
    First,
    /// Log it, with this many reports held back since the last line.
    After(u64),
    /// Count it only.
    Held,
}

impl ErrorLog {
    pub fn producer() -> ErrorLog {
        ErrorLog { client: "producer", dispatcher: None, seen: Mutex::default() }
    }

    pub fn consumer(dispatcher: &str) -> ErrorLog {
        ErrorLog { client: "consumer", dispatcher: Some(dispatcher.to_owned()), seen: Mutex::default() }
    }

    /// Logs (or holds back) one error librdkafka reported, and counts it.
    pub fn report(&self, error: &KafkaError, reason: &str) {
        let code = code(error);
        crate::metrics::kafka_error(self.client, &code);
        let (client, dispatcher) = (self.client, self.dispatcher.as_deref());
        let every = WINDOW.as_secs();
        match self.note(&code, Instant::now()) {
            Line::First => {
                let message = format!("Kafka client error (its repeats are logged at most every {every} s)");
                tracing::error!(client, dispatcher, code, %error, reason, "{message}");
            }
            Line::After(0) => tracing::error!(client, dispatcher, code, %error, reason, "Kafka client error"),
            Line::After(held) => {
                let message = format!("Kafka client error, reported {held} more times since it was last logged");
                tracing::error!(client, dispatcher, code, %error, reason, "{message}");
            }
            Line::Held => {}
        }
    }

    fn note(&self, code: &str, now: Instant) -> Line {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        let Some(s) = seen.get_mut(code) else {
            seen.insert(code.to_owned(), Seen { logged_at: now, held: 0 });
            return Line::First;
        };
        if now.duration_since(s.logged_at) < WINDOW {
            s.held += 1;
            return Line::Held;
        }
        let held = std::mem::take(&mut s.held);
        s.logged_at = now;
        Line::After(held)
    }
}

/// librdkafka's name of the error (`AllBrokersDown`, `BrokerTransportFailure`, …): a bounded
/// set, so it serves as a metric label.
fn code(error: &KafkaError) -> String {
    error.rdkafka_error_code().map_or_else(|| "Other".to_owned(), |c| format!("{c:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_is_logged_first_then_once_per_window_with_what_it_held_back() {
        let log = ErrorLog::producer();
        let start = Instant::now();
        let at = |secs: u64| start + Duration::from_secs(secs);
        assert_eq!(log.note("AllBrokersDown", at(0)), Line::First);
        assert_eq!(log.note("AllBrokersDown", at(1)), Line::Held);
        assert_eq!(log.note("AllBrokersDown", at(29)), Line::Held);
        // Another kind is not held back by the first.
        assert_eq!(log.note("BrokerTransportFailure", at(29)), Line::First);
        assert_eq!(log.note("AllBrokersDown", at(30)), Line::After(2));
        assert_eq!(log.note("AllBrokersDown", at(31)), Line::Held);
        // After a quiet spell, the next report is logged at once, holding nothing.
        assert_eq!(log.note("BrokerTransportFailure", at(100)), Line::After(0));
    }

    #[test]
    fn the_code_names_librdkafkas_error() {
        use rdkafka::types::RDKafkaErrorCode;
        let down = KafkaError::MessageConsumption(RDKafkaErrorCode::AllBrokersDown);
        assert_eq!(code(&down), "AllBrokersDown");
        assert_eq!(code(&KafkaError::Canceled), "Other");
    }
}

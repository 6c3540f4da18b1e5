//! Kafka: producer and consumer setup, publishing, librdkafka's errors in the log, one pass
//! over a dead-letter topic (`letters`, for redrives), the records of topics as JSON lines
//! (`tap`), and the embedded broker of `switchyard dev`.

pub mod consumer;
pub mod embedded;
pub mod errors;
pub mod letters;
pub mod producer;
pub mod tap;

pub use embedded::EmbeddedBroker;
pub use producer::{Published, publish_all};

/// What librdkafka says against one `kafka.properties` entry (an unknown name, a value of the
/// wrong kind, a feature not built in), without creating a client or touching the network:
/// `validate` then refuses what `serve` would fail to start with.
pub fn property_error(name: &str, value: &str) -> Option<String> {
    let mut probe = rdkafka::ClientConfig::new();
    probe.set(name, value);
    match probe.create_native_config() {
        // librdkafka reads an integer property into a C `int` without a word when it is larger
        // (`message.timeout.ms: 4294968296` becomes 1000), and with `strtol`'s base 0, so a
        // leading zero makes it octal (`010` becomes 8): it must read back as written.
        Ok(native) => match (value.trim().parse::<i64>(), native.get(name).map(|v| v.parse::<i64>())) {
            (Ok(written), Ok(Ok(read))) if written != read => Some(match i32::try_from(written) {
                Err(_) => format!(
                    "{written} is beyond what librdkafka holds for it (at most {}; it would read {read})",
                    i32::MAX
                ),
                Ok(_) => format!(
                    "librdkafka would read '{}' as {read} (a leading 0 is octal to it): write {written} without the leading zeros",
                    value.trim()
                ),
            }),
            _ => None,
        },
        Err(rdkafka::error::KafkaError::ClientConfig(_, description, _, _)) => Some(description),
        Err(e) => Some(e.to_string()),
    }
}

/// What is wrong with a `kafka.brokers` list, as librdkafka would only show it in its logs
/// (it takes a blank list, or `kafka:notaport` as port 0, and retries forever). Entries are
/// `host[:port]`, optionally `protocol://` first, separated by commas.
pub fn brokers_error(list: &str) -> Option<String> {
    let entries: Vec<&str> = list.split(',').map(str::trim).filter(|e| !e.is_empty()).collect();
    if entries.is_empty() {
        return Some("kafka.brokers is empty: give the host:port of at least one broker".into());
    }
    for entry in entries {
        let address = entry.split_once("://").map_or(entry, |(_, a)| a);
        let (host, port) = match address.strip_prefix('[') {
            Some(v6) => match v6.split_once(']') {
                Some((host, rest)) => (host, rest.strip_prefix(':')),
                None => return Some(format!("kafka.brokers: '{entry}' has no closing ']'")),
            },
            // Several ':' without brackets: a bare IPv6 address, which librdkafka reads itself.
            None if address.matches(':').count() > 1 => continue,
            None => match address.split_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (address, None),
            },
        };
        if host.is_empty() || host.contains(char::is_whitespace) {
            return Some(format!("kafka.brokers: '{entry}' has no host"));
        }
        if port.is_some_and(|p| p.parse::<u16>().map_or(true, |p| p == 0)) {
            return Some(format!("kafka.brokers: '{entry}': the port is not a number from 1 to 65535"));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::{brokers_error, property_error};

    #[test]
    fn integer_properties_must_read_back_as_written() {
        assert_eq!(property_error("message.timeout.ms", "30000"), None);
        assert_eq!(property_error("linger.ms", "0"), None);
        let wrapped = property_error("message.timeout.ms", "4294968296").unwrap();
        assert!(wrapped.contains("beyond") && wrapped.contains("it would read 1000"), "{wrapped}");
        let octal = property_error("queue.buffering.max.messages", "010").unwrap();
        assert!(octal.contains("as 8") && octal.contains("write 10 without the leading zeros"), "{octal}");
        assert!(!octal.contains("beyond"), "{octal}");
    }

    #[test]
    fn broker_lists_are_host_port_pairs() {
        for good in ["localhost:9092", "a:9092, b:9093", "kafka", "SSL://k.example:9093", "[::1]:9092", "::1", "a:1,"] {
            assert_eq!(brokers_error(good), None, "{good}");
        }
        assert!(brokers_error("  ").unwrap().contains("empty"));
        assert!(brokers_error(" , ").unwrap().contains("empty"));
        assert!(brokers_error("kafka:notaport").unwrap().contains("'kafka:notaport': the port is not a number"));
        assert!(brokers_error("a:9092,b:0").unwrap().contains("'b:0'"));
        assert!(brokers_error("a:99999").is_some());
        assert!(brokers_error(":9092").unwrap().contains("has no host"));
        assert!(brokers_error("[::1:9092").unwrap().contains("no closing"));
    }
}

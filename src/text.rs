//! Text in answers and logs: quoting what a sender controls (a payload's values and member
//! names, a header's value), clipped so that whatever is sent a message stays short; and an
//! error with its causes on one line.

use std::borrow::Cow;

/// How much of a payload's value (or a header's) an error quotes.
pub const QUOTED_VALUE: usize = 64;

/// How much of an event id (a payload's, or an event's `event_id` header) answers and logs
/// show; real ids are far shorter.
pub const QUOTED_ID: usize = 128;

/// [`clip`] for a `String` that is usually short enough already: kept as it is then.
pub fn clip_owned(text: String, max: usize) -> String {
    match clip(&text, max) {
        Cow::Borrowed(_) => text,
        Cow::Owned(shorter) => shorter,
    }
}

/// `text` cut after `max` characters, with `…` where it was cut.
pub fn clip(text: &str, max: usize) -> Cow<'_, str> {
    // No more characters than bytes: the common, short text is not walked.
    if text.len() <= max {
        return text.into();
    }
    match text.char_indices().nth(max) {
        Some((end, _)) => format!("{}…", &text[..end]).into(),
        None => text.into(),
    }
}

/// An error and its causes, `: `-separated; a cause whose text the line already ends with is
/// left out (librdkafka's errors repeat their code as their cause).
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let cause = s.to_string();
        if !text.ends_with(&cause) {
            text.push_str(": ");
            text.push_str(&cause);
        }
        source = s.source();
    }
    text
}

/// `url` up to its `?`: a URL to name in logs and dead letters, where a key in its query
/// would otherwise travel.
pub fn without_query(url: &str) -> &str {
    url.split_once('?').map_or(url, |(path, _)| path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clips_after_max_characters_not_bytes() {
        assert_eq!(clip("abc", 3), "abc");
        assert_eq!(clip("abcd", 3), "abc…");
        assert_eq!(clip(&"é".repeat(64), 64), "é".repeat(64));
        assert_eq!(clip(&"é".repeat(65), 64), format!("{}…", "é".repeat(64)));
        assert_eq!(clip_owned("abcd".into(), 3), "abc…");
    }

    #[test]
    fn an_error_chain_names_each_cause_once() {
        use rdkafka::error::KafkaError;
        use rdkafka::types::RDKafkaErrorCode;
        let kafka = KafkaError::MetadataFetch(RDKafkaErrorCode::BrokerTransportFailure);
        let e = anyhow::Error::new(kafka).context("cannot reach the brokers");
        assert_eq!(
            error_chain(e.as_ref()),
            "cannot reach the brokers: Meta data fetch error: BrokerTransportFailure (Local: Broker transport failure)"
        );
        let io = std::io::Error::other("refused");
        assert_eq!(error_chain(anyhow::Error::new(io).context("no call").as_ref()), "no call: refused");
    }
}

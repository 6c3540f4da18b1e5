//! W3C trace context: the `traceparent` header carried from the webhook into the Kafka
//! headers and from there onto the dispatcher's call, keeping the trace id.

/// A parsed `traceparent`: version 00, trace id, parent (span) id, flags.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceParent {
    pub trace_id: String,
    pub span_id: String,
    pub flags: String,
}

impl TraceParent {
    /// Parses a `traceparent` value; `None` if it is not a valid version-00 header.
    pub fn parse(value: &str) -> Option<TraceParent> {
        let mut parts = value.trim().split('-');
        let (version, trace, span, flags) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        let hex =
            |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        let valid = version == "00"
            && parts.next().is_none()
            && hex(trace, 32)
            && hex(span, 16)
            && hex(flags, 2)
            && trace.bytes().any(|b| b != b'0')
            && span.bytes().any(|b| b != b'0');
        valid.then(|| TraceParent { trace_id: trace.to_owned(), span_id: span.to_owned(), flags: flags.to_owned() })
    }

    /// A new trace (sampled), for requests that arrive without one.
    pub fn fresh() -> TraceParent {
        TraceParent { trace_id: hex::encode(nonzero::<16>()), span_id: hex::encode(nonzero::<8>()), flags: "01".into() }
    }

    /// The same trace with a new span id: what this hop passes on.
    pub fn child(&self) -> TraceParent {
        TraceParent { span_id: hex::encode(nonzero::<8>()), ..self.clone() }
    }

    /// The incoming header's context, or a fresh one.
    pub fn from_header(value: Option<&str>) -> TraceParent {
        value.and_then(TraceParent::parse).unwrap_or_else(TraceParent::fresh)
    }
}

impl std::fmt::Display for TraceParent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "00-{}-{}-{}", self.trace_id, self.span_id, self.flags)
    }
}

fn nonzero<const N: usize>() -> [u8; N] {
    loop {
        let bytes: [u8; N] = rand::random();
        if bytes.iter().any(|b| *b != 0) {
            return bytes;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_valid_headers_and_refuses_the_rest() {
        let v = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let t = TraceParent::parse(v).unwrap();
        assert_eq!(t.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(t.to_string(), v);
        let child = t.child();
        assert_eq!(child.trace_id, t.trace_id);
        assert_ne!(child.span_id, t.span_id);
        for bad in [
            "",
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
        ] {
            assert!(TraceParent::parse(bad).is_none(), "{bad}");
        }
        assert!(TraceParent::parse(&TraceParent::fresh().to_string()).is_some());
    }
}

//! W3C trace context: the `traceparent` header carried from the webhook into the Kafka
//! headers and from there onto the dispatcher's call, keeping the trace id.

use std::fmt;

/// A parsed `traceparent`: version 00, trace id, parent (span) id, flags. Held as bytes, so
/// making and passing one on allocates nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TraceParent {
    pub trace_id: Hex<16>,
    pub span_id: Hex<8>,
    pub flags: Hex<1>,
}

/// Bytes shown as lower-case hex.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hex<const N: usize>(pub [u8; N]);

impl<const N: usize> Hex<N> {
    /// Exactly `2 * N` lower-case hex digits.
    fn parse(s: &str) -> Option<Hex<N>> {
        let digit = |b: u8| match b {
            b'0'..=b'9' => Some(b - b'0'),
            b'a'..=b'f' => Some(b - b'a' + 10),
            _ => None,
        };
        let s = s.as_bytes();
        if s.len() != 2 * N {
            return None;
        }
        let mut out = [0u8; N];
        for (i, pair) in s.chunks_exact(2).enumerate() {
            out[i] = digit(pair[0])? << 4 | digit(pair[1])?;
        }
        Some(Hex(out))
    }

    fn is_zero(&self) -> bool {
        self.0.iter().all(|b| *b == 0)
    }

    /// Writes the `2 * N` digits into `out`, which must be that long.
    fn write_to(&self, out: &mut [u8]) {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        for (pair, b) in out.chunks_exact_mut(2).zip(&self.0) {
            pair[0] = DIGITS[(b >> 4) as usize];
            pair[1] = DIGITS[(b & 15) as usize];
        }
    }
}

impl<const N: usize> fmt::Display for Hex<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = [0u8; 64];
        let n = N.min(32);
        self.write_to(&mut buf[..2 * n]);
        f.write_str(std::str::from_utf8(&buf[..2 * n]).unwrap_or_default())
    }
}

impl TraceParent {
    /// Parses a `traceparent` value; `None` if it is not a valid version-00 header.
    pub fn parse(value: &str) -> Option<TraceParent> {
        let mut parts = value.trim().split('-');
        let (version, trace, span, flags) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        if version != "00" || parts.next().is_some() {
            return None;
        }
        let t = TraceParent { trace_id: Hex::parse(trace)?, span_id: Hex::parse(span)?, flags: Hex::parse(flags)? };
        (!t.trace_id.is_zero() && !t.span_id.is_zero()).then_some(t)
    }

    /// A new trace (sampled), for requests that arrive without one.
    pub fn fresh() -> TraceParent {
        TraceParent { trace_id: Hex(nonzero()), span_id: Hex(nonzero()), flags: Hex([1]) }
    }

    /// The same trace with a new span id: what this hop passes on.
    pub fn child(&self) -> TraceParent {
        TraceParent { span_id: Hex(nonzero()), ..*self }
    }

    /// The incoming header's context, or a fresh one.
    pub fn from_header(value: Option<&str>) -> TraceParent {
        value.and_then(TraceParent::parse).unwrap_or_else(TraceParent::fresh)
    }
}

impl fmt::Display for TraceParent {
    /// `00-<trace id>-<span id>-<flags>`, written in one piece (this runs once per webhook).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = *b"00-00000000000000000000000000000000-0000000000000000-00";
        self.trace_id.write_to(&mut buf[3..35]);
        self.span_id.write_to(&mut buf[36..52]);
        self.flags.write_to(&mut buf[53..55]);
        f.write_str(std::str::from_utf8(&buf).unwrap_or_default())
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
        assert_eq!(t.trace_id.to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
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
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e47g6-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1",
        ] {
            assert!(TraceParent::parse(bad).is_none(), "{bad}");
        }
        assert!(TraceParent::parse(&TraceParent::fresh().to_string()).is_some());
    }
}

//! Reading a request body: capped in size, bounded in time, into one buffer.

use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use tokio::time::Instant;

#[derive(Debug)]
pub enum BodyError {
    /// Over the limit: the rest is not read.
    TooLarge,
    /// The sender did not finish within the read timeout.
    Timeout,
    /// The connection failed mid-body.
    Broken(String),
}

/// Reads the whole body, refusing more than `limit` bytes or arriving after `deadline`.
/// `expected` (the declared length) sizes the buffer once; a body that arrives in one frame
/// is kept as it came, without a copy.
pub async fn read(
    body: Incoming,
    limit: usize,
    expected: Option<usize>,
    deadline: Instant,
) -> Result<Bytes, BodyError> {
    tokio::time::timeout_at(deadline, collect(body, limit, expected)).await.unwrap_or(Err(BodyError::Timeout))
}

async fn collect(mut body: Incoming, limit: usize, expected: Option<usize>) -> Result<Bytes, BodyError> {
    let mut first: Option<Bytes> = None;
    let mut buf = BytesMut::new();
    let mut len = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| BodyError::Broken(e.to_string()))?;
        let Ok(data) = frame.into_data() else { continue }; // trailers
        len += data.len();
        if len > limit {
            return Err(BodyError::TooLarge);
        }
        match first.take() {
            None if buf.is_empty() => first = Some(data),
            None => buf.extend_from_slice(&data),
            Some(earlier) => {
                buf.reserve(expected.unwrap_or(0).clamp(len, limit));
                buf.extend_from_slice(&earlier);
                buf.extend_from_slice(&data);
            }
        }
    }
    Ok(first.unwrap_or_else(|| buf.freeze()))
}

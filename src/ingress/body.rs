//! Reading a request body: capped in size, bounded in time, into one buffer.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper::body::Incoming;

#[derive(Debug)]
pub enum BodyError {
    /// Over the limit: the rest is not read.
    TooLarge,
    /// The sender did not finish within the read timeout.
    Timeout,
    /// The connection failed mid-body.
    Broken(String),
}

/// Reads the whole body, refusing more than `limit` bytes or more than `timeout`.
pub async fn read(body: Incoming, limit: usize, timeout: Duration) -> Result<Bytes, BodyError> {
    match tokio::time::timeout(timeout, Limited::new(body, limit).collect()).await {
        Err(_) => Err(BodyError::Timeout),
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(e)) if e.downcast_ref::<LengthLimitError>().is_some() => Err(BodyError::TooLarge),
        Ok(Err(e)) => Err(BodyError::Broken(e.to_string())),
    }
}

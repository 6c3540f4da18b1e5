//! `benchkit sink`: the order service of the dispatcher benchmark. Answers every call with 200
//! after `--delay-ms`, checks that each key's `transaction_id` sequence never goes backwards,
//! and once `--expect` calls have arrived prints calls/s (first to last call) and exits.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::json;

#[derive(clap::Args)]
pub struct Args {
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: String,
    #[arg(long, default_value_t = 0)]
    delay_ms: u64,
    /// Calls to wait for.
    #[arg(long)]
    expect: u64,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 600)]
    timeout: u64,
}

#[derive(Default)]
struct Seen {
    calls: u64,
    first: Option<Instant>,
    last: Option<Instant>,
    /// Highest sequence seen per key.
    seq: HashMap<String, u64>,
    out_of_order: u64,
    redelivered: u64,
}

pub async fn run(args: Args) -> Result<(), String> {
    let listener = tokio::net::TcpListener::bind(&args.listen).await.map_err(|e| e.to_string())?;
    println!("{}", listener.local_addr().map_err(|e| e.to_string())?);
    let seen = Arc::new(Mutex::new(Seen::default()));
    let done = Arc::new(tokio::sync::Notify::new());
    let delay = Duration::from_millis(args.delay_ms);
    let expect = args.expect;
    let accept = {
        let (seen, done) = (seen.clone(), done.clone());
        async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { continue };
                let _ = stream.set_nodelay(true);
                let (seen, done) = (seen.clone(), done.clone());
                let service = service_fn(move |req: Request<hyper::body::Incoming>| {
                    let (seen, done) = (seen.clone(), done.clone());
                    async move {
                        let body = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
                        if !delay.is_zero() {
                            tokio::time::sleep(delay).await;
                        }
                        record(&seen, &body, expect, &done);
                        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"{}"))))
                    }
                });
                tokio::spawn(
                    hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service),
                );
            }
        }
    };
    tokio::spawn(accept);
    if tokio::time::timeout(Duration::from_secs(args.timeout), done.notified()).await.is_err() {
        return Err(format!("timed out with {} of {} calls", seen.lock().unwrap().calls, expect));
    }
    let s = seen.lock().unwrap();
    let secs = match (s.first, s.last) {
        (Some(a), Some(b)) => (b - a).as_secs_f64().max(1e-6),
        _ => 0.0,
    };
    println!(
        "{}",
        json!({"calls": s.calls, "seconds": secs, "calls_per_sec": s.calls as f64 / secs,
               "delay_ms": args.delay_ms, "out_of_order": s.out_of_order, "redelivered": s.redelivered})
    );
    Ok(())
}

fn record(seen: &Mutex<Seen>, body: &[u8], expect: u64, done: &tokio::sync::Notify) {
    let tx = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("transaction_id").and_then(|t| t.as_str()).map(str::to_owned));
    let mut s = seen.lock().unwrap();
    let now = Instant::now();
    s.first.get_or_insert(now);
    s.last = Some(now);
    s.calls += 1;
    if let Some((key, seq)) = tx.as_deref().and_then(|t| t.rsplit_once(':')) {
        let seq: u64 = seq.parse().unwrap_or(0);
        match s.seq.get(key).copied() {
            Some(prev) if seq < prev => s.out_of_order += 1,
            Some(prev) if seq == prev => s.redelivered += 1,
            _ => {
                s.seq.insert(key.to_owned(), seq);
            }
        }
    }
    if s.calls == expect {
        done.notify_one();
    }
}

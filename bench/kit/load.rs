//! `benchkit load`: distinct, validly signed Stripe webhooks over keep-alive HTTP/1.1.
//!
//! Every request gets its own event id and order id, signed at send time, so nothing can be
//! cached or deduplicated. Without `--rate` it is a closed loop (each connection sends as soon
//! as its previous answer came): that measures saturation. With `--rate` it is an open loop:
//! request `i` is due at `start + i / rate`, and its latency counts from that moment, so a
//! stalled server is charged for the requests it kept waiting (no coordinated omission); only
//! the lateness of tokio's millisecond timer in waking an idle connection is not charged.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;
use serde_json::json;
use switchyard::pipeline::verify::stripe_signature;

#[derive(clap::Args)]
pub struct Args {
    /// The webhook URL, `http://host:port/path`.
    #[arg(long)]
    url: String,
    /// The Stripe endpoint secret the server checks.
    #[arg(long, env = "BENCH_SECRET")]
    secret: String,
    /// The payload to vary (its `id` and order id are replaced per request).
    #[arg(long, default_value = "samples/stripe/checkout_session_completed.json")]
    payload: String,
    /// Concurrent keep-alive connections.
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// Requests per second (open loop); without it, as fast as answers come (closed loop).
    #[arg(long)]
    rate: Option<f64>,
    /// Seconds measured.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Seconds sent before measuring (connections warm, producer batching settled).
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// A prefix for event ids, so several runs against one topic stay distinct.
    #[arg(long, default_value = "bench")]
    run_id: String,
    /// Also write each measured request as `due_us latency_us` (microseconds from the start of
    /// measuring) to this file, to see when the slow answers came.
    #[arg(long)]
    timeline: Option<String>,
}

/// A request body with its event id and order id left as holes (in document order).
struct Template {
    parts: [String; 3],
    /// True when the order id's hole comes before the event id's.
    order_first: bool,
}

impl Template {
    fn load(path: &str) -> Result<Template, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
        let mut doc: serde_json::Value = serde_json::from_str(&text).map_err(|e| format!("{path}: {e}"))?;
        doc["id"] = json!("@@ID@@");
        doc["data"]["object"]["metadata"]["order_id"] = json!("@@ORDER@@");
        let text = doc.to_string();
        let (id_at, order_at) = (text.find("@@ID@@").ok_or("no id")?, text.find("@@ORDER@@").ok_or("no order")?);
        let order_first = order_at < id_at;
        let (first, second) = if order_first { ("@@ORDER@@", "@@ID@@") } else { ("@@ID@@", "@@ORDER@@") };
        let (a, rest) = text.split_once(first).ok_or("no first hole")?;
        let (b, c) = rest.split_once(second).ok_or("no second hole")?;
        Ok(Template { parts: [a.to_string(), b.to_string(), c.to_string()], order_first })
    }

    fn render(&self, run: &str, n: u64) -> Vec<u8> {
        let [a, b, c] = &self.parts;
        let (id, order) = (format!("evt_{run}_{n:010}"), format!("{run}-{}", n % 10_000));
        let (x, y) = if self.order_first { (order, id) } else { (id, order) };
        format!("{a}{x}{b}{y}{c}").into_bytes()
    }
}

/// tokio's timer fires on whole milliseconds, so a sleep ends up to this long after its deadline.
const TIMER_GRANULARITY: Duration = Duration::from_millis(1);

/// Waits for `due`; returns when the request counts from. A connection still busy at `due`
/// sends at once and the wait for it counts (the server kept the request waiting: no
/// coordinated omission). A connection that slept counts from its wake-up, up to the timer's
/// granularity after `due`: that lateness is the generator's timer, not the server; a later
/// wake-up (the machine too busy to run the generator) still counts.
async fn wait_until(due: Instant) -> Instant {
    if Instant::now() >= due {
        return due;
    }
    tokio::time::sleep_until(due.into()).await;
    Instant::now().min(due + TIMER_GRANULARITY)
}

#[derive(Default)]
struct Tally {
    ok: u64,
    other: std::collections::BTreeMap<String, u64>,
    /// Latencies of measured requests, microseconds.
    latencies: Vec<u32>,
    /// With `--timeline`: (due, latency) of each measured request, microseconds.
    timeline: Vec<(u64, u32)>,
}

pub async fn run(args: Args) -> Result<(), String> {
    let uri: hyper::Uri = args.url.parse().map_err(|e| format!("--url: {e}"))?;
    let authority = uri.authority().ok_or("--url needs host:port")?.to_string();
    let template = Arc::new(Template::load(&args.payload)?);
    let secret = Arc::new(args.secret.into_bytes());
    let next = Arc::new(AtomicU64::new(0));
    let start = Instant::now() + Duration::from_millis(200);
    let measure_from = start + Duration::from_secs_f64(args.warmup);
    let end = measure_from + Duration::from_secs_f64(args.duration);
    let mut tasks = Vec::new();
    for _ in 0..args.connections {
        let (uri, authority, template, secret, next) =
            (uri.clone(), authority.clone(), template.clone(), secret.clone(), next.clone());
        let (rate, run_id, keep_timeline) = (args.rate, args.run_id.clone(), args.timeline.is_some());
        tasks.push(tokio::spawn(async move {
            let mut tally = Tally::default();
            let stream = tokio::net::TcpStream::connect(&authority).await.map_err(|e| e.to_string())?;
            stream.set_nodelay(true).map_err(|e| e.to_string())?;
            let (mut send, conn) =
                hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.map_err(|e| e.to_string())?;
            tokio::spawn(conn);
            tokio::time::sleep_until(start.into()).await;
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                let due = match rate {
                    Some(r) => start + Duration::from_secs_f64(n as f64 / r),
                    None => Instant::now(),
                };
                if due >= end {
                    break;
                }
                let from = wait_until(due).await;
                let body = template.render(&run_id, n);
                let t = switchyard::ingress::unix_now();
                let req = Request::post(&uri)
                    .header("host", &authority)
                    .header("content-type", "application/json")
                    .header("stripe-signature", stripe_signature(&secret, t, &body))
                    .body(Full::new(Bytes::from(body)))
                    .map_err(|e| e.to_string())?;
                send.ready().await.map_err(|e| e.to_string())?;
                let res = send.send_request(req).await.map_err(|e| e.to_string())?;
                let status = res.status();
                res.into_body().collect().await.map_err(|e| e.to_string())?;
                if due < measure_from {
                    continue;
                }
                if status == 200 {
                    tally.ok += 1;
                } else {
                    *tally.other.entry(status.as_u16().to_string()).or_default() += 1;
                }
                let latency = from.elapsed().as_micros().min(u32::MAX as u128) as u32;
                tally.latencies.push(latency);
                if keep_timeline {
                    tally.timeline.push(((from - measure_from).as_micros() as u64, latency));
                }
            }
            Ok::<Tally, String>(tally)
        }));
    }
    let mut all = Tally::default();
    for task in tasks {
        let t = task.await.map_err(|e| e.to_string())??;
        all.ok += t.ok;
        for (k, v) in t.other {
            *all.other.entry(k).or_default() += v;
        }
        all.latencies.extend(t.latencies);
        all.timeline.extend(t.timeline);
    }
    if let Some(path) = &args.timeline {
        all.timeline.sort_unstable();
        let text: String = all.timeline.iter().map(|(due, l)| format!("{due} {l}\n")).collect();
        std::fs::write(path, text).map_err(|e| format!("{path}: {e}"))?;
    }
    all.latencies.sort_unstable();
    let pct = |p: f64| -> f64 {
        if all.latencies.is_empty() {
            return 0.0;
        }
        let i = ((p / 100.0) * (all.latencies.len() - 1) as f64).round() as usize;
        all.latencies[i] as f64 / 1000.0
    };
    let summary = json!({
        "mode": if args.rate.is_some() { "open" } else { "closed" },
        "target_rate": args.rate,
        "connections": args.connections,
        "seconds": args.duration,
        "ok": all.ok,
        "ok_per_sec": all.ok as f64 / args.duration,
        "other": all.other,
        "p50_ms": pct(50.0),
        "p99_ms": pct(99.0),
        "p999_ms": pct(99.9),
        "max_ms": all.latencies.last().map_or(0.0, |m| *m as f64 / 1000.0),
    });
    println!("{summary}");
    Ok(())
}

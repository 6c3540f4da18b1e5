//! The "limit" program of the ingress benchmark: the least a Rust webhook-to-Kafka service can
//! do. hyper + rdkafka, no signature check, no parsing, no validation, no mapping: it publishes
//! the raw body with the same producer and allocator settings as Switchyard and answers 200
//! once the broker acknowledged it. Switchyard's figures are quoted as a fraction of this one's.
//!
//! `limit <listen addr> <brokers> <topic>`

use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use rdkafka::ClientConfig;
use rdkafka::producer::{FutureProducer, FutureRecord};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    // The same C allocator setting as Switchyard (see `switchyard::malloc`): it spares
    // librdkafka's heap the same page faults here.
    switchyard::malloc::keep_heap_pad();
    tokio::runtime::Runtime::new().expect("runtime").block_on(serve());
}

async fn serve() {
    let args: Vec<String> = std::env::args().collect();
    let [_, listen, brokers, topic] = args.as_slice() else {
        eprintln!("usage: limit <listen addr> <brokers> <topic>");
        std::process::exit(2);
    };
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", std::env::var("LINGER_MS").unwrap_or_else(|_| "0.2".into()))
        .set("compression.type", "lz4")
        .set("message.timeout.ms", "10000")
        .create()
        .expect("producer");
    let topic: &'static str = Box::leak(topic.clone().into_boxed_str());
    let listener = tokio::net::TcpListener::bind(listen).await.expect("bind");
    println!("{}", listener.local_addr().expect("addr"));
    // SIGTERM ends it normally, so an instrumented build (bench/build-pgo) writes its profile.
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("signal");
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(_) => continue,
            },
            _ = term.recv() => return,
        };
        let _ = stream.set_nodelay(true);
        let producer = producer.clone();
        let service = service_fn(move |req: Request<hyper::body::Incoming>| {
            let producer = producer.clone();
            async move {
                let body = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
                let record = FutureRecord::<(), _>::to(topic).payload(body.as_ref());
                // librdkafka copies the record when it is queued: the body is freed before the
                // wait for the broker, as Switchyard frees its events.
                let delivery = producer.send_result(record).ok();
                drop(body);
                let acknowledged = match delivery {
                    Some(delivery) => matches!(delivery.await, Ok(Ok(_))),
                    None => false,
                };
                let status = if acknowledged { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
                let mut res = Response::new(Full::new(Bytes::from_static(b"{\"status\":\"accepted\"}")));
                *res.status_mut() = status;
                Ok::<_, Infallible>(res)
            }
        });
        tokio::spawn(hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service));
    }
}

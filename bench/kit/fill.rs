//! `benchkit fill`: writes `--events` canonical `payment_successful` events to a topic, spread
//! over `--keys` order ids, each carrying its per-key sequence number in `transaction_id`
//! (`<key>:<seq>`) so the sink can check per-key order.

use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use serde_json::json;

#[derive(clap::Args)]
pub struct Args {
    #[arg(long)]
    brokers: String,
    #[arg(long)]
    topic: String,
    #[arg(long, default_value_t = 20_000)]
    events: u64,
    #[arg(long, default_value_t = 1_000)]
    keys: u64,
}

pub async fn run(args: Args) -> Result<(), String> {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &args.brokers)
        .set("linger.ms", "20")
        .set("queue.buffering.max.messages", "1000000")
        .create()
        .map_err(|e| e.to_string())?;
    let mut pending = Vec::with_capacity(args.events as usize);
    for n in 0..args.events {
        let (key, seq) = (format!("order-{}", n % args.keys), n / args.keys);
        let value = json!({
            "event_type": "payment_successful", "event_timestamp": "2023-11-06T14:30:00Z",
            "order_id": key, "customer_id": "789", "payment_amount": 100.0, "payment_method": "Credit Card",
            "transaction_id": format!("{key}:{seq}"), "currency": "USD", "payment_status": "Success",
        })
        .to_string();
        let event_id = format!("evt_fill_{n}");
        let headers = OwnedHeaders::new()
            .insert(Header { key: "event_id", value: Some(event_id.as_bytes()) })
            .insert(Header { key: "event_type", value: Some(b"payment_successful".as_slice()) });
        let record = FutureRecord::to(&args.topic).key(&key).payload(&value).headers(headers);
        pending.push(producer.send_result(record).map_err(|(e, _)| e.to_string())?);
    }
    for delivery in pending {
        delivery.await.map_err(|_| "delivery canceled".to_string())?.map_err(|(e, _)| e.to_string())?;
    }
    producer.flush(Duration::from_secs(10)).map_err(|e| e.to_string())?;
    println!("{}", json!({"filled": args.events, "keys": args.keys, "topic": args.topic}));
    Ok(())
}

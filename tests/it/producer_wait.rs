//! The producer waits for the broker without burning a core (the fix in vendor/patches/).
//!
//! An idempotent producer sends nothing more to a partition while 5 of its messages are in
//! flight. Unpatched librdkafka still asks its broker thread to wake at once for the messages
//! queued behind them, so the thread polls with a zero timeout until the acknowledgement comes:
//! a whole core for a round trip. Here the broker answers after 400 ms, and the thread's CPU
//! time over that wait is read from /proc. Its own test binary, so no other test's clients run.

use std::time::{Duration, Instant};

use rdkafka::mocking::MockCluster;
use rdkafka::producer::FutureRecord;
use switchyard::kafka::producer::EventProducer;
use switchyard::routes::KafkaSettings;

const TOPIC: &str = "waits";
const RTT: Duration = Duration::from_millis(400);

/// CPU time (user + system) of this process's librdkafka broker threads, in clock ticks.
fn broker_thread_ticks() -> u64 {
    let mut ticks = 0;
    for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if !comm.starts_with("rdk:broker") {
            continue;
        }
        let stat = std::fs::read_to_string(task.path().join("stat")).unwrap_or_default();
        // Fields after the parenthesised name: state is field 3, utime 14, stime 15.
        let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
        let fields: Vec<&str> = rest.split_whitespace().collect();
        ticks += fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    }
    ticks
}

fn clock_ticks_per_second() -> u64 {
    // SAFETY: sysconf only reads a system constant.
    unsafe { libc::sysconf(libc::_SC_CLK_TCK) as u64 }
}

fn send(producer: &EventProducer, n: usize) -> Vec<rdkafka::producer::DeliveryFuture> {
    (0..n)
        .map(|i| {
            let payload = format!("message {i}");
            producer.send_result(FutureRecord::<str, _>::to(TOPIC).payload(&payload)).map_err(|(e, _)| e).unwrap()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn the_broker_thread_sleeps_while_a_partition_waits_for_its_acknowledgements() {
    let cluster = MockCluster::new(1).unwrap();
    cluster.create_topic(TOPIC, 1, 1).unwrap();
    let settings = KafkaSettings {
        brokers: cluster.bootstrap_servers(),
        publish_timeout: Duration::from_secs(30),
        properties: vec![],
    };
    let producer = switchyard::kafka::producer::producer(&settings).unwrap();
    // Connected, producer id obtained: the slow broker below delays only produce requests.
    for delivery in send(&producer, 1) {
        delivery.await.unwrap().unwrap();
    }
    cluster.broker_round_trip_time(1, RTT).unwrap();

    // Ten in flight (over the limit of 5), then ten more queued behind them, lingering past
    // linger.ms while the first request waits for its answer.
    let mut deliveries = send(&producer, 10);
    tokio::time::sleep(Duration::from_millis(20)).await;
    deliveries.extend(send(&producer, 10));
    tokio::time::sleep(Duration::from_millis(20)).await;

    let (start, before) = (Instant::now(), broker_thread_ticks());
    tokio::time::sleep(RTT / 2).await;
    let (wall, used) = (start.elapsed(), broker_thread_ticks() - before);
    let cpu = Duration::from_secs_f64(used as f64 / clock_ticks_per_second() as f64);
    assert!(cpu < wall / 4, "the broker thread used {cpu:?} of CPU in {wall:?} while waiting for an acknowledgement");

    // Everything still arrives, in order.
    let mut offsets = Vec::new();
    for delivery in deliveries {
        let delivered = delivery.await.unwrap().unwrap();
        offsets.push(delivered.offset);
    }
    assert_eq!(offsets, (1..=20).collect::<Vec<i64>>());
}

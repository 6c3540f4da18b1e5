//! Dispatcher processes killed with SIGKILL: restarted, or with a second member in the group,
//! every event reaches the order service at least once, duplicates stay within the window that
//! was not yet committed, and delivery resumes within 15 s of the restart.

use std::time::{Duration, Instant};

use crate::common::*;

/// Fresh topics and group for dispatcher processes that call `orders`: the topic, and the
/// environment to start them with.
fn fresh_group(orders: &OrderService) -> (String, Vec<(&'static str, String)>) {
    let topic = unique("payments");
    create_topic(&topic, PARTITIONS);
    create_topic(&format!("{topic}.dlq"), 1);
    let env = vec![
        ("PAYMENTS_TOPIC", topic.clone()),
        ("DISPATCH_GROUP", unique("group")),
        ("ORDER_SERVICE_URL", orders.url()),
    ];
    (topic, env)
}

/// A `switchyard serve --role dispatch` process.
fn spawn_dispatcher(env: &[(&'static str, String)]) -> std::process::Child {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    spawn_switchyard(&["serve", "--role", "dispatch", "-c", "routes.yaml", "--listen", "127.0.0.1:0"], &env)
}

/// These tests time a group's recovery: run them one at a time, not competing for 2 cores.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_dispatcher_loses_nothing_after_restart() {
    let _serial = SERIAL.lock().await;
    let orders = OrderService::start(|_, _| (200, delay(40))).await;
    let (topic, env) = fresh_group(&orders);

    let keys: Vec<String> = (0..4).map(|k| format!("kill-{k}")).collect();
    let events: Vec<_> = (0..25).flat_map(|seq| keys.iter().map(move |k| payment(k, seq))).collect();
    produce(&topic, &events).await;

    let mut first = spawn_dispatcher(&env);
    orders.wait_for(30, Duration::from_secs(30)).await;
    first.kill().expect("SIGKILL");
    let killed_at = Instant::now();
    first.wait().unwrap();
    // Calls that finished within the last auto-commit interval may not be committed.
    let before_kill = orders.requests();
    let uncommitted_window =
        before_kill.iter().filter(|s| killed_at - s.at < Duration::from_millis(1500)).count() + keys.len();

    let mut second = spawn_dispatcher(&env);
    let restarted_at = Instant::now();
    let delivered_before = before_kill.len();
    let resumed = loop {
        if orders.requests().len() > delivered_before {
            break restarted_at.elapsed();
        }
        assert!(restarted_at.elapsed() < Duration::from_secs(30), "delivery did not resume");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    orders.wait_for_all(&keys, 25, Duration::from_secs(60)).await;
    second.kill().ok();
    second.wait().ok();

    let seen = orders.requests();
    let seqs = sequences(&seen);
    let duplicates = seen.len() - events.len();
    eprintln!(
        "killed after {delivered_before} calls; resumed {resumed:?} after restart; {duplicates} duplicates (window {uncommitted_window})"
    );
    for key in &keys {
        for n in 0..25 {
            assert!(seqs[key].contains(&n), "{key}#{n} never delivered: {:?}", seqs[key]);
        }
    }
    assert!(duplicates <= uncommitted_window, "{duplicates} duplicates, window {uncommitted_window}");
    assert!(resumed < Duration::from_secs(15), "resumed after {resumed:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_dispatchers_one_killed_the_other_takes_over() {
    let _serial = SERIAL.lock().await;
    let orders = OrderService::start(|_, _| (200, delay(20))).await;
    let (topic, env) = fresh_group(&orders);
    let mut first = spawn_dispatcher(&env);
    let mut second = spawn_dispatcher(&env);

    let keys: Vec<String> = (0..8).map(|k| format!("pair-{k}")).collect();
    let batch = |range: std::ops::Range<usize>| -> Vec<_> {
        range.flat_map(|seq| keys.iter().map(move |k| payment(k, seq))).collect()
    };
    produce(&topic, &batch(0..10)).await;
    orders.wait_for(40, Duration::from_secs(30)).await;
    first.kill().expect("SIGKILL");
    first.wait().unwrap();
    produce(&topic, &batch(10..20)).await;

    let all = orders.wait_for_all(&keys, 20, Duration::from_secs(60)).await;
    second.kill().ok();
    second.wait().ok();
    let seen = orders.requests();
    eprintln!("{} calls for {} events", seen.len(), keys.len() * 20);
    assert!(all, "not everything delivered: {:?}", sequences(&seen));
}

//! Hostile input over real HTTP: every case gets a precise 4xx (or a 2xx), never a 5xx and
//! never a panic, and nothing reaches the topic; a request head that never ends, or an idle
//! connection, is closed after the read timeout.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use crate::common::*;
use switchyard::app::Role;

fn signed(body: &[u8]) -> Vec<(String, String)> {
    vec![
        ("stripe-signature".into(), stripe_header(SECRET, unix_now(), body)),
        ("content-type".into(), "application/json".into()),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_bodies_get_precise_client_errors() {
    let gw = start(Role::Ingress, &[]).await;
    let url = gw.url("/webhooks/stripe");
    let deep = format!("{}{}", "[".repeat(200_000), "]".repeat(200_000)).into_bytes();
    let deep_object = format!("{}1{}", "{\"a\":".repeat(100_000), "}".repeat(100_000)).into_bytes();
    // Members no rule reads are checked for syntax and skipped, not built (no recursion):
    // there, depth is no danger. Where values are built, depth is limited.
    let deep_read =
        format!(r#"{{"data": {{"object": {{"metadata": {}1{}}}}}}}"#, "[".repeat(100_000), "]".repeat(100_000));
    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        ("nested 200 000 deep", deep, 400),
        ("objects nested 100 000 deep under a member nothing reads", deep_object, 422),
        ("nested 100 000 deep where the routes read", deep_read.into_bytes(), 400),
        ("invalid UTF-8", b"{\"id\": \"\xff\xfe\"}".to_vec(), 400),
        ("number out of range", b"{\"id\": 1e400}".to_vec(), 400),
        ("NaN", b"{\"created\": NaN}".to_vec(), 400),
        ("empty body", Vec::new(), 400),
        ("not JSON", b"hello".to_vec(), 400),
        ("null", b"null".to_vec(), 422),
        ("top-level array", b"[1, 2, 3]".to_vec(), 422),
        ("a string", b"\"evt\"".to_vec(), 422),
        ("huge integer", br#"{"id": "evt_1", "object": "event", "type": "checkout.session.completed", "created": 100000000000000000000000, "data": {"object": {}}}"#.to_vec(), 422),
    ];
    for (name, body, want) in cases {
        let headers = signed(&body);
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let res = post(&url, &headers, body).await;
        assert_eq!(res.status, want, "{name}: {}", res.body);
        assert_eq!(res.body["status"], "rejected", "{name}");
    }
    // 300 000 wrong items: the first violation is answered (the validator would build an error
    // for each item before handing out any); 100 wrong items: the first 20.
    for (items, listed, says) in [(300_000, 1, "first violation is"), (100, 20, "first 20 violations are")] {
        let wrong = serde_json::to_vec(&checkout(|e| {
            e["data"]["object"]["payment_method_types"] = serde_json::json!(vec![1; items])
        }))
        .unwrap();
        let headers = signed(&wrong);
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let res = post(&url, &headers, wrong).await;
        assert_eq!(res.status, 422, "{}", res.body);
        assert_eq!(res.body["violations"].as_array().unwrap().len(), listed);
        assert_eq!(res.body["violations"][0]["path"], "/data/object/payment_method_types/0");
        let message = res.body["message"].as_str().unwrap();
        assert!(message.ends_with(&format!("(only the {says} listed)")), "{message}");
    }
    // Duplicate keys: the last one wins (as in JavaScript); still a valid, mapped event.
    let mut text = serde_json::to_string(&checkout(|_| {})).unwrap();
    text = text.replacen("{", "{\"type\":\"customer.created\",", 1);
    let res = post(
        &url,
        &signed(text.as_bytes()).iter().map(|(k, v)| (k.as_str(), v.as_str())).collect::<Vec<_>>(),
        text.into_bytes(),
    )
    .await;
    assert_eq!(res.status, 200, "{}", res.body);
    // The server is still healthy after all of that.
    let health = reqwest::get(gw.url("/healthz")).await.unwrap();
    assert_eq!(health.status(), 200);
    let records = read_topic(&gw.topic, 2, Duration::from_secs(3));
    assert_eq!(records.len(), 1, "only the duplicate-key checkout was published");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_headers_and_thousands_of_signatures_are_refused_without_a_5xx() {
    let gw = start(Role::Ingress, &[]).await;
    let url = gw.url("/webhooks/stripe");
    let body = serde_json::to_vec(&checkout(|_| {})).unwrap();
    let filler = "x".repeat(100 * 1024);
    let client = reqwest::Client::new();
    let res = client.post(&url).header("x-filler", filler).body(body.clone()).send().await.unwrap();
    assert!(res.status().is_client_error(), "100 KB header: {}", res.status());
    let many = format!("t={}{}", unix_now(), ",v1=00".repeat(5000));
    let res = post(&url, &[("stripe-signature", &many)], body).await;
    assert_eq!(res.status, 401, "{}", res.body);
    assert_empty(&gw.topic);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_http2_connection_is_closed_after_the_read_timeout() {
    // HTTP/2 has no request heads to time out: the connection is closed once no request has
    // been open for the read timeout, as an idle HTTP/1.1 one is.
    use http_body_util::{BodyExt, Empty};
    let (_dir, path) = shipped_with(&[("read_timeout_ms: 10000", "read_timeout_ms: 1000")]);
    let gw = start_with(&path, Role::Ingress, &unique("payments"), &[]).await;
    let tcp = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    let io = hyper_util::rt::TokioIo::new(tcp);
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(hyper_util::rt::TokioExecutor::new(), io).await.unwrap();
    let started = Instant::now();
    let conn = tokio::spawn(conn);
    // Requests 600 ms apart keep it open past the timeout.
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(600)).await;
        let req =
            hyper::Request::get(format!("http://{}/healthz", gw.addr)).body(Empty::<bytes::Bytes>::new()).unwrap();
        let res = sender.send_request(req).await.expect("the connection is still open");
        assert_eq!(res.status(), 200);
        let _ = res.into_body().collect().await;
    }
    let last = Instant::now();
    let ended = tokio::time::timeout(Duration::from_secs(10), conn).await;
    assert!(ended.is_ok(), "the idle connection stayed open");
    let (idle, total) = (last.elapsed(), started.elapsed());
    assert!(idle >= Duration::from_millis(900) && idle < Duration::from_secs(5), "{idle:?}");
    assert!(total >= Duration::from_millis(2700), "{total:?}");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_bodies_time_out_with_408() {
    let (_dir, path) = shipped_with(&[("read_timeout_ms: 10000", "read_timeout_ms: 1000")]);
    let gw = start_with(&path, Role::Ingress, &unique("payments"), &[]).await;
    let addr = gw.addr;
    let started = Instant::now();
    let answer = tokio::task::spawn_blocking(move || {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(b"POST /webhooks/stripe HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"id\":").unwrap();
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        out
    })
    .await
    .unwrap();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_heads_and_idle_connections_are_closed_after_the_read_timeout() {
    let (_dir, path) = shipped_with(&[("read_timeout_ms: 10000", "read_timeout_ms: 1000")]);
    let gw = start_with(&path, Role::Ingress, &unique("payments"), &[]).await;
    let addr = gw.addr;
    // What the server sends before closing, and when it closed (a reset counts as closed).
    let until_closed = move |send: &'static [u8]| {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let started = Instant::now();
        s.write_all(send).unwrap();
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n @ 1..) = s.read(&mut buf) {
            out.extend_from_slice(&buf[..n]);
        }
        (String::from_utf8_lossy(&out).into_owned(), started.elapsed())
    };
    let (slow_head, idle) = tokio::task::spawn_blocking(move || {
        let slow_head = until_closed(b"POST /webhooks/stripe HTTP/1.1\r\nHost: x\r\nContent-Type: appl");
        let idle = until_closed(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
        (slow_head, idle)
    })
    .await
    .unwrap();
    assert_eq!(slow_head.0, "", "a head that never ends gets no answer");
    assert!(slow_head.1 >= Duration::from_millis(900) && slow_head.1 < Duration::from_secs(5), "{:?}", slow_head.1);
    assert!(idle.0.starts_with("HTTP/1.1 200"), "{}", idle.0);
    assert!(idle.1 >= Duration::from_millis(900) && idle.1 < Duration::from_secs(5), "{:?}", idle.1);
    // On one kept-alive connection, requests 600 ms apart (1.8 s in all) are all served: the
    // timeout runs from the last answer, not from the connection's start.
    let answers = tokio::task::spawn_blocking(move || {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut answers = Vec::new();
        for _ in 0..3 {
            std::thread::sleep(Duration::from_millis(600));
            s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
            let mut got = Vec::new();
            let mut buf = [0u8; 1024];
            // The answer is complete with its body, `{"status":"ok"}`.
            while !got.ends_with(b"}") {
                match s.read(&mut buf) {
                    Ok(n @ 1..) => got.extend_from_slice(&buf[..n]),
                    _ => break,
                }
            }
            answers.push(String::from_utf8_lossy(&got).into_owned());
        }
        answers
    })
    .await
    .unwrap();
    for answer in &answers {
        assert!(answer.starts_with("HTTP/1.1 200") && answer.ends_with(r#"{"status":"ok"}"#), "{answers:?}");
    }
    gw.stop().await;
}

//! Who may post: a source's `allowed_ips` (Stripe's published addresses, say), checked
//! before the body is read, against the address the request came from, or, behind
//! `ingress.trusted_proxies`, the client the proxy names in `X-Forwarded-For`.

use std::time::Duration;

use crate::common::*;
use switchyard::app::Role;

/// The shipped routes with `allowed_ips` on the Stripe source and `trusted_proxies`, both
/// from the environment (as a deployment would keep them).
async fn gateway(allowed: &str, proxies: &str) -> (tempfile::TempDir, Gateway) {
    let (dir, config) = shipped_with(&[
        ("    path: /webhooks/stripe\n", "    path: /webhooks/stripe\n    allowed_ips: [\"${STRIPE_IPS}\"]\n"),
        ("  read_timeout_ms: 10000\n", "  read_timeout_ms: 10000\n  trusted_proxies: [\"${PROXIES:-}\"]\n"),
    ]);
    let env = [("STRIPE_IPS", allowed), ("PROXIES", proxies)];
    let gw = start_with(&config, Role::Ingress, &unique("payments"), &env).await;
    (dir, gw)
}

async fn send(gw: &Gateway, forwarded_for: Option<&str>) -> Answer {
    let body = serde_json::to_vec(&checkout(|_| {})).unwrap();
    let sig = stripe_header(SECRET, unix_now(), &body);
    let mut headers = vec![("content-type", "application/json"), ("stripe-signature", sig.as_str())];
    headers.extend(forwarded_for.map(|f| ("x-forwarded-for", f)));
    post(&gw.url("/webhooks/stripe"), &headers, body).await
}

fn refused(answer: &Answer, address: &str) {
    assert_eq!(answer.status, 403, "{}", answer.body);
    assert_eq!(answer.body["reason"], "forbidden");
    let message = format!("address {address} may not post to source 'stripe' (allowed_ips)");
    assert_eq!(answer.body["message"], message.as_str());
    // The body is not read: the connection is closed instead.
    assert_eq!(answer.headers["connection"], "close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_listed_addresses_may_post_and_a_client_cannot_name_itself() {
    // Stripe's webhook addresses: this machine is not one of them.
    let (_dir, gw) = gateway("3.18.12.63, 3.130.192.231 13.235.14.237", "").await;
    refused(&send(&gw, None).await, "127.0.0.1");
    // Without trusted proxies, X-Forwarded-For is the client's own word: ignored.
    refused(&send(&gw, Some("3.18.12.63")).await, "127.0.0.1");
    assert_empty(&gw.topic);
    gw.stop().await;

    let (_dir, gw) = gateway("3.18.12.63/32, 127.0.0.0/8", "").await;
    let answer = send(&gw, None).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.body["status"], "accepted");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_a_trusted_proxy_the_client_is_the_address_it_forwards() {
    // The test is the proxy (127.0.0.1), forwarding for Stripe's address.
    let (_dir, gw) = gateway("3.18.12.63", "127.0.0.1/32").await;
    let answer = send(&gw, Some("3.18.12.63")).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    // A client that wrote Stripe's address itself: the proxy appended the real one.
    refused(&send(&gw, Some("3.18.12.63, 198.51.100.1")).await, "198.51.100.1");
    // Nothing forwarded: the proxy itself, which may not post.
    refused(&send(&gw, None).await, "127.0.0.1");
    let records = read_topic(&gw.topic, 1, Duration::from_secs(3));
    assert_eq!(records.len(), 1, "only the webhook from Stripe's address");
    gw.stop().await;
}

//! `switchyard dev` as a newcomer runs it: no Kafka, no secret set; the printed curl is
//! pasted as it is and the event is accepted.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn the_printed_curl_is_accepted() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(["dev", "--listen", &format!("127.0.0.1:{port}")])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let deadline = Instant::now() + Duration::from_secs(30);
    let (mut secret_line, mut curl) = (None, None);
    while curl.is_none() && Instant::now() < deadline {
        let Some(Ok(line)) = lines.next() else { break };
        if line.contains("using the dev secret whsec_dev_") {
            secret_line = Some(line.clone());
        }
        if line.starts_with("curl ") {
            curl = Some(line);
        }
    }
    let curl = curl.expect("dev printed a curl command");
    assert!(secret_line.is_some_and(|l| l.starts_with("STRIPE_WEBHOOK_SECRET not set")));
    assert!(curl.contains(&format!("http://127.0.0.1:{port}/webhooks/stripe")), "{curl}");
    // Paste it into a shell, as a user would.
    let out = Command::new("sh").args(["-c", &curl]).output().expect("curl runs");
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("{out:?}"));
    assert_eq!(answer["status"], "accepted", "{answer}");
    assert_eq!(answer["events"][0]["topic"], "payments");
    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let status = child.wait().unwrap();
    assert!(status.success(), "dev exits 0 on SIGTERM");
}

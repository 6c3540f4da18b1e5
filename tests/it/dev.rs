//! `switchyard dev` as a newcomer runs it: no Kafka, no secret set; the printed curl is
//! pasted as it is and the event is accepted. And the process's log: complete at exit, and
//! never in a webhook's way, even when nobody reads it.

use crate::common;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A `switchyard dev` process on the port the system gives it, in a clean environment, and what
/// it has printed: read on a thread, so a line that never comes fails the test instead of
/// hanging it.
struct Dev {
    child: std::process::Child,
    port: u16,
    /// Lines read before the port was known, handed out first.
    read: std::collections::VecDeque<String>,
    lines: std::sync::mpsc::Receiver<String>,
}

impl Dev {
    /// `dev` with the repository's `routes.yaml`, its environment only `env`.
    fn start(env: &[(&str, &str)]) -> Dev {
        Dev::start_in(Path::new(env!("CARGO_MANIFEST_DIR")), env)
    }

    /// The same, in `dir` (its `routes.yaml`); returns once it has printed where it listens.
    fn start_in(dir: &Path, env: &[(&str, &str)]) -> Dev {
        let mut child = Command::new(env!("CARGO_BIN_EXE_switchyard"))
            .args(["dev", "--listen", "127.0.0.1:0"])
            .current_dir(dir)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        std::thread::spawn(move || stdout.lines().map_while(Result::ok).try_for_each(|l| tx.send(l)));
        let mut dev = Dev { child, port: 0, read: Default::default(), lines };
        let mut read = dev.until(|l| l.starts_with("Readiness and metrics: "));
        let port = read.last().and_then(|l| l.split("://127.0.0.1:").nth(1)?.split('/').next()?.parse().ok());
        dev.port = port.unwrap_or_else(|| dev.fail(&format!("no address in {read:#?}")));
        dev.read = read.drain(..).collect();
        dev
    }

    /// The next line printed (30 s at most).
    fn line(&mut self) -> Option<String> {
        self.read.pop_front().or_else(|| self.lines.recv_timeout(Duration::from_secs(30)).ok())
    }

    /// The lines printed up to the first that `last` takes, that one included; fails the test
    /// if none comes.
    fn until(&mut self, last: impl Fn(&str) -> bool) -> Vec<String> {
        let mut read = Vec::new();
        loop {
            let Some(line) = self.line() else { self.fail(&format!("the line wanted did not come after {read:#?}")) };
            let done = last(&line);
            read.push(line);
            if done {
                return read;
            }
        }
    }

    /// The first `curl ` line from here on.
    fn curl(&mut self) -> String {
        self.until(|l| l.starts_with("curl ")).pop().unwrap()
    }

    /// Fails the test with `why` and what `dev` wrote to stderr.
    fn fail(&mut self, why: &str) -> ! {
        let _ = self.child.kill();
        let stderr = std::io::read_to_string(self.child.stderr.take().unwrap()).unwrap_or_default();
        panic!("{why}; dev's stderr: {stderr}")
    }

    /// SIGTERM; what `dev` wrote to stderr, once it has exited 0.
    fn stop(mut self) -> String {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let stderr = std::io::read_to_string(self.child.stderr.take().unwrap()).unwrap_or_default();
        let status = self.child.wait().unwrap();
        assert!(status.success(), "dev exits 0 on SIGTERM: {status:?}; stderr: {stderr}");
        stderr
    }
}

/// A test that fails half-way leaves no `dev` behind.
impl Drop for Dev {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn the_printed_curl_is_accepted() {
    let mut dev = Dev::start(&[]);
    let port = dev.port;
    let banner = dev.until(|l| l.starts_with("curl "));
    let curl = banner.last().unwrap().clone();
    let secret_line = banner.iter().find(|l| l.contains("using the dev secret whsec_"));
    assert!(secret_line.is_some_and(|l| l.starts_with("STRIPE_WEBHOOK_SECRET not set")), "{banner:#?}");
    let tap = banner.iter().find_map(|l| l.strip_prefix("What lands on its topics, as JSON lines: switchyard "));
    let metrics = format!("Readiness and metrics: http://127.0.0.1:{port}/readyz, http://127.0.0.1:{port}/metrics");
    assert!(banner.contains(&metrics), "{banner:#?}");
    assert!(curl.contains(&format!("http://127.0.0.1:{port}/webhooks/stripe")), "{curl}");
    // Paste it into a shell, as a user would.
    let out = Command::new("sh").args(["-c", &curl]).output().expect("curl runs");
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("{out:?}"));
    assert_eq!(answer["status"], "accepted", "{answer}");
    assert_eq!(answer["events"][0]["topic"], "payments");
    // The printed tap shows the event the webhook became.
    let tap = tap.expect("dev printed a tap command");
    let mut args: Vec<&str> = tap.split(' ').collect();
    args.extend(["--count", "1"]);
    let out = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(&args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_clear()
        .output()
        .expect("tap runs");
    let record: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("{out:?}"));
    assert_eq!(record["topic"], "payments", "{record}");
    assert_eq!(record["value"]["order_id"], "12345", "{record}");
    assert_eq!(record["headers"]["event_id"], answer["event_id"], "{record}");
    // A forged signature is refused, and the log says why.
    let forged = curl.replacen("v1=", "v1=00", 1);
    let out = Command::new("sh").args(["-c", &forged]).output().expect("curl runs");
    let refused: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("{out:?}"));
    assert_eq!(refused["reason"], "signature", "{refused}");
    // So is a request the ingress turns away before the pipeline.
    let url = format!("http://127.0.0.1:{port}/webhooks/stripe");
    let out = Command::new("curl").args(["-sS", &url]).output().expect("curl runs");
    assert!(String::from_utf8_lossy(&out.stdout).contains(r#""reason":"method""#), "{out:?}");
    // The log, written by a background thread, is complete at exit: one line for the webhook,
    // naming it, and the last line of the shutdown. No colour codes when not on a terminal.
    let logs = dev.stop();
    let event_id = answer["event_id"].as_str().unwrap();
    assert!(logs.lines().any(|l| l.contains("published") && l.contains(event_id) && l.contains("trace_id=")), "{logs}");
    let refusals: Vec<&str> = logs.lines().filter(|l| l.contains(" rejected ")).collect();
    let [forged, get] = refusals[..] else { panic!("{logs}") };
    assert!(forged.contains("status=401") && forged.contains("detail=signature verification failed"), "{forged}");
    assert!(get.contains("status=405") && get.contains("source=stripe") && get.contains("trace_id="), "{get}");
    assert!(logs.trim_end().ends_with("stopped"), "{logs}");
    assert!(!logs.contains('\x1b'), "{logs}");
}

#[test]
fn with_a_certificate_dev_serves_https_and_its_curl_works() {
    let tls = tempfile::tempdir().unwrap();
    let key = rcgen::generate_simple_self_signed(["localhost".to_owned()]).unwrap();
    let (cert_file, key_file) = (tls.path().join("cert.pem"), tls.path().join("key.pem"));
    std::fs::write(&cert_file, key.cert.pem()).unwrap();
    std::fs::write(&key_file, key.signing_key.serialize_pem()).unwrap();
    let env =
        [("SWITCHYARD_TLS_CERT", cert_file.to_str().unwrap()), ("SWITCHYARD_TLS_KEY", key_file.to_str().unwrap())];
    let mut dev = Dev::start(&env);
    let curl = dev.curl();
    assert!(curl.starts_with(&format!("curl -sS -k https://127.0.0.1:{}/webhooks/stripe ", dev.port)), "{curl}");
    let out = Command::new("sh").args(["-c", &curl]).output().expect("curl runs");
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("{out:?}"));
    assert_eq!(answer["status"], "accepted", "{answer}");
    dev.stop();
}

/// Any source gets a ready-to-paste request: here a Standard Webhooks source (whose secrets are
/// `whsec_<base64>`, so the generated dev secret must be one too), sending its test case's
/// payload and headers. The test stops reading stdout after the curl, as `dev | head` would:
/// the gateway keeps serving. And a dispatcher none of whose rules takes the event says why in
/// `dev`'s log.
#[test]
fn every_source_gets_a_signed_curl_from_its_test_case() {
    let dir = tempfile::tempdir().unwrap();
    let routes = r#"
sources:
  - name: sw
    path: /hooks/sw
    verify: { kind: standard-webhooks, secrets: ["${SW_SECRET}"] }
    rules:
      - name: all
        when: { all: [{ path: $.kind, equals: "it's" }] }
        emit: { topic: t, schema: any.json, value: { kind: { path: $.kind } } }
dispatch:
  - name: d
    topic: t
    group: g
    rules:
      - name: never
        when: { event_type: other }
        request: { method: POST, url: "http://127.0.0.1:9/x" }
tests:
  - { name: ignored, source: sw, body: { kind: other }, expect: { status: ignored } }
  - { name: sent, source: sw, body: { kind: "it's" }, headers: { X-Case: sent }, expect: { status: accepted } }
"#;
    std::fs::write(dir.path().join("routes.yaml"), routes).unwrap();
    std::fs::write(dir.path().join("any.json"), "{}").unwrap();
    let mut dev = Dev::start_in(dir.path(), &[]);
    let curl = dev.curl();
    assert!(curl.contains("-H 'X-Case: sent'") && curl.contains("webhook-signature: v1,"), "{curl}");
    let out = Command::new("sh").args(["-c", &curl]).output().expect("curl runs");
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("{out:?}"));
    assert_eq!(answer["status"], "accepted", "{answer}");
    let metrics = format!("http://127.0.0.1:{}/metrics", dev.port);
    let counted = r#"switchyard_dispatch_unmatched_total{dispatcher="d"} 1"#;
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        let out = Command::new("curl").args(["-sS", &metrics]).output().expect("curl runs");
        if String::from_utf8_lossy(&out.stdout).lines().any(|l| l == counted) {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let logs = dev.stop();
    let why = r#"why=rule 'never': when.event_type takes "other", and the event type ($.event_type) is missing"#;
    assert!(logs.lines().any(|l| l.contains("no rule takes the event") && l.contains(why)), "{logs}");
}

/// Adyen signs inside the body: `dev` gives the unset `ADYEN_HMAC_KEY` a hex dev key and
/// prints the test case's notification with each item signed under it, and with the Basic
/// credentials the source also asks for (`verify:` lists both; each must pass).
#[test]
fn an_adyen_source_gets_its_items_signed() {
    let dir = tempfile::tempdir().unwrap();
    let routes = r#"
sources:
  - name: adyen
    path: /hooks/adyen
    verify:
      - { kind: basic, secrets: ["adyen:${ADYEN_BASIC_SECRET}"] }
      - { kind: adyen, secrets: ["${ADYEN_HMAC_KEY}"] }
    event_type: $.eventCode
    rules:
      - name: authorised
        for_each: $.notificationItems[*].NotificationRequestItem
        when: { event_type: AUTHORISATION }
        emit: { topic: t, schema: any.json, value: { order: { path: $.merchantReference } } }
tests:
  - name: two items
    source: adyen
    body:
      live: "false"
      notificationItems:
        - NotificationRequestItem: { eventCode: AUTHORISATION, merchantReference: "1", pspReference: p1, amount: { value: 100, currency: EUR }, success: "true" }
        - NotificationRequestItem: { eventCode: AUTHORISATION, merchantReference: "2", pspReference: p2, amount: { value: 200, currency: EUR }, success: "true", additionalData: { x: y } }
    expect: { status: accepted }
"#;
    std::fs::write(dir.path().join("routes.yaml"), routes).unwrap();
    std::fs::write(dir.path().join("any.json"), "{}").unwrap();
    let mut dev = Dev::start_in(dir.path(), &[]);
    let curl = dev.curl();
    assert_eq!(curl.matches("\"hmacSignature\":").count(), 2, "{curl}");
    assert!(curl.contains("-H 'Authorization: Basic "), "{curl}");
    // Without the credentials, the signed items are not enough.
    let basic = curl.split(" -H '").find(|h| h.starts_with("Authorization: Basic ")).unwrap();
    let unauthorized = curl.replace(&format!(" -H '{}'", basic.split('\'').next().unwrap()), "");
    let out =
        Command::new("sh").args(["-c", &format!("{unauthorized} -w ' %{{http_code}}'")]).output().expect("curl runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.ends_with(" 401") && text.contains("authentication failed"), "{text}");
    let out = Command::new("sh").args(["-c", &curl]).output().expect("curl runs");
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("{out:?}"));
    dev.stop();
    assert_eq!(answer["status"], "accepted", "{answer}");
    assert_eq!(answer["events"].as_array().map(Vec::len), Some(2), "{answer}");
}

/// A source with a GET verification (Meta's): `dev` makes up its unset verify token (not a
/// variable's that has a default), prints
/// the GET that verifies the endpoint (the config's own `hub.mode` shown, the dev token too),
/// and its answer is the challenge; the signed POST from the test case is accepted as well.
#[test]
fn a_source_with_a_challenge_gets_its_verification_curl() {
    let dir = tempfile::tempdir().unwrap();
    let routes = r#"
sources:
  - name: whatsapp
    path: /hooks/whatsapp
    verify: { kind: hmac-sha256, secrets: ["${META_APP_SECRET}"] }
    challenge: { echo: hub.challenge, require: { hub.mode: subscribe, hub.verify_token: "${META_VERIFY_TOKEN}" } }
    rules:
      - name: messages
        emit: { topic: "${TOPIC_TOKEN:-t}", schema: any.json, value: { id: { path: "$.entry[0].id" } } }
tests:
  - { name: a message, source: whatsapp, body: { entry: [{ id: "1" }] }, expect: { status: accepted } }
"#;
    std::fs::write(dir.path().join("routes.yaml"), routes).unwrap();
    std::fs::write(dir.path().join("any.json"), "{}").unwrap();
    let mut dev = Dev::start_in(dir.path(), &[]);
    let port = dev.port;
    // Up to the second curl line: the GET's, then the POST's.
    let mut lines = dev.until(|l| l.starts_with("curl "));
    lines.extend(dev.until(|l| l.starts_with("curl ")));
    let Some(token) = lines.iter().find_map(|l| l.strip_prefix("META_VERIFY_TOKEN not set: using the dev token "))
    else {
        dev.fail(&format!("no dev token in {lines:#?}"))
    };
    let curls: Vec<&String> = lines.iter().filter(|l| l.starts_with("curl ")).collect();
    let [get, post] = curls[..] else { panic!("{lines:?}") };
    assert!(
        get.starts_with(&format!("curl -sS 'http://127.0.0.1:{port}/hooks/whatsapp?hub.mode=subscribe&hub.verify_token={token}&hub.challenge=dev_")),
        "{get}"
    );
    let challenge = get.trim_end_matches('\'').rsplit_once("hub.challenge=").unwrap().1.to_owned();
    let out = Command::new("sh").args(["-c", get]).output().expect("curl runs");
    assert_eq!(String::from_utf8_lossy(&out.stdout), challenge);
    let out = Command::new("sh").args(["-c", post]).output().expect("curl runs");
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("{out:?}"));
    dev.stop();
    assert_eq!(answer["status"], "accepted", "{answer}");
    // A variable with a default keeps it: only those written without one get a made-up value.
    assert_eq!(answer["events"][0]["topic"], "t", "{answer}");
}

/// A stderr nobody reads (a stuck log collector) never holds up a webhook: the lines wait in
/// the log thread's queue, not in a `write(2)` on a worker, and none of them is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stderr_nobody_reads_never_holds_up_a_webhook() {
    const WEBHOOKS: usize = 1_000; // about 200 KB of log lines: the pipe holds 64 KB
    // Nothing plays the order service: the dispatcher's retries are abandoned at shutdown.
    let env =
        [("STRIPE_WEBHOOK_SECRET", common::SECRET), ("RUST_LOG", "info"), ("SWITCHYARD_SHUTDOWN_GRACE_SECS", "1")];
    let dev = tokio::task::block_in_place(|| Dev::start(&env));
    let base = format!("http://127.0.0.1:{}", dev.port);
    let deadline = Instant::now() + Duration::from_secs(30);
    while reqwest::get(format!("{base}/readyz")).await.map_or(true, |r| !r.status().is_success()) {
        assert!(Instant::now() < deadline, "dev did not become ready");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let hook = format!("{base}/webhooks/stripe");
    let client = reqwest::Client::new();
    let sending = async {
        let mut senders = tokio::task::JoinSet::new();
        for lane in 0..8 {
            let (hook, client) = (hook.clone(), client.clone());
            senders.spawn(async move {
                for _ in (lane..WEBHOOKS).step_by(8) {
                    let body = serde_json::to_vec(&common::checkout(|_| {})).unwrap();
                    let signature = common::stripe_header(common::SECRET, common::unix_now(), &body);
                    let req = client.post(&hook).header("content-type", "application/json");
                    let res = req.header("stripe-signature", signature).body(body).send().await.unwrap();
                    assert_eq!(res.status(), 200);
                }
            });
        }
        senders.join_all().await
    };
    // Not a timing test: without the log thread this hangs for good once the pipe is full.
    let sent = tokio::time::timeout(Duration::from_secs(120), sending).await;
    let logs = tokio::task::block_in_place(|| dev.stop());
    assert!(sent.is_ok(), "webhooks stalled behind a full stderr");
    assert_eq!(logs.lines().filter(|l| l.contains(" published ")).count(), WEBHOOKS);
}

/// A reload during `dev` that adds a source with a secret of its own and a topic of its own:
/// the new variable gets the made-up value (before, the reload was refused until a restart),
/// the topic is made on the embedded broker, and the new source's curl is printed and accepted; so is
/// a source's again when its kind of signature or its test case's payload changes.
#[test]
fn a_source_added_by_a_reload_gets_its_secret_topic_and_curl() {
    let dir = tempfile::tempdir().unwrap();
    let source = |name: &str, var: &str, topic: &str| {
        format!(
            r#"
  - name: {name}
    path: /hooks/{name}
    verify: {{ kind: hmac-sha256, secrets: ["${{{var}}}"] }}
    rules:
      - name: all
        emit: {{ topic: {topic}, schema: any.json, value: {{ kind: {{ path: $.kind }} }} }}"#
        )
    };
    let case = |name: &str| {
        format!("\n  - {{ name: {name} case, source: {name}, body: {{ kind: x }}, expect: {{ status: accepted }} }}")
    };
    let first = format!("sources:{}\ntests:{}\n", source("one", "ONE_SECRET", "t"), case("one"));
    std::fs::write(dir.path().join("routes.yaml"), &first).unwrap();
    std::fs::write(dir.path().join("any.json"), "{}").unwrap();
    let mut dev = Dev::start_in(dir.path(), &[]);
    dev.curl();
    let both = format!(
        "sources:{}{}\ntests:{}{}\n",
        source("one", "ONE_SECRET", "t"),
        source("two", "TWO_SECRET", "pushes"),
        case("one"),
        case("two")
    );
    std::fs::write(dir.path().join("routes.yaml"), both).unwrap();
    // Up to the new source's curl: what the reload added.
    let printed = dev.until(|l| l.starts_with("curl "));
    let text = printed.join("\n");
    assert!(text.contains("The reloaded config adds or changes:"), "{text}");
    // Only the new variable is named: ONE_SECRET's value was printed at the start.
    assert!(printed.iter().any(|l| l.starts_with("TWO_SECRET not set: using the dev secret")), "{text}");
    assert!(!text.contains("ONE_SECRET"), "{text}");
    assert!(text.contains("/hooks/two   (source 'two')") && !text.contains("(source 'one')"), "{text}");
    let curl = printed.last().filter(|l| l.starts_with("curl ")).expect("the new source's curl");
    let out = Command::new("sh").args(["-c", curl]).output().expect("curl runs");
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("{out:?}"));
    assert_eq!(answer["status"], "accepted", "{answer}");
    assert_eq!(answer["events"][0]["topic"], "pushes", "{answer}");
    // Another kind of signature for `two`: its curl again, signed the new way.
    let resigned = source("two", "TWO_SECRET", "pushes").replace("kind: hmac-sha256", "kind: standard-webhooks");
    let edited =
        format!("sources:{}{resigned}\ntests:{}{}\n", source("one", "ONE_SECRET", "t"), case("one"), case("two"));
    std::fs::write(dir.path().join("routes.yaml"), edited).unwrap();
    let curl = dev.curl();
    assert!(curl.contains("/hooks/two") && curl.contains("webhook-signature: v1,"), "{curl}");
    let out = Command::new("sh").args(["-c", &curl]).output().expect("curl runs");
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("{out:?}"));
    assert_eq!(answer["status"], "accepted", "{answer}");
    // Another payload in `two`'s test case: its curl again, sending it; `one`'s is not reprinted.
    let case_edited = case("two").replace("kind: x", "kind: edited");
    let edited =
        format!("sources:{}{resigned}\ntests:{}{case_edited}\n", source("one", "ONE_SECRET", "t"), case("one"));
    std::fs::write(dir.path().join("routes.yaml"), edited).unwrap();
    let printed = dev.until(|l| l.starts_with("curl "));
    let text = printed.join("\n");
    assert!(text.contains("(source 'two')") && !text.contains("(source 'one')"), "{text}");
    let curl = printed.last().unwrap();
    assert!(curl.contains(r#""kind":"edited""#), "{curl}");
    let out = Command::new("sh").args(["-c", curl]).output().expect("curl runs");
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("{out:?}"));
    assert_eq!(answer["status"], "accepted", "{answer}");
    // A list of schemes whose kinds change (a token, then Basic credentials, beside the
    // signature): its curl again each time, carrying what each scheme needs.
    for (extra, says) in [
        (r#"{ kind: token, header: X-Two-Token, secrets: ["${TWO_TOKEN}"] }"#, "-H 'x-two-token: dev_"),
        (r#"{ kind: basic, secrets: ["two:${TWO_SECRET}"] }"#, "-H 'Authorization: Basic "),
    ] {
        let listed = resigned.replace(
            r#"verify: { kind: standard-webhooks, secrets: ["${TWO_SECRET}"] }"#,
            &format!(r#"verify: [{{ kind: standard-webhooks, secrets: ["${{TWO_SECRET}}"] }}, {extra}]"#),
        );
        let edited =
            format!("sources:{}{listed}\ntests:{}{case_edited}\n", source("one", "ONE_SECRET", "t"), case("one"));
        std::fs::write(dir.path().join("routes.yaml"), edited).unwrap();
        let curl = dev.curl();
        assert!(curl.contains("webhook-signature: v1,") && curl.contains(says), "{curl}");
        let out = Command::new("sh").args(["-c", &curl]).output().expect("curl runs");
        let answer: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("{out:?}"));
        assert_eq!(answer["status"], "accepted", "{answer}");
    }
    dev.stop();
}

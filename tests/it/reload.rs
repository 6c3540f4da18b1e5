//! Hot reload with a running server: a valid edit takes effect, a broken edit is refused
//! (the old routes keep serving), and so is one the listener cannot serve (client certificates
//! it does not check); traffic is never interrupted. SIGHUP through the binary.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::common::*;
use switchyard::app::Role;

/// Replaces the file the way editors and Kubernetes ConfigMaps do: write aside, rename over.
fn replace_file(path: &std::path::Path, text: &str) {
    let aside = path.with_extension("yaml.tmp");
    std::fs::write(&aside, text).unwrap();
    std::fs::rename(&aside, path).unwrap();
}

/// True once the newest record on `topic` carries `want` as its payment method.
async fn latest_method_is(topic: &str, want: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let records = read_topic(topic, usize::MAX, Duration::from_millis(700));
        // Every sample checkout has the same key, so one partition holds them in order.
        if records.iter().max_by_key(|r| r.offset).is_some_and(|r| r.value["payment_method"] == want) {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
    }
}

/// A config in a Kubernetes ConfigMap volume: its files are symlinks through `..data`, and an
/// update writes a new folder and swaps `..data` to it in one rename, changing no file named
/// `routes.yaml`. The swap reloads the routes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_config_updated_in_a_configmap_volume_is_reloaded() {
    use std::os::unix::fs::symlink;
    let topic = unique("configmap");
    let config = |path: &str| {
        format!(
            "kafka: {{ brokers: \"${{KAFKA_BROKERS}}\" }}\nsources:\n  - name: s\n    path: {path}\n    verify: {{ kind: none }}\n    rules:\n      - name: r\n        emit: {{ topic: {topic}, schema: any.json, value: {{ id: {{ path: $.id }} }} }}\n"
        )
    };
    let volume = tempfile::tempdir().unwrap();
    let v = volume.path();
    for (folder, path) in [("..2026_11_30_v1", "/hooks/v1"), ("..2026_11_30_v2", "/hooks/v2")] {
        std::fs::create_dir(v.join(folder)).unwrap();
        std::fs::write(v.join(folder).join("routes.yaml"), config(path)).unwrap();
        std::fs::write(v.join(folder).join("any.json"), "{}").unwrap();
    }
    symlink("..2026_11_30_v1", v.join("..data")).unwrap();
    symlink("..data/routes.yaml", v.join("routes.yaml")).unwrap();
    symlink("..data/any.json", v.join("any.json")).unwrap();
    let gw = start_full(&v.join("routes.yaml"), Role::Ingress, &topic, &[], true, None).await;
    let post = |path: &'static str| {
        let url = gw.url(path);
        async move {
            let req = reqwest::Client::new().post(url).header("content-type", "application/json");
            req.body(r#"{"id": "1"}"#).send().await.unwrap().status()
        }
    };
    assert_eq!(post("/hooks/v1").await, 200);

    symlink("..2026_11_30_v2", v.join("..data_tmp")).unwrap();
    std::fs::rename(v.join("..data_tmp"), v.join("..data")).unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    while post("/hooks/v2").await != 200 {
        assert!(Instant::now() < deadline, "the swapped config was never loaded");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(post("/hooks/v1").await, 404);
    gw.stop().await;
}

/// A file added to an included folder, and an edit to it, reload the routes as an edit of the
/// main file does; so does a file added to a folder a reload began to include.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_of_an_included_folder_are_watched() {
    let topic = unique("included");
    let (dir, path) = config_file(&format!(
        "kafka: {{ brokers: \"${{KAFKA_BROKERS}}\" }}\ninclude: [routes.d]\nsources:\n  - name: main\n    path: /hooks/main\n    verify: {{ kind: none }}\n    rules:\n      - name: r\n        emit: {{ topic: {topic}, schema: own/any.json, value: {{ id: {{ path: $.id }} }} }}\n"
    ));
    // The schema in a folder of its own: what watches it (recursively) does not see the others.
    std::fs::create_dir(dir.path().join("own")).unwrap();
    std::fs::write(dir.path().join("own/any.json"), "{}").unwrap();
    let folder = dir.path().join("routes.d");
    std::fs::create_dir(&folder).unwrap();
    let gw = start_full(&path, Role::Ingress, &topic, &[], true, None).await;
    let post = |path: &str| {
        let url = gw.url(path);
        async move {
            let req = reqwest::Client::new().post(url).header("content-type", "application/json");
            req.body(r#"{"id": "1"}"#).send().await.unwrap().status()
        }
    };
    assert_eq!(post("/hooks/main").await, 200);
    assert_eq!(post("/hooks/extra").await, 404);

    let extra = |at: &str| {
        format!(
            "sources:\n  - name: extra\n    path: {at}\n    verify: {{ kind: none }}\n    rules:\n      - name: r\n        emit: {{ topic: {topic}, schema: ../own/any.json, value: {{ id: {{ path: $.id }} }} }}\n"
        )
    };
    replace_file(&folder.join("extra.yaml"), &extra("/hooks/extra"));
    let answered = |path: &'static str, want: u16| {
        let post = &post;
        async move {
            let deadline = Instant::now() + Duration::from_secs(15);
            while post(path).await != want {
                assert!(Instant::now() < deadline, "{path} never answered {want}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };
    answered("/hooks/extra", 200).await;
    replace_file(&folder.join("extra.yaml"), &extra("/hooks/renamed"));
    answered("/hooks/renamed", 200).await;
    assert_eq!(post("/hooks/extra").await, 404);
    assert_eq!(post("/hooks/main").await, 200);

    // A folder a reload adds to `include` is watched from then on, without a restart.
    let more = dir.path().join("more.d");
    std::fs::create_dir(&more).unwrap();
    std::fs::write(more.join("a.yaml"), extra("/hooks/more-a").replace("name: extra", "name: more_a")).unwrap();
    let main = std::fs::read_to_string(&path).unwrap().replace("include: [routes.d]", "include: [routes.d, more.d]");
    replace_file(&path, &main);
    answered("/hooks/more-a", 200).await;
    replace_file(&more.join("b.yaml"), &extra("/hooks/more-b").replace("name: extra", "name: more_b"));
    answered("/hooks/more-b", 200).await;
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn valid_edits_apply_broken_edits_are_refused_and_traffic_flows_throughout() {
    let (_dir, path) = shipped_with(&[]);
    let topic = unique("payments");
    let gw = start_full(&path, Role::Ingress, &topic, &[], true, None).await;
    let url = gw.url("/webhooks/stripe");

    // Traffic all along: every webhook must be accepted.
    let stop = Arc::new(AtomicBool::new(false));
    let traffic = {
        let (stop, url) = (stop.clone(), url.clone());
        tokio::spawn(async move {
            let mut statuses = Vec::new();
            while !stop.load(Ordering::SeqCst) {
                let body = serde_json::to_vec(&checkout(|_| {})).unwrap();
                statuses.push(post_signed(&url, &body).await.status);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            statuses
        })
    };
    assert!(latest_method_is(&topic, "Credit Card").await);

    let original = std::fs::read_to_string(&path).unwrap();
    replace_file(&path, &original.replace("card: Credit Card,", "card: Card,"));
    assert!(latest_method_is(&topic, "Card").await, "the valid edit did not take effect");

    replace_file(
        &path,
        &original
            .replace("card: Credit Card,", "card: Card,")
            .replace("    path: /webhooks/stripe", "    paht: /webhooks/stripe"),
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(latest_method_is(&topic, "Card").await, "a broken edit must leave the last good routes serving");
    // Valid, but asking for client certificates of a listener that checks none (plain HTTP
    // here): refused as startup would refuse it, so the webhooks keep being taken.
    replace_file(
        &path,
        &original.replace("card: Credit Card,", "card: Card,").replace(
            "    path: /webhooks/stripe\n",
            "    path: /webhooks/stripe\n    require_client_certificate: true\n",
        ),
    );
    tokio::time::sleep(Duration::from_secs(2)).await;

    stop.store(true, Ordering::SeqCst);
    let statuses = traffic.await.unwrap();
    assert!(statuses.len() > 20, "{} requests", statuses.len());
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    gw.stop().await;
}

#[test]
fn sighup_reloads_the_binary() {
    let (dir, _path) = shipped_with(&[]);
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_switchyard"));
    cmd.args(["dev", "-c", "routes.yaml", "--listen", "127.0.0.1:0"])
        .current_dir(dir.path())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("RUST_LOG", "info")
        .stdout(std::process::Stdio::null());
    let (mut child, listen, logs) = spawn_listening(cmd);
    // SIGHUP: reload (the handler is installed before the listener is).
    std::thread::sleep(Duration::from_millis(300));
    let pid = child.id().to_string();
    assert!(std::process::Command::new("kill").args(["-HUP", &pid]).status().unwrap().success());
    std::thread::sleep(Duration::from_secs(1));
    assert!(std::net::TcpStream::connect(&listen).is_ok(), "a reload never drops the process");
    assert!(std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    assert!(child.wait().unwrap().success(), "SIGTERM exits 0");
    let logs = logs.finish();
    assert!(logs.contains("config reloaded") && logs.contains("SIGHUP"), "{logs}");
}

/// A reload names what it cannot apply (the producer and the listener's limits are made at
/// startup), and nothing when it applies in full; dispatchers follow reloads, so their
/// changes are not named.
#[test]
fn a_reload_names_the_changes_that_need_a_restart() {
    let vars = [("STRIPE_WEBHOOK_SECRET", SECRET)];
    let started = compile(&repo().join("routes.yaml"), &vars);
    let (_dir, path) = shipped_with(&[("card: Credit Card,", "card: Card,")]);
    assert_eq!(switchyard::reload::needs_restart(&started, &compile(&path, &vars), Role::All), Vec::<String>::new());
    let (_dir, path) = shipped_with(&[
        ("linger.ms: ${KAFKA_LINGER_MS:-0.2}", "linger.ms: 5"),
        ("read_timeout_ms: 10000", "read_timeout_ms: 10000\n  max_in_flight: 10"),
        ("group: ${DISPATCH_GROUP:-switchyard-orders}", "group: other"),
        ("    max_in_flight: 64\n", "    max_in_flight: 64\n    max_calls_per_second: 5\n"),
    ]);
    let edited = compile(&path, &vars);
    let pending = switchyard::reload::needs_restart(&started, &edited, Role::All);
    assert_eq!(pending, ["kafka.properties changed", "ingress.max_in_flight changed"]);
    // A process runs only its role: a dispatcher has no webhook limits. The producer (the
    // `kafka:` block) serves both.
    let dispatch = switchyard::reload::needs_restart(&started, &edited, Role::Dispatch);
    assert_eq!(dispatch, ["kafka.properties changed"]);
}

/// Dispatchers follow reloads without a restart: one a reload adds starts consuming, one whose
/// gate changes is restarted in its group (no event lost or called twice), and one a reload
/// removes stops calling.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dispatchers_follow_reloads() {
    let orders = OrderService::start(|_, _| (200, vec![])).await;
    let topic = unique("fleet");
    let dispatcher = |name: &str, max_in_flight: u32| {
        format!(
            "  - name: {name}\n    topic: \"${{PAYMENTS_TOPIC}}\"\n    group: {topic}-{name}\n    dead_letter_topic: \"${{PAYMENTS_DLQ_TOPIC}}\"\n    max_in_flight: {max_in_flight}\n    rules:\n      - name: call\n        request: {{ method: POST, url: \"{}/{name}/{{order_id}}\" }}\n",
            orders.url()
        )
    };
    let config = |dispatchers: &[String]| {
        format!("kafka: {{ brokers: \"${{KAFKA_BROKERS}}\" }}\ndispatch:\n{}", dispatchers.concat())
    };
    let (_dir, path) = config_file(&config(&[dispatcher("a", 8)]));
    let gw = start_full(&path, Role::Dispatch, &topic, &[], true, None).await;
    let paths = || {
        let mut p: Vec<String> = orders.requests().into_iter().map(|s| s.path).collect();
        p.sort();
        p
    };
    let arrived = |want: &'static [&'static str]| {
        let paths = &paths;
        async move {
            let deadline = Instant::now() + Duration::from_secs(20);
            while paths() != want {
                assert!(Instant::now() < deadline, "calls {:?}, not {want:?}", paths());
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    produce(&topic, &[payment("1", 0)]).await;
    arrived(&["/a/1"]).await;

    // `b` is new (its group starts from the topic's beginning); `a` gets another gate.
    replace_file(&path, &config(&[dispatcher("a", 4), dispatcher("b", 8)]));
    arrived(&["/a/1", "/b/1"]).await;
    produce(&topic, &[payment("2", 0)]).await;
    arrived(&["/a/1", "/a/2", "/b/1", "/b/2"]).await;

    // `a` is removed (stopped before `c`, added by the same reload, starts): `b` and `c` go on.
    replace_file(&path, &config(&[dispatcher("b", 8), dispatcher("c", 8)]));
    arrived(&["/a/1", "/a/2", "/b/1", "/b/2", "/c/1", "/c/2"]).await;
    produce(&topic, &[payment("3", 0)]).await;
    arrived(&["/a/1", "/a/2", "/b/1", "/b/2", "/b/3", "/c/1", "/c/2", "/c/3"]).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(!paths().contains(&"/a/3".to_owned()), "a removed dispatcher called: {:?}", paths());

    // A reload whose new `tls:` for `b` does not load (the config's check does not read the
    // files) does not stop `b`, nor the process; `c` is left as it was.
    let broken = dispatcher("b", 8)
        .replace("    max_in_flight: 8\n", "    max_in_flight: 8\n    tls: { ca_file: missing-ca.pem }\n");
    replace_file(&path, &config(&[broken, dispatcher("c", 8)]));
    tokio::time::sleep(Duration::from_secs(2)).await;
    produce(&topic, &[payment("4", 0)]).await;
    arrived(&["/a/1", "/a/2", "/b/1", "/b/2", "/b/3", "/b/4", "/c/1", "/c/2", "/c/3", "/c/4"]).await;
    gw.stop().await;
}

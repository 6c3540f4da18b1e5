//! Replays the committed fuzz corpus (`fuzz/corpus/<target>/*`) through the same target
//! bodies libFuzzer runs (`fuzz/targets.rs`), so every input a fuzzer found interesting,
//! and every crash it found once, stays a regression test in `cargo test`.

use crate::fuzz_targets as targets;

use std::path::Path;

fn replay(target: &str, run: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus").join(target);
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        if let Err(panic) = std::panic::catch_unwind(|| run(&data)) {
            std::panic::resume_unwind(Box::new(format!("{}: {:?}", path.display(), panic.downcast_ref::<String>())));
        }
        count += 1;
    }
    assert!(count > 0, "no corpus for {target}");
}

#[test]
fn signature_header_corpus() {
    replay("signature_header", targets::signature_header);
}

#[test]
fn config_load_corpus() {
    replay("config_load", targets::config_load);
}

#[test]
fn shipped_routes_corpus() {
    replay("shipped_routes", targets::shipped_routes);
}

#[test]
fn url_template_corpus() {
    replay("url_template", targets::url_template);
}

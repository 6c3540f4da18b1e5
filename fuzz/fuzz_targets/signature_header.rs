#![no_main]
//! Fuzz target: see `targets::signature_header`.

#[allow(dead_code)] // each target uses one of the shared bodies
#[path = "../targets.rs"]
mod targets;

libfuzzer_sys::fuzz_target!(|data: &[u8]| targets::signature_header(data));

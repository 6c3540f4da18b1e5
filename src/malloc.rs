//! The C allocator's settings. Rust code allocates with mimalloc (set in `main.rs`); librdkafka
//! allocates with the C library's `malloc`, and that one needs one setting for a busy producer.
//!
//! glibc gives the free top of a heap back to the kernel as soon as it passes a small
//! threshold. librdkafka's broker thread builds and frees a produce request every few hundred
//! microseconds, so under load its heap grew and shrank all the time, and every growth faulted
//! in freshly zeroed pages: 0.66 page faults per acknowledged webhook at saturation, 0.01 with
//! a 1 MiB pad (measured with `bench/run`'s load against the release binary, counting
//! `minflt` in `/proc/<pid>/stat`). Keeping that pad costs at most 1 MiB per heap.

/// Keeps 1 MiB of free space at the top of each glibc heap instead of trimming it at once.
/// Call before any thread starts; does nothing where the C library is not glibc.
pub fn keep_heap_pad() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `mallopt` only changes allocator parameters; it is called before other threads
    // exist, and `M_TOP_PAD` with a positive size is a documented setting.
    unsafe {
        libc::mallopt(libc::M_TOP_PAD, 1 << 20);
    }
}

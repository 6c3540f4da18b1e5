//! The `switchyard` binary: parses the command line and runs [`switchyard::cli`].

/// mimalloc: JSON trees are many small allocations; it makes the pipeline ~8% faster
/// (`cargo bench --bench pipeline`).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    switchyard::malloc::keep_heap_pad();
    switchyard::cli::main()
}

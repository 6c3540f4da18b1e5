//! The `switchyard` binary: parses the command line and runs [`switchyard::cli`].

fn main() -> std::process::ExitCode {
    switchyard::cli::main()
}

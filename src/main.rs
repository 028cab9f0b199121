//! The `remoteclaw` binary: everything lives in the library; see `cli`.

fn main() -> std::process::ExitCode {
    remoteclaw::cli::main()
}

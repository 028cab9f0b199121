//! The `remoteclaw` binary: everything lives in the library; see `cli`.

/// mimalloc instead of the system allocator: a gateway allocates and frees many small
/// buffers per message (HTTP, JSON, SQLite) on two threads or more, where glibc's
/// malloc spent about a quarter of the CPU (`perf` on `benches/telegram_load.rs`).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    remoteclaw::process_setup();
    remoteclaw::cli::main()
}

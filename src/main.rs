//! The `gongkai` binary: argument parsing and everything else live in
//! `gongkai-cli`; this file only hands over the process exit code.

#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> std::process::ExitCode {
    gongkai_cli::main()
}

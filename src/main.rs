//! The `gongkai` binary: argument parsing and everything else live in
//! `gongkai-cli`; this file only hands over the process exit code.

fn main() -> std::process::ExitCode {
    gongkai_cli::main()
}

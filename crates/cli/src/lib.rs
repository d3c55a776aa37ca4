//! The `gongkai` command line as a library (the root package's `main` only
//! calls [`main`]).

use std::process::ExitCode;

use clap::Parser;

/// gongkai: a verifiable ledger for open-government disclosure.
#[derive(Debug, Parser)]
#[command(name = "gongkai", version, about)]
struct Cli {}

/// Parses arguments and runs the command; returns the process exit code.
pub fn main() -> ExitCode {
    let _cli = Cli::parse();
    ExitCode::SUCCESS
}

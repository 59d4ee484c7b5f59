//! The `orgsync` binary: parse the command line, set up logging, run, and turn an error
//! into one line and a non-zero exit code.

use std::process::ExitCode;

use clap::Parser;
use orgsync::cli::{self, Cli};

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let settings = match cli::load_settings(&cli) {
        Ok(settings) => settings,
        Err(e) => return fail(&e),
    };
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    orgsync::telemetry::init(
        settings.log.format,
        &settings.log.level,
        ansi,
        std::io::stderr,
    );
    match cli::run(cli, settings).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e),
    }
}

fn fail(error: &anyhow::Error) -> ExitCode {
    eprintln!("orgsync: {error:#}");
    ExitCode::FAILURE
}

//! `stunnerctl`: inspect STUNner gateways (see `stunner_auth::ctl`).

use std::process::ExitCode;

use clap::Parser;
use stunner_auth::ctl::{Cli, run};

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let mut out = std::io::stdout().lock();
    match run(cli, &mut out).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("stunnerctl: {e}");
            ExitCode::FAILURE
        }
    }
}

//! `loadtest`: swarm, echo peer and benchmark. Flags are in `loadtest::cli`.

use clap::Parser;
use loadtest::cli::{self, Cli};
use tracing_subscriber::EnvFilter;

fn main() {
    let cli = Cli::parse();
    let filter = EnvFilter::try_new(&cli.log).unwrap_or_else(|_| EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    if let Err(e) = cli::run(cli) {
        eprintln!("loadtest: {e}");
        std::process::exit(if e.is_config() { 64 } else { 1 });
    }
}

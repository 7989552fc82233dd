//! `turncat`: tunnel a local client through a TURN server to a peer. Flags are in
//! `loadtest::turncat::TurncatArgs`.

use clap::Parser;
use loadtest::turncat::{self, TurncatArgs};
use tracing_subscriber::EnvFilter;

fn main() {
    let args = TurncatArgs::parse();
    let filter = EnvFilter::try_new(args.log_filter()).unwrap_or_else(|_| EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    if let Err(e) = turncat::main_run(&args) {
        eprintln!("turncat: {e}");
        std::process::exit(if e.is_config() { 64 } else { 1 });
    }
}

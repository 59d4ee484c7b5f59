//! Runs the in-memory Scalekit stand-in for local experiments with orgsync.
//!
//! ```text
//! cargo run --example scalekit_standin [-- --listen 127.0.0.1:8081]
//! ```
//!
//! It seeds the organization the fixtures refer to ("Acme Corp", external id
//! `org_01HZX5K9M3ABCDEF`), prints the environment to export for orgsync and a curl command
//! to watch the stand-in's state, and serves until Ctrl-C.

use std::net::SocketAddr;
use std::process::ExitCode;

use scalekit_standin::{CLIENT_ID, CLIENT_SECRET, StandIn};

/// Where to listen when `--listen` is not given.
const DEFAULT_LISTEN: &str = "127.0.0.1:8081";

#[tokio::main]
async fn main() -> ExitCode {
    let addr = match listen_addr(std::env::args().skip(1)) {
        Ok(addr) => addr,
        Err(message) => {
            eprintln!(
                "{message}\nusage: cargo run --example scalekit_standin [-- --listen 127.0.0.1:8081]"
            );
            return ExitCode::from(2);
        }
    };
    let standin = match StandIn::start_on(addr).await {
        Ok(standin) => standin,
        Err(err) => {
            eprintln!("cannot listen on {addr}: {err}; pick another address with --listen");
            return ExitCode::FAILURE;
        }
    };
    let org_id = standin.create_organization("Acme Corp", Some("org_01HZX5K9M3ABCDEF"), &[]);
    let url = standin.base_url();
    println!("Scalekit stand-in listening on {url} (seeded \"Acme Corp\" = {org_id})\n");
    println!("export SCALEKIT_ENVIRONMENT_URL={url}");
    println!("export SCALEKIT_CLIENT_ID={CLIENT_ID}");
    println!("export SCALEKIT_CLIENT_SECRET='{CLIENT_SECRET}'\n");
    println!("Watch organizations and users change:\n  curl -s {url}/_standin/state\n");
    println!("Press Ctrl-C to stop.");
    if let Err(err) = tokio::signal::ctrl_c().await {
        eprintln!("cannot wait for Ctrl-C: {err}");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

/// Parses `--listen ADDR` / `--listen=ADDR` by hand.
fn listen_addr(mut args: impl Iterator<Item = String>) -> Result<SocketAddr, String> {
    let mut listen = DEFAULT_LISTEN.to_owned();
    while let Some(arg) = args.next() {
        if arg == "--listen" {
            listen = args
                .next()
                .ok_or("--listen needs an address, e.g. 127.0.0.1:8081")?;
        } else if let Some(value) = arg.strip_prefix("--listen=") {
            listen = value.to_owned();
        } else {
            return Err(format!("unknown argument {arg:?}"));
        }
    }
    listen
        .parse()
        .map_err(|err| format!("--listen {listen:?} is not an address like 127.0.0.1:8081: {err}"))
}

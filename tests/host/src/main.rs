//! `spin-test-host`: serve the app's spin.toml on loopback, like `spin up`.
//!
//! Usage: spin-test-host [--manifest spin.toml] [--listen 127.0.0.1:3000] [--state-dir DIR] [--runtime-config FILE] [--quiet]
//! Variables come from the runtime config's providers, if one is given
//! (`spin up --runtime-config-file`), then the environment (`SPIN_VARIABLE_*`)
//! and `.env` in the working directory, then the manifest defaults.

use std::net::SocketAddr;
use std::path::PathBuf;

use spin_test_host::{App, HostOptions};

fn usage() -> ! {
    eprintln!("usage: spin-test-host [--manifest spin.toml] [--listen 127.0.0.1:3000] [--state-dir DIR] [--runtime-config FILE] [--quiet]");
    std::process::exit(2)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut manifest = PathBuf::from("spin.toml");
    let mut listen: SocketAddr = "127.0.0.1:3000".parse()?;
    let mut quiet = false;
    let mut state_dir = None;
    let mut runtime_config: Option<PathBuf> = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--manifest" => manifest = args.next().unwrap_or_else(|| usage()).into(),
            "--listen" => listen = args.next().unwrap_or_else(|| usage()).parse()?,
            "--quiet" => quiet = true,
            "--runtime-config" | "--runtime-config-file" => {
                runtime_config = Some(PathBuf::from(args.next().unwrap_or_else(|| usage())))
            }
            "--state-dir" => {
                state_dir = Some(PathBuf::from(args.next().unwrap_or_else(|| usage())))
            }
            _ => usage(),
        }
    }
    let options = HostOptions {
        environment: std::env::vars().collect(),
        echo_component_output: !quiet,
        state_dir,
        ..HostOptions::default()
    };
    let app = App::load_with_runtime_config(&manifest, options, runtime_config.as_deref())?;
    let server = app.serve(listen).await?;
    println!(
        "Storing default key-value data to {}",
        app.state_dir().join("sqlite_key_value.db").display()
    );
    println!("Serving {}", server.base_url());
    println!("Available Routes:");
    for (route, component) in app.public_routes() {
        println!(
            "  {component}: {}{}",
            server.base_url(),
            route.replace("/...", " (wildcard)")
        );
    }
    tokio::signal::ctrl_c().await?;
    Ok(())
}

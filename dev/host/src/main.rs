//! `dev-host`: serve a Spin app's HTTP components without Spin.
//!
//! ```text
//! dev-host [--manifest spin.toml] [--listen 127.0.0.1:3000] [--cache-dir DIR]
//!          [--state-dir DIR] [--variable NAME=VALUE]...
//! ```
//!
//! Application variables come from `--variable`, then `SPIN_VARIABLE_<NAME>`,
//! then the manifest defaults. The default key-value store is
//! `sqlite_key_value.db` in `--state-dir`, as with `spin up`: `.spin/`
//! beside the manifest unless given, in memory if given as `""`. Stops on Ctrl-C or SIGTERM, letting in-flight
//! requests finish.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use dev_host::{default_cache_dir, serve, App, ServeOptions, StateDir};

const USAGE: &str =
    "usage: dev-host [--manifest spin.toml] [--listen 127.0.0.1:3000] [--cache-dir DIR] [--state-dir DIR] [--variable NAME=VALUE]...";

struct Args {
    manifest: PathBuf,
    listen: SocketAddr,
    cache_dir: Option<PathBuf>,
    state_dir: StateDir,
    variables: HashMap<String, String>,
}

fn parse_args() -> Result<Args> {
    let mut args = Args {
        manifest: PathBuf::from("spin.toml"),
        listen: SocketAddr::from(([127, 0, 0, 1], 3000)),
        cache_dir: None,
        state_dir: StateDir::Default,
        variables: HashMap::new(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        // Accept both `--flag value` and `--flag=value`.
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        let mut value = |name: &str| -> Result<String> {
            match inline.clone().or_else(|| it.next()) {
                Some(v) => Ok(v),
                None => bail!("{name} needs a value\n{USAGE}"),
            }
        };
        match flag.as_str() {
            "--manifest" | "-f" => args.manifest = value("--manifest")?.into(),
            "--listen" => {
                let v = value("--listen")?;
                args.listen = v.parse().with_context(|| format!("--listen {v:?} is not an address like 127.0.0.1:3000"))?;
            }
            "--cache-dir" => args.cache_dir = Some(value("--cache-dir")?.into()),
            // As `spin up --state-dir`: an empty value means none.
            "--state-dir" => {
                let v = value("--state-dir")?;
                args.state_dir = if v.is_empty() { StateDir::Unset } else { StateDir::Path(v.into()) };
            }
            "--variable" => {
                let v = value("--variable")?;
                let Some((name, val)) = v.split_once('=') else {
                    bail!("--variable {v:?} must be NAME=VALUE");
                };
                args.variables.insert(name.to_string(), val.to_string());
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => bail!("unknown argument {other:?}\n{USAGE}"),
        }
    }
    Ok(args)
}

#[tokio::main]
async fn main() {
    if let Err(e) = run().await {
        eprintln!("dev-host: error: {e:#}");
        std::process::exit(1);
    }
}

/// Ctrl-C, or SIGTERM from a launcher stopping us.
async fn wait_for_stop_signal() -> Result<()> {
    #[cfg(unix)]
    {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).context("installing the SIGTERM handler")?;
        tokio::select! {
            result = tokio::signal::ctrl_c() => result.context("waiting for Ctrl-C")?,
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    tokio::signal::ctrl_c().await.context("waiting for Ctrl-C")?;
    Ok(())
}

async fn run() -> Result<()> {
    let started = Instant::now();
    let args = parse_args()?;
    let cache_dir = args.cache_dir.clone().unwrap_or_else(|| default_cache_dir(&args.manifest));

    // Compiling is CPU-bound and blocking; keep it off the async workers.
    let manifest = args.manifest.clone();
    let loader_cache = cache_dir.clone();
    let app = tokio::task::spawn_blocking(move || App::load(&manifest, &loader_cache)).await.context("loader thread failed")??;
    let app = Arc::new(app);
    let stats = app.load_stats();

    let options = ServeOptions { addr: args.listen, variables: args.variables, use_process_env: true, state_dir: args.state_dir };
    let server = serve(app.clone(), options).await?;

    println!(
        "dev-host: loaded {} in {} ms ({} compiled, {} from cache {}); ready in {} ms",
        app.manifest().name,
        stats.elapsed.as_millis(),
        stats.compiled,
        stats.from_cache,
        cache_dir.display(),
        started.elapsed().as_millis()
    );
    println!("Serving http://{}", server.addr);
    println!("Available Routes (in match order):");
    for (route, component) in app.routes() {
        println!("  {route} -> {component}");
    }

    wait_for_stop_signal().await?;
    println!("dev-host: shutting down");
    server.shutdown().await;
    Ok(())
}

//! The `gateway` binary: configuration from the environment (README, "The
//! Data API gateway"), JSON log lines on stdout (`RUST_LOG`, default
//! `info`), graceful shutdown on SIGTERM / SIGINT.

use std::process::ExitCode;

use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")))
        .with_current_span(false)
        .init();
    let config = match gateway::Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("gateway: bad configuration: {e}");
            tracing::error!(error = %e, "bad configuration");
            return ExitCode::from(2);
        }
    };
    let listener = match tokio::net::TcpListener::bind(config.listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("gateway: cannot listen on {}: {e}", config.listen);
            tracing::error!(listen = %config.listen, error = %e, "cannot listen");
            return ExitCode::from(1);
        }
    };
    // Counts and policy names only: never a key.
    let policies: std::collections::BTreeSet<&str> = config.policy_keys.iter().map(|k| k.name.as_str()).collect();
    tracing::info!(listen = %config.listen, api_keys = config.api_keys.len() + config.policy_keys.len(),
        keys_with_every_right = config.api_keys.len(), policies = ?policies, max_body_bytes = config.max_body_bytes,
        mongodb_timeout_ms = config.mongodb_timeout.as_millis() as u64, "gateway listening");
    match gateway::serve(config, listener, shutdown_signal()).await {
        Ok(()) => {
            tracing::info!("gateway stopped");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("gateway: {e}");
            tracing::error!(error = %e, "gateway failed");
            ExitCode::from(1)
        }
    }
}

/// SIGTERM (Kubernetes stopping a pod) or SIGINT (Ctrl-C).
async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("installing the SIGTERM handler");
    tokio::select! {
        _ = term.recv() => tracing::info!(signal = "SIGTERM", "shutting down: finishing requests in flight"),
        _ = tokio::signal::ctrl_c() => tracing::info!(signal = "SIGINT", "shutting down: finishing requests in flight"),
    }
}

//! The demo page (`web/`, Vite): served on its own origin beside the app,
//! so its calls through the TypeScript client are cross-origin and CORS is
//! exercised for real. The page reads `demo.json` (the API's URL and a
//! token per demo user) from where it is served.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use anyhow::Context;
use emulators::{demo, Emulators};
use serde_json::json;

use crate::client;

/// The page's origin under `make dev` (allowed by `cors_allowed_origins`).
pub const ORIGIN: &str = "http://127.0.0.1:5173";

pub fn dir(root: &Path) -> PathBuf {
    root.join("web")
}

/// `demo.json`: where the API is, and every demo user with a fresh token.
pub fn demo_json(emu: &Emulators, api: &str) -> serde_json::Value {
    let users: Vec<_> = demo::USERS
        .iter()
        .map(|u| json!({ "name": u.name, "email": u.email, "role": crate::role_label(u), "token": emu.issuer.token_for(u) }))
        .collect();
    json!({ "api": api, "users": users })
}

/// Installs the page's and the client's locked packages unless they are.
pub fn ensure_installed(root: &Path) -> anyhow::Result<()> {
    client::ensure_installed(root)?;
    let web = dir(root);
    if web.join("node_modules/.bin/vite").exists() {
        return Ok(());
    }
    let status =
        std::process::Command::new("npm").args(["ci", "--no-audit", "--no-fund"]).current_dir(&web).status().context("npm ci in web/")?;
    anyhow::ensure!(status.success(), "npm ci in web/ failed ({status})");
    Ok(())
}

/// Starts Vite's dev server on [`ORIGIN`], with `demo` as its `demo.json`;
/// it stops with the returned child.
pub fn serve_dev(root: &Path, demo: &serde_json::Value) -> anyhow::Result<tokio::process::Child> {
    ensure_installed(root)?;
    let web = dir(root);
    std::fs::create_dir_all(web.join("public"))?;
    std::fs::write(web.join("public/demo.json"), serde_json::to_vec_pretty(demo)?)?;
    tokio::process::Command::new(web.join("node_modules/.bin/vite"))
        .args(["--host", "127.0.0.1", "--port", "5173", "--strictPort", "--logLevel", "warn"])
        .current_dir(&web)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .context("starting vite in web/")
}

/// Builds the page (`vite build`) into `out`, for a test to serve.
pub fn build(root: &Path, out: &Path) -> anyhow::Result<()> {
    ensure_installed(root)?;
    let web = dir(root);
    let status = std::process::Command::new(web.join("node_modules/.bin/vite"))
        .arg("build")
        .arg("--outDir")
        .arg(out)
        .args(["--emptyOutDir", "--logLevel", "warn"])
        .current_dir(&web)
        .status()
        .context("vite build in web/")?;
    anyhow::ensure!(status.success(), "vite build failed ({status})");
    Ok(())
}

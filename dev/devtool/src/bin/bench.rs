//! `make bench`: the figures the issues ask for, measured (not asserted):
//! component sizes, host start-up, per-request latency through the dev host
//! and through each real Spin named in `SPIN_BIN` (side by side, p50, p99 and
//! the count over 20 ms), upstream calls and sequential round trips of
//! every operation (devtool::round_trips), `/users/me` at 20 ms per call
//! and under load (devtool::me_bench), the token check with a JWKS URL
//! against an inline JWKS (devtool::jwks_bench) and the report routes at scale
//! (devtool::report_bench). `--clean-build`
//! also times a clean release build of every component.

use std::time::Instant;

use dev_host::MemoryPeaks;
use devtool::me_bench::{ms, stats, timed, Stats};
use devtool::spin::{spin_bins, state_dir, version, SpinUp};
use devtool::{load_app, serve_app, take_peak_memory, variables, workspace};
use emulators::demo::{ACME_OWNER, OPERATOR};
use emulators::{Emulators, Options};
use serde_json::json;

async fn start_emulators() -> anyhow::Result<Emulators> {
    emulators::start(Options { stalwart_port: Some(0), ocis_port: Some(0), ..Options::default() }).await
}

/// The measured routes through the host at `base`: (route, requests, stats,
/// peak wasm memory of one request when the host is the dev host).
async fn latencies(base: &str, emu: &Emulators, peaks: Option<&MemoryPeaks>) -> Vec<(&'static str, usize, Stats, String)> {
    let peak = || peaks.map_or_else(|| "not measured".to_owned(), take_peak_memory);
    let client = reqwest::Client::new();
    let op_token = emu.issuer.token_for(&OPERATOR);
    let owner = emu.issuer.token_for(&ACME_OWNER);
    let mut rows = Vec::new();
    for (label, method, path, token, want) in [
        ("POST /users/me → 405 (host + fresh instance only)", "POST", "/users/me", None, 405),
        ("GET /openapi.json (40 KB, no upstream)", "GET", "/openapi.json", None, 200),
        ("GET /users/me (token check + 2 Data API calls)", "GET", "/users/me", Some(op_token.as_str()), 200),
    ] {
        peak();
        for _ in 0..50 {
            timed(&client, method, &format!("{base}{path}"), token, None).await;
        }
        let mut times = Vec::with_capacity(1000);
        for _ in 0..1000 {
            let (status, t) = timed(&client, method, &format!("{base}{path}"), token, None).await;
            assert_eq!(status, want, "{path}");
            times.push(t);
        }
        rows.push((label, times.len(), stats(times), peak()));
    }
    // Each request creates a member (Authentik, Data API, Stalwart, OCIS).
    let url = format!("{base}/tenants/acme/members/create");
    peak();
    let mut times = Vec::new();
    for i in 0..210 {
        let body = json!({"name": "Bench Member", "localPart": format!("bench.{i}"), "role": "member"}).to_string();
        let (status, t) = timed(&client, "POST", &url, Some(&owner), Some(body)).await;
        assert_eq!(status, 201, "members-create");
        if i >= 10 {
            times.push(t);
        }
    }
    rows.push(("POST /tenants/acme/members/create (creates a member in 4 systems)", times.len(), stats(times), peak()));
    rows
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    if std::env::args().any(|a| a == "--reports-only") {
        return devtool::report_bench::run(load_app()?, devtool::report_bench::ISSUE).await;
    }
    if std::env::args().any(|a| a == "--me-only") {
        return devtool::me_bench::run(load_app()?).await;
    }
    if std::env::args().any(|a| a == "--gateway-only") {
        return devtool::gateway_bench::run().await;
    }
    if std::env::args().any(|a| a == "--jwks-only") {
        return devtool::jwks_bench::run(load_app()?).await;
    }
    if std::env::args().any(|a| a == "--round-trips-only") {
        return devtool::round_trips::run(load_app()?).await;
    }
    let root = workspace();
    println!("== Component sizes (release, wasm32-wasip2)");
    let mut sizes = Vec::new();
    for entry in std::fs::read_dir(root.join("functions"))? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        let path = root.join("target/wasm32-wasip2/release").join(format!("{}.wasm", name.replace('-', "_")));
        sizes.push((name, std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0)));
    }
    sizes.sort();
    for (name, size) in &sizes {
        println!("{name:<24} {:>8.1} KiB", *size as f64 / 1024.0);
    }
    let max = sizes.iter().map(|s| s.1).max().unwrap_or(0);
    println!("largest: {:.1} KiB (goal ≤ 1024 KiB)", max as f64 / 1024.0);

    if std::env::args().any(|a| a == "--clean-build") {
        let dir = root.join("target/bench-clean");
        let _ = std::fs::remove_dir_all(&dir);
        let mut cmd = std::process::Command::new("cargo");
        cmd.current_dir(&root).env("CARGO_TARGET_DIR", &dir).args(["build", "--quiet", "--release", "--target", "wasm32-wasip2"]);
        for (name, _) in &sizes {
            cmd.args(["-p", name]);
        }
        let start = Instant::now();
        let ok = cmd.status()?.success();
        println!(
            "\n== Clean release build of all components: {:.1} s ({})",
            start.elapsed().as_secs_f64(),
            if ok { "ok" } else { "FAILED" }
        );
    }

    println!("\n== Host start-up");
    let start = Instant::now();
    let app = load_app()?;
    let stats = app.load_stats();
    println!(
        "load {} components: {} ({} compiled, {} from cache)",
        app.components().count(),
        ms(start.elapsed()),
        stats.compiled,
        stats.from_cache
    );
    let start = Instant::now();
    let app = load_app()?;
    println!("again, warm cache: {}", ms(start.elapsed()));

    // Every runtime against its own fresh emulators, so each sees the same
    // data (members-create adds members).
    let spins: Vec<(String, std::path::PathBuf)> = spin_bins().into_iter().map(|b| Ok((version(&b)?, b))).collect::<anyhow::Result<_>>()?;
    if spins.is_empty() {
        println!("\n(real Spin: none; SPIN_BIN=/path/to/spin adds its rows)");
    } else {
        println!("\n== Real Spin start-up (`spin up` to `Serving`; the latency rows follow)");
    }
    let mut table = Vec::new();
    {
        let emu = start_emulators().await?;
        let server = serve_app(app.clone(), &emu, ([127, 0, 0, 1], 0).into(), false).await?;
        server.log_requests(false);
        table.push(("dev host".to_owned(), latencies(&server.url(), &emu, Some(server.memory_peaks())).await));
        server.shutdown().await;
        emu.shutdown().await;
    }
    for (label, bin) in &spins {
        let emu = start_emulators().await?;
        let manifest = root.join("spin.toml");
        let dir = state_dir(&root.join("target/bench-spin"));
        // Start-up to serving: as after a build (compiles what the cache
        // lacks), as every later start (Wasmtime's cache, on by default), and
        // compiling every component (`--disable-cache`).
        let mut startup = Vec::new();
        for (what, args) in [("first", &[][..]), ("again (cached)", &[][..]), ("no cache", &["--disable-cache"][..])] {
            let start = Instant::now();
            let up = SpinUp::start_with_args(bin, args, &manifest, &variables(&emu), &dir).await?;
            startup.push(format!("{what} {}", ms(start.elapsed())));
            drop(up);
        }
        println!("{label}: start to serving {}", startup.join(", "));
        let up = SpinUp::start(bin, &manifest, &variables(&emu), &dir).await?;
        table.push((label.clone(), latencies(&up.url(), &emu, None).await));
        drop(up);
        emu.shutdown().await;
    }
    println!("\n== Latency, sequential requests after a warm-up, per route and runtime");
    println!("| route | requests | runtime | p50 | p99 | max | over 20 ms | peak wasm memory |");
    println!("|---|---|---|---|---|---|---|---|");
    for (i, (route, n, _, _)) in table[0].1.iter().enumerate() {
        for (runtime, rows) in &table {
            let (s, memory) = (&rows[i].2, &rows[i].3);
            println!("| {route} | {n} | {runtime} | {} | {} | {} | {} | {memory} |", ms(s.p50), ms(s.p99), ms(s.max), s.over_20ms);
        }
    }

    devtool::round_trips::run(app.clone()).await?;
    devtool::me_bench::run(app.clone()).await?;
    devtool::jwks_bench::run(app.clone()).await?;
    devtool::gateway_bench::run().await?;

    // Reports at scale (rows 8, 13, 15, 16): devtool::report_bench.
    devtool::report_bench::run(app.clone(), devtool::report_bench::ISSUE).await?;
    Ok(())
}

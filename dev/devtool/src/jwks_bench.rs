//! `make bench` (`--jwks-only` alone): what a JWKS from `oidc_jwks_url`
//! costs against one pasted inline (`oidc_jwks`), with every upstream call
//! (the JWKS fetch included) delayed 20 ms, through the dev host and each
//! real Spin of `SPIN_BIN`. `/users/me` and members-create, each:
//! - cold: the first request of a freshly started host, whose key-value
//!   store is empty (the median of a few starts);
//! - warm: the median of sequential requests after it, the JWKS kept in the
//!   store (`shared::auth::jwks`).
//!
//! Warm, the two sources should be equal: the cache's price is one store
//! read, far below a round trip. Cold, the URL pays one JWKS fetch.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use dev_host::{App, Server};
use emulators::demo::{ACME_OWNER, OPERATOR};
use emulators::faults::{Fault, FaultRule};
use emulators::{Emulators, Options};
use serde_json::json;

use crate::me_bench::{ms, timed};
use crate::round_trips::controls;
use crate::spin::{spin_bins, state_dir, version, SpinUp};

const DELAY_MS: u64 = 20;
/// Fresh starts per cold figure.
const COLD_RUNS: usize = 5;
/// Sequential requests per warm figure, after the cold one.
const WARM_REQUESTS: usize = 30;

#[derive(Clone, Copy, PartialEq)]
enum Source {
    Inline,
    Url,
}

enum Host {
    Dev(Server),
    Spin(SpinUp),
}

impl Host {
    fn url(&self) -> String {
        match self {
            Host::Dev(s) => s.url(),
            Host::Spin(s) => s.url(),
        }
    }

    async fn stop(self) {
        match self {
            Host::Dev(s) => s.shutdown().await,
            Host::Spin(s) => drop(s),
        }
    }
}

/// Starts `runtime` (`None`: the dev host) with a fresh, empty store.
async fn start(app: &Arc<App>, runtime: Option<&std::path::Path>, vars: HashMap<String, String>) -> anyhow::Result<Host> {
    Ok(match runtime {
        None => {
            let server = crate::serve_with(app.clone(), vars, ([127, 0, 0, 1], 0).into(), false).await?;
            server.log_requests(false);
            Host::Dev(server)
        }
        Some(bin) => {
            let root = crate::workspace();
            Host::Spin(SpinUp::start(bin, &root.join("spin.toml"), &vars, &state_dir(&root.join("target/bench-spin"))).await?)
        }
    })
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

/// One route's request: `(label, method, path, caller token, body for the n-th request)`.
type Request = (&'static str, &'static str, &'static str, fn(&Emulators) -> String, fn(usize) -> Option<String>);

fn requests() -> [Request; 2] {
    [
        ("GET /users/me", "GET", "/users/me", |emu| emu.issuer.token_for(&OPERATOR), |_| None),
        (
            "POST /tenants/acme/members/create",
            "POST",
            "/tenants/acme/members/create",
            |emu| emu.issuer.token_for(&ACME_OWNER),
            |n| Some(json!({"name": "Jwks Bench", "localPart": format!("jwks.bench.{n}"), "role": "member"}).to_string()),
        ),
    ]
}

/// Cold and warm p50 of one route, and the JWKS fetches of the warm run.
async fn measure(
    app: &Arc<App>,
    runtime: Option<&std::path::Path>,
    source: Source,
    req: &Request,
) -> anyhow::Result<(Duration, Duration, usize)> {
    let (_, method, path, token, body) = req;
    let emu = emulators::start(Options { stalwart_port: Some(0), ocis_port: Some(0), ..Options::default() }).await?;
    let mut vars = crate::variables(&emu);
    if source == Source::Url {
        vars.insert("oidc_jwks".into(), String::new());
        vars.insert("oidc_jwks_url".into(), emu.issuer.jwks_uri());
    }
    for c in controls(&emu) {
        c.faults.add(FaultRule::new("/", Fault::DelayMs(DELAY_MS)));
    }
    let client = reqwest::Client::new();
    let token = token(&emu);
    let mut n = 0;
    let mut send = async |host: &Host| -> anyhow::Result<Duration> {
        n += 1;
        let (status, t) = timed(&client, method, &format!("{}{path}", host.url()), Some(&token), body(n)).await;
        anyhow::ensure!(status < 300, "{path}: {status}");
        Ok(t)
    };
    let mut cold = Vec::new();
    for _ in 0..COLD_RUNS {
        let host = start(app, runtime, vars.clone()).await?;
        cold.push(send(&host).await?);
        host.stop().await;
    }
    let host = start(app, runtime, vars).await?;
    let fetches_before = emu.authentik().jwks_fetches();
    send(&host).await?;
    let mut warm = Vec::new();
    for _ in 0..WARM_REQUESTS {
        warm.push(send(&host).await?);
    }
    let fetches = emu.authentik().jwks_fetches() - fetches_before;
    host.stop().await;
    emu.shutdown().await;
    Ok((median(cold), median(warm), fetches))
}

pub async fn run(app: Arc<App>) -> anyhow::Result<()> {
    println!(
        "\n== Token check: JWKS from oidc_jwks_url (kept in the key-value store) against inline oidc_jwks, every upstream call and the JWKS fetch delayed {DELAY_MS} ms; cold = p50 of the first request of {COLD_RUNS} fresh hosts (empty store), warm = p50 of the {WARM_REQUESTS} sequential requests after one"
    );
    println!("| route | runtime | JWKS | cold p50 | warm p50 | JWKS fetches in {} requests |", WARM_REQUESTS + 1);
    println!("|---|---|---|---|---|---|");
    let mut runtimes: Vec<(String, Option<std::path::PathBuf>)> = vec![("dev host".into(), None)];
    for bin in spin_bins() {
        runtimes.push((version(&bin)?, Some(bin)));
    }
    for req in &requests() {
        for (label, bin) in &runtimes {
            for (source, name) in [(Source::Inline, "inline"), (Source::Url, "oidc_jwks_url")] {
                let (cold, warm, fetches) = measure(&app, bin.as_deref(), source, req).await?;
                println!("| {} | {label} | {name} | {} | {} | {fetches} |", req.0, ms(cold), ms(warm));
            }
        }
    }
    Ok(())
}

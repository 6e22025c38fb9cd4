//! `make bench`: the Data API gateway (driver backend, in process) against
//! the emulator's MongoDB wire endpoint, beside the emulator's own HTTP
//! endpoint (the engine without driver or wire) for scale: p50, p99 and
//! requests per second for `findOne` and a small `aggregate`, at 1 and 16
//! concurrent clients. `--gateway-only` prints just this.

use std::time::{Duration, Instant};

use emulators::demo::{ACME, ACME_MEMBER, DATA_API_KEY};
use emulators::Options;
use serde_json::{json, Value};

use crate::me_bench::{ms, percentile};

/// Requests measured per row (after a warm-up), split over the clients.
const REQUESTS: usize = 2000;
const WARM_UP: usize = 100;

/// `clients` tasks sending `body` to `url` until `total` are done; each
/// request's latency (sorted), and the wall time of the whole run.
async fn load(http: &reqwest::Client, url: &str, body: &str, clients: usize, total: usize) -> anyhow::Result<(Vec<Duration>, Duration)> {
    let started = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let (http, url, body) = (http.clone(), url.to_owned(), body.to_owned());
            tokio::spawn(async move {
                let mut times = Vec::with_capacity(total / clients);
                for _ in 0..total / clients {
                    let t = Instant::now();
                    let resp = http
                        .post(&url)
                        .header("api-key", DATA_API_KEY)
                        .header("content-type", "application/json")
                        .header("accept", "application/ejson")
                        .body(body.clone())
                        .send()
                        .await?;
                    anyhow::ensure!(resp.status().is_success(), "{url}: {}", resp.status());
                    resp.bytes().await?;
                    times.push(t.elapsed());
                }
                Ok::<_, anyhow::Error>(times)
            })
        })
        .collect();
    let mut all = Vec::with_capacity(total);
    for t in tasks {
        all.extend(t.await??);
    }
    let wall = started.elapsed();
    all.sort();
    Ok((all, wall))
}

fn body(coll: &str, extra: Value) -> String {
    let mut b = json!({"dataSource": "mongodb-atlas", "database": emulators::data_api::DEFAULT_DATABASE, "collection": coll});
    for (k, v) in extra.as_object().expect("an object") {
        b[k] = v.clone();
    }
    b.to_string()
}

pub async fn run() -> anyhow::Result<()> {
    let emu = emulators::start(Options { authentik_port: None, stalwart_port: None, ocis_port: None, ..Options::default() }).await?;
    let config = gateway::Config::new(emu.data_api().wire_url(), vec![DATA_API_KEY.to_owned()]);
    let gw = gateway::Running::start(&config, tokio::net::TcpListener::bind("127.0.0.1:0").await?).await?;
    let cases = [
        ("findOne (a user by e-mail)", "findOne", body("users", json!({"filter": {"email": ACME_MEMBER.email}}))),
        (
            "aggregate ($match + $limit + $lookup: a workspace and its domains)",
            "aggregate",
            body(
                "tenants",
                json!({"pipeline": [
                    {"$match": {"_id": {"$oid": ACME.id}}}, {"$limit": 1},
                    {"$lookup": {"from": "domains", "localField": "_id", "foreignField": "tenantId", "as": "domains"}},
                ]}),
            ),
        ),
    ];
    let endpoints =
        [("gateway → emulator wire (driver)", gw.url.clone()), ("emulator HTTP (engine, no driver)", emu.data_api().url.clone())];

    println!("\n== Data API gateway: the driver backend against the emulator's MongoDB wire endpoint (in process, {REQUESTS} requests per row after {WARM_UP} warm-up, keep-alive)");
    println!("| action | endpoint | clients | p50 | p99 | requests/s |");
    println!("|---|---|---|---|---|---|");
    let http = reqwest::Client::new();
    for (label, action, b) in &cases {
        for (endpoint, base) in &endpoints {
            let url = format!("{base}/action/{action}");
            load(&http, &url, b, 1, WARM_UP).await?;
            for clients in [1, 16] {
                let (times, wall) = load(&http, &url, b, clients, REQUESTS).await?;
                let rps = times.len() as f64 / wall.as_secs_f64();
                println!(
                    "| {label} | {endpoint} | {clients} | {} | {} | {rps:.0} |",
                    ms(percentile(&times, 0.5)),
                    ms(percentile(&times, 0.99))
                );
            }
        }
    }
    gw.shutdown().await?;
    emu.shutdown().await;
    Ok(())
}

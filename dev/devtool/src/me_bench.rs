//! `make bench` (`--me-only` alone): `GET /users/me`, which every page load
//! of every frontend calls, through the dev host. Its latency with every
//! upstream call delayed 20 ms (a production round trip; goal ≤ 25 ms p50
//! without tenant groups: one trip plus host time) and undelayed (goal
//! ≤ 2 ms p50), for a caller whose token names no tenant groups (one trip)
//! and one whose token names one (two: the slugs first); then its
//! throughput with 1, 8 and 32 concurrent clients.
//!
//! Also the timing helpers the other latency figures of `make bench` use.

use std::sync::Arc;
use std::time::{Duration, Instant};

use dev_host::App;
use emulators::demo::{User, ACME_OWNER, OPERATOR};
use emulators::faults::{Fault, FaultRule};

use crate::round_trips::World;

/// The upstream delay standing for one production round trip.
const DELAY_MS: u64 = 20;
/// Sequential requests per latency row, after a warm-up.
const REQUESTS: usize = 400;
/// How long each throughput row runs.
const LOAD_FOR: Duration = Duration::from_secs(3);

pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

pub fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

/// Sends one request and reads the whole answer: its status and time.
pub async fn timed(client: &reqwest::Client, method: &str, url: &str, token: Option<&str>, body: Option<String>) -> (u16, Duration) {
    let mut req = client.request(method.parse().unwrap(), url);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.header("content-type", "application/json").body(b);
    }
    let start = Instant::now();
    let resp = req.send().await.expect("host answers");
    let status = resp.status().as_u16();
    let _ = resp.bytes().await;
    (status, start.elapsed())
}

pub struct Stats {
    pub p50: Duration,
    pub p99: Duration,
    pub max: Duration,
    pub over_20ms: usize,
}

pub fn stats(mut times: Vec<Duration>) -> Stats {
    times.sort();
    Stats {
        p50: percentile(&times, 0.5),
        p99: percentile(&times, 0.99),
        max: *times.last().unwrap(),
        over_20ms: times.iter().filter(|t| **t > Duration::from_millis(20)).count(),
    }
}

/// What `/users/me` is measured with: a [`World`]'s delays, and its
/// requests one after another or from many clients at once.
impl World {
    /// Delays every upstream call by `ms` (0: none) from now on.
    fn delay_upstreams(&self, ms: u64) {
        for c in crate::round_trips::controls(&self.emu) {
            c.faults.clear();
            if ms > 0 {
                c.faults.add(FaultRule::new("/", Fault::DelayMs(ms)));
            }
        }
    }

    fn me_url(&self) -> String {
        format!("{}/users/me", self.server.url())
    }

    /// `n` sequential requests as `who` after a warm-up: their times.
    async fn me_sequential(&self, who: &User, n: usize) -> Vec<Duration> {
        let (url, token) = (self.me_url(), self.emu.issuer.token_for(who));
        let mut times = Vec::with_capacity(n);
        for i in 0..n + 20 {
            let (status, t) = timed(&self.client, "GET", &url, Some(&token), None).await;
            assert_eq!(status, 200, "/users/me");
            if i >= 20 {
                times.push(t);
            }
        }
        times
    }

    /// `clients` clients, each sending requests back to back for
    /// [`LOAD_FOR`]: every request's time, and the wall time taken.
    async fn me_load(&self, who: &User, clients: usize) -> (Vec<Duration>, Duration) {
        let (url, token) = (self.me_url(), self.emu.issuer.token_for(who));
        let start = Instant::now();
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..clients {
            let (client, url, token) = (reqwest::Client::new(), url.clone(), token.clone());
            set.spawn(async move {
                let mut times = Vec::new();
                while start.elapsed() < LOAD_FOR {
                    let (status, t) = timed(&client, "GET", &url, Some(&token), None).await;
                    assert_eq!(status, 200, "/users/me under load");
                    times.push(t);
                }
                times
            });
        }
        let times = set.join_all().await.concat();
        (times, start.elapsed())
    }
}

/// Prints both tables.
pub async fn run(app: Arc<App>) -> anyhow::Result<()> {
    let w = World::start(&app).await?;
    let callers = [("no tenant groups (1 round trip)", &OPERATOR), ("one tenant group (2 round trips)", &ACME_OWNER)];
    println!("\n== GET /users/me latency (dev host, {REQUESTS} sequential requests after a warm-up; goals: ≤ 25 ms p50 at {DELAY_MS} ms per call and ≤ 2 ms p50 undelayed, without tenant groups)");
    println!("| token | upstream delay per call | p50 | p99 | max |");
    println!("|---|---|---|---|---|");
    for delay in [0, DELAY_MS] {
        w.delay_upstreams(delay);
        for (label, who) in callers {
            let s = stats(w.me_sequential(who, REQUESTS).await);
            println!("| {label} | {delay} ms | {} | {} | {} |", ms(s.p50), ms(s.p99), ms(s.max));
        }
    }

    println!("\n== GET /users/me throughput (dev host, a fresh instance per request; token without tenant groups; each row {} s of back-to-back requests per client)", LOAD_FOR.as_secs());
    println!("| clients | upstream delay per call | requests | requests/s | p50 | p99 |");
    println!("|---|---|---|---|---|---|");
    for delay in [0, DELAY_MS] {
        w.delay_upstreams(delay);
        for clients in [1, 8, 32] {
            let (times, took) = w.me_load(&OPERATOR, clients).await;
            let n = times.len();
            let s = stats(times);
            println!("| {clients} | {delay} ms | {n} | {:.0} | {} | {} |", n as f64 / took.as_secs_f64(), ms(s.p50), ms(s.p99));
        }
    }
    w.server.shutdown().await;
    w.emu.shutdown().await;
    Ok(())
}

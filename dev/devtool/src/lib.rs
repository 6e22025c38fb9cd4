//! What `make dev` and `make bench` share: starting the emulators and the
//! host serving `spin.toml`, wired together by Spin variables.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub mod client;
pub mod gateway_bench;
pub mod jwks_bench;
pub mod keys;
pub mod kube;
pub mod me_bench;
pub mod report_bench;
pub mod round_trips;
pub mod spin;
pub mod web;

use dev_host::{serve, App, MemoryPeaks, ServeOptions, Server, StateDir};
use emulators::{demo, Emulators};

pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("workspace root")
}

pub fn load_app() -> anyhow::Result<Arc<App>> {
    let root = workspace();
    let manifest = root.join("spin.toml");
    Ok(Arc::new(App::load(&manifest, &dev_host::default_cache_dir(&manifest))?))
}

/// The application variables that point the app at the emulators.
pub fn variables(emu: &Emulators) -> HashMap<String, String> {
    let mut v = HashMap::new();
    let mut set = |k: &str, val: String| {
        v.insert(k.to_owned(), val);
    };
    let data = emu.data_api();
    set("data_api_url", data.url.clone());
    // Each component its own key, which the emulator holds to its rights
    // (`keys`); no shared `data_api_key`, so none can do without its own.
    keys::install(emu).expect("shared::needs::TABLE's rights are gateway policies");
    for needs in keys::callers() {
        set(&keys::variable_of(needs.component), keys::key_of(needs.component));
    }
    let ak = emu.authentik();
    set("authentik_url", ak.url.clone());
    set("authentik_token", demo::AUTHENTIK_TOKEN.to_owned());
    set("oidc_issuer", emu.issuer.issuer().to_owned());
    set("oidc_audience", emu.issuer.audience().to_owned());
    set("oidc_jwks", emu.issuer.jwks_json());
    if let Some(s) = &emu.stalwart {
        set("stalwart_url", s.url.clone());
        set("stalwart_token", demo::STALWART_TOKEN.to_owned());
    }
    if let Some(o) = &emu.ocis {
        set("ocis_url", o.url.clone());
        set("ocis_token", demo::OCIS_TOKEN.to_owned());
    }
    v
}

/// Serves the app against `emu`. Variables already in the environment
/// (`SPIN_VARIABLE_*`) win over the emulator defaults.
pub async fn serve_app(app: Arc<App>, emu: &Emulators, addr: std::net::SocketAddr, env_wins: bool) -> anyhow::Result<Server> {
    serve_with(app, variables(emu), addr, env_wins).await
}

/// Serves the app with `vars` (e.g. [`variables`] with `data_api_url`
/// pointing elsewhere); with `env_wins`, `SPIN_VARIABLE_*` win over them.
pub async fn serve_with(
    app: Arc<App>,
    vars: HashMap<String, String>,
    addr: std::net::SocketAddr,
    env_wins: bool,
) -> anyhow::Result<Server> {
    // No state dir: the key-value store lives in memory for this serve, as
    // the emulators' world (issuer keys included) does for this run.
    serve_in(app, vars, addr, env_wins, StateDir::Unset).await
}

/// [`serve_with`], the key-value store in `state_dir` (`make dev` keeps it
/// beside the emulators' data, whose issuer keys outlive a restart too).
pub async fn serve_in(
    app: Arc<App>,
    mut vars: HashMap<String, String>,
    addr: std::net::SocketAddr,
    env_wins: bool,
    state_dir: StateDir,
) -> anyhow::Result<Server> {
    if env_wins {
        vars.retain(|k, _| std::env::var(format!("SPIN_VARIABLE_{}", k.to_uppercase())).is_err());
    }
    serve(app, ServeOptions { addr, variables: vars, use_process_env: env_wins, state_dir }).await
}

/// The peak wasm linear memory of one request since the last call, as
/// `12.4 MiB (component)` (each component that ran, largest first), then
/// resets the peaks: call it before and after measuring one route.
pub fn take_peak_memory(peaks: &MemoryPeaks) -> String {
    let mut ran: Vec<(String, usize)> = peaks.take().into_iter().collect();
    if ran.is_empty() {
        return "no instance ran".into();
    }
    ran.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    ran.iter().map(|(id, bytes)| format!("{:.1} MiB ({id})", *bytes as f64 / (1u64 << 20) as f64)).collect::<Vec<_>>().join(", ")
}

/// A human label for a demo user's role.
pub fn role_label(u: &demo::User) -> String {
    if u.platform_admin {
        return "platform admin (P)".into();
    }
    if let Some(p) = u.partner {
        let scoped = if u.partner_tenant_access.is_empty() { "" } else { ", scoped" };
        return format!("{} staff of {}{scoped}", if matches!(u.role, "owner" | "admin") { "admin" } else { "plain" }, p.slug);
    }
    let t: Vec<String> = u.tenants.iter().map(|(t, r)| format!("{r} of {}", t.slug)).collect();
    format!("{}{}", t.join(", "), if u.active { "" } else { " (inactive)" })
}

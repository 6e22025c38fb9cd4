//! `make dev`: every emulator with the demo data (persisted in `.dev-data/`)
//! and the dev host serving `spin.toml` against them; prints the URL and a
//! ready token per demo user, and serves the demo page (web/) on its own
//! origin, http://127.0.0.1:5173. Ctrl-C stops everything cleanly.
//!
//! Tokens are checked as production should check them: against the JWKS
//! fetched from the issuer's URL (`oidc_jwks_url`) and kept in the
//! `default` key-value store, a SQLite file in `.dev-data/` like the
//! emulators' data (README, "The JWKS cache").
//!
//! `make dev ARGS=--gateway`: the app reaches the Data API through the
//! gateway (gateway/, in process, driver backend) on the emulator's MongoDB
//! wire listener instead of the emulator's own HTTP endpoint.

use dev_host::StateDir;
use devtool::{load_app, role_label, serve_in, variables, web, workspace};
use emulators::{demo, Options};

/// Where the gateway listens with `--gateway` (beside the emulators' 4010–4040).
const GATEWAY_PORT: u16 = 4011;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let port: u16 = std::env::var("PORT").ok().and_then(|p| p.parse().ok()).unwrap_or(3000);
    let with_gateway = std::env::args().any(|a| a == "--gateway");
    let emu = emulators::start(Options {
        data_dir: Some(workspace().join(".dev-data")),
        data_api_port: Some(4010),
        authentik_port: Some(4020),
        stalwart_port: Some(4030),
        ocis_port: Some(4040),
        ..Options::default()
    })
    .await?;
    let gateway = match with_gateway {
        true => {
            // The same keys as the emulator's: the demo key with every
            // right, each component's held to its rights.
            let (bare, named) = devtool::keys::gateway_keys(&emu.data_api().key)?;
            let config = gateway::Config { policy_keys: named, ..gateway::Config::new(emu.data_api().wire_url(), bare) };
            let listener = tokio::net::TcpListener::bind(("127.0.0.1", GATEWAY_PORT)).await?;
            Some(gateway::Running::start(&config, listener).await?)
        }
        false => None,
    };
    let started = std::time::Instant::now();
    let app = load_app()?;
    let stats = app.load_stats();
    let mut vars = variables(&emu);
    if let Some(g) = &gateway {
        vars.insert("data_api_url".to_owned(), g.url.clone());
    }
    // The demo page calls from its own origin.
    vars.insert("cors_allowed_origins".to_owned(), web::ORIGIN.to_owned());
    vars.insert("oidc_jwks".to_owned(), String::new());
    vars.insert("oidc_jwks_url".to_owned(), emu.issuer.jwks_uri());
    let state_dir = workspace().join(".dev-data");
    let server = serve_in(app.clone(), vars, ([127, 0, 0, 1], port).into(), true, StateDir::Path(state_dir.clone())).await?;
    let page = match web::serve_dev(&workspace(), &web::demo_json(&emu, &format!("http://{}", server.addr))) {
        Ok(child) => Some(child),
        Err(e) => {
            println!("The demo page is not served: {e:#}");
            None
        }
    };

    println!("\nData API  {}   (api-key: {})", emu.data_api().url, emu.data_api().key);
    if let Some(g) = &gateway {
        println!(
            "Gateway   {}   (the app's data_api_url: driver backend on the emulator's MongoDB wire endpoint {})",
            g.url,
            emu.data_api().wire_url()
        );
    }
    println!("Authentik {}   (token: {})", emu.authentik().url, demo::AUTHENTIK_TOKEN);
    println!("JWKS      {}   (kept in {})", emu.issuer.jwks_uri(), state_dir.join(dev_host::key_value::DEFAULT_STORE_FILENAME).display());
    if let Some(s) = &emu.stalwart {
        println!("Stalwart  {}", s.url);
    }
    if let Some(o) = &emu.ocis {
        println!("OCIS      {}", o.url);
    }
    println!(
        "\nThe app: http://{}   ({} components, loaded in {:?}: {} compiled, {} from cache; Data API through {})",
        server.addr,
        app.components().count(),
        started.elapsed(),
        stats.compiled,
        stats.from_cache,
        if gateway.is_some() { "the gateway" } else { "the emulator's HTTP endpoint" },
    );
    println!("\nTokens (1 hour) — try: curl -H \"Authorization: Bearer $TOKEN\" http://{}/users/me\n", server.addr);
    for u in demo::USERS.iter() {
        println!("# {} <{}>: {}", u.name, u.email, role_label(u));
        println!("{}\n", emu.issuer.token_for(u));
    }
    if page.is_some() {
        println!("The demo page: {} (calls the app cross-origin through clients/typescript)\n", web::ORIGIN);
    }
    println!("Ctrl-C stops.");
    tokio::signal::ctrl_c().await?;
    server.shutdown().await;
    if let Some(g) = gateway {
        g.shutdown().await?;
    }
    emu.shutdown().await;
    Ok(())
}

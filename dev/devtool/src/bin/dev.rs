//! `make dev`: every emulator with the demo data (persisted in `.dev-data/`)
//! and the dev host serving `spin.toml` against them; prints the URL and a
//! ready token per demo user. Ctrl-C stops everything cleanly.

use devtool::{load_app, role_label, serve_app, workspace};
use emulators::{demo, Options};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let port: u16 = std::env::var("PORT").ok().and_then(|p| p.parse().ok()).unwrap_or(3000);
    let emu = emulators::start(Options {
        data_dir: Some(workspace().join(".dev-data")),
        data_api_port: Some(4010),
        authentik_port: Some(4020),
        stalwart_port: Some(4030),
        ocis_port: Some(4040),
        ..Options::default()
    })
    .await?;
    let started = std::time::Instant::now();
    let app = load_app()?;
    let stats = app.load_stats();
    let server = serve_app(app.clone(), &emu, ([127, 0, 0, 1], port).into(), true).await?;

    println!("\nData API  {}   (api-key: {})", emu.data_api().url, emu.data_api().key);
    println!("Authentik {}   (token: {})", emu.authentik().url, demo::AUTHENTIK_TOKEN);
    if let Some(s) = &emu.stalwart {
        println!("Stalwart  {}", s.url);
    }
    if let Some(o) = &emu.ocis {
        println!("OCIS      {}", o.url);
    }
    println!(
        "\nThe app: http://{}   ({} components, loaded in {:?}: {} compiled, {} from cache)",
        server.addr,
        app.components().count(),
        started.elapsed(),
        stats.compiled,
        stats.from_cache
    );
    println!("\nTokens (1 hour) — try: curl -H \"Authorization: Bearer $TOKEN\" http://{}/users/me\n", server.addr);
    for u in demo::USERS.iter() {
        println!("# {} <{}>: {}", u.name, u.email, role_label(u));
        println!("{}\n", emu.issuer.token_for(u));
    }
    println!("Ctrl-C stops.");
    tokio::signal::ctrl_c().await?;
    server.shutdown().await;
    emu.shutdown().await;
    Ok(())
}

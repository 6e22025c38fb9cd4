//! Runs the emulators on fixed local ports for development.
//!
//! ```text
//! cargo run -p emulators --bin emulators -- [--data-dir DIR | --memory] [--no-seed]
//!     [--data-api-port N] [--authentik-port N] [--api-key KEY]
//! ```
//!
//! Defaults: Data API on 4010 persisting to `./.dev-data/`, Authentik (with
//! the OIDC issuer) on 4020. Prints the URLs, the API key, the Spin variables
//! that point the app at the emulators, and a ready token per demo user.
//! Ctrl-C (or SIGTERM) stops gracefully; persisted data stays intact.

use std::path::PathBuf;
use std::process::ExitCode;

use emulators::{demo, start, Options};

const USAGE: &str = "usage: emulators [--data-dir DIR | --memory] [--no-seed] [--data-api-port N] [--data-api-wire-port N | --no-wire] \
[--authentik-port N] [--stalwart-port N] [--ocis-port N] [--api-key KEY] [--quiet-tokens]";

struct Args {
    opts: Options,
    quiet_tokens: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut opts = Options {
        data_dir: Some(PathBuf::from(".dev-data")),
        data_api_port: Some(4010),
        data_api_wire_port: Some(4017),
        authentik_port: Some(4020),
        stalwart_port: Some(4030),
        ocis_port: Some(4040),
        ..Options::default()
    };
    let mut quiet_tokens = false;
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let (flag, inline) = match a.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_owned(), Some(v.to_owned())),
            _ => (a.clone(), None),
        };
        let mut value = |name: &str| inline.clone().or_else(|| it.next()).ok_or_else(|| format!("{name} needs a value"));
        let port = |v: String| v.parse::<u16>().map_err(|_| format!("not a port: {v}"));
        match flag.as_str() {
            "--data-dir" => opts.data_dir = Some(PathBuf::from(value("--data-dir")?)),
            "--memory" => opts.data_dir = None,
            "--no-seed" => opts.seed = false,
            "--data-api-port" => opts.data_api_port = Some(port(value("--data-api-port")?)?),
            "--data-api-wire-port" => opts.data_api_wire_port = Some(port(value("--data-api-wire-port")?)?),
            "--no-wire" => opts.data_api_wire_port = None,
            "--authentik-port" => opts.authentik_port = Some(port(value("--authentik-port")?)?),
            "--stalwart-port" => opts.stalwart_port = Some(port(value("--stalwart-port")?)?),
            "--ocis-port" => opts.ocis_port = Some(port(value("--ocis-port")?)?),
            "--api-key" => opts.data_api_key = value("--api-key")?,
            "--quiet-tokens" => quiet_tokens = true,
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument: {other}")),
        }
    }
    Ok(Args { opts, quiet_tokens })
}

async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(msg) => {
            if !msg.is_empty() {
                eprintln!("{msg}");
            }
            eprintln!("{USAGE}");
            return if msg.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(2) };
        }
    };
    let data_dir = args.opts.data_dir.clone();
    let database = args.opts.database.clone();
    let emus = match start(args.opts).await {
        Ok(e) => e,
        Err(e) => {
            eprintln!("emulators: {e:#}");
            return ExitCode::FAILURE;
        }
    };

    println!("Emulators running (Ctrl-C to stop)\n");
    if let Some(d) = &emus.data_api {
        let storage = match &data_dir {
            Some(p) => format!("persisted in {}", p.display()),
            None => "in memory".to_owned(),
        };
        println!("Data API   {}   ({storage}, database `{database}`)", d.url);
        println!("           also under {}/app/<any-app-id>/endpoint/data/v1", d.url);
        println!("           api-key: {}", d.key);
        println!("           faults/log: {}/__emulator/faults, {}/__emulator/requests", d.url, d.url);
        if d.wire_addr.is_some() {
            println!("           MongoDB wire protocol (same data): {}", d.wire_url());
        }
    }
    if let Some(a) = &emus.authentik {
        println!("Authentik  {}", a.url);
        println!("           issuer:   {}", a.issuer.issuer());
        println!("           audience: {}", a.issuer.audience());
        println!("           jwks:     {}", a.issuer.jwks_uri());
        println!("           token:    {}/dev/token?email=<demo email>&raw=1", a.url);
    }

    if let Some(st) = &emus.stalwart {
        println!("Stalwart   {}   (token: {})", st.url, demo::STALWART_TOKEN);
    }
    if let Some(o) = &emus.ocis {
        println!("OCIS       {}   (token: {})", o.url, demo::OCIS_TOKEN);
    }

    println!("\nSpin variables for the app:");
    if let Some(d) = &emus.data_api {
        println!("  export SPIN_VARIABLE_DATA_API_URL={}", d.url);
        println!("  export SPIN_VARIABLE_DATA_API_KEY={}", d.key);
        println!("  export SPIN_VARIABLE_DATA_API_DATABASE={database}");
    }
    if let Some(a) = &emus.authentik {
        println!("  export SPIN_VARIABLE_AUTHENTIK_URL={}", a.url);
        println!("  export SPIN_VARIABLE_AUTHENTIK_TOKEN={}", demo::AUTHENTIK_TOKEN);
        println!("  export SPIN_VARIABLE_OIDC_ISSUER={}", a.issuer.issuer());
        println!("  export SPIN_VARIABLE_OIDC_AUDIENCE={}", a.issuer.audience());
        println!("  export SPIN_VARIABLE_OIDC_JWKS_URL={}", a.issuer.jwks_uri());
        println!("  export SPIN_VARIABLE_OIDC_JWKS='{}'", a.issuer.jwks_json());
    }
    if let Some(st) = &emus.stalwart {
        println!("  export SPIN_VARIABLE_STALWART_URL={}", st.url);
        println!("  export SPIN_VARIABLE_STALWART_TOKEN={}", demo::STALWART_TOKEN);
    }
    if let Some(o) = &emus.ocis {
        println!("  export SPIN_VARIABLE_OCIS_URL={}", o.url);
        println!("  export SPIN_VARIABLE_OCIS_TOKEN={}", demo::OCIS_TOKEN);
    }

    if emus.authentik.is_some() && !args.quiet_tokens {
        println!("\nTokens (valid 1 hour; Authorization: Bearer <token>):");
        for u in demo::USERS {
            let mut roles = Vec::new();
            if u.platform_admin {
                roles.push("platform admin".to_owned());
            }
            if let Some(p) = u.partner {
                roles.push(format!("{} staff ({})", p.slug, u.role));
            }
            for (t, r) in u.tenants {
                roles.push(format!("{} {r}", t.slug));
            }
            if !u.active {
                roles.push("inactive".to_owned());
            }
            println!("\n# {} <{}> [{}]", u.name, u.email, roles.join(", "));
            println!("{}", emus.issuer.token_for(&u));
        }
    }
    println!();

    stop_signal().await;
    println!("stopping…");
    emus.shutdown().await;
    println!("stopped");
    ExitCode::SUCCESS
}

//! A real `spin up` as a child process, for the end-to-end tests and
//! `make bench` on the runtime users actually run: the same `spin.toml`, the
//! same variables (as `SPIN_VARIABLE_*`), the same in-process emulators.
//!
//! Spin caches compiled components itself (Wasmtime's cache, on by default in
//! `~/.cache/wasmtime`), so only the first start after a build compiles (about
//! 9 s for the twelve components on two cores); later starts take 0.1–0.3 s.
//! [`SpinUp::start`] lets one start at a time compile, so parallel tests do not
//! all compile the same components at once.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};

/// The Spin binaries named by `SPIN_BIN`: a list separated by whitespace or
/// `:` (like `PATH`); empty when unset.
pub fn spin_bins() -> Vec<PathBuf> {
    std::env::var("SPIN_BIN")
        .unwrap_or_default()
        .split(|c: char| c.is_whitespace() || c == ':')
        .filter(|s| !s.is_empty())
        .map(PathBuf::from)
        .collect()
}

/// `spin --version`'s first line, e.g. `spin 4.0.2 (bfc7543b 2026-06-23)`.
pub fn version(bin: &Path) -> anyhow::Result<String> {
    let out = Command::new(bin).arg("--version").output().with_context(|| format!("running {} --version", bin.display()))?;
    if !out.status.success() {
        bail!("{} --version failed: {}", bin.display(), String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&out.stdout).lines().next().unwrap_or_default().trim().to_owned())
}

/// One running `spin up`. Dropping it kills Spin (and anything it started).
pub struct SpinUp {
    child: Child,
    /// Where Spin listens.
    pub addr: SocketAddr,
    /// Spin's state directory: `stdout.txt`, `stderr.txt` and component logs.
    pub dir: PathBuf,
    /// Keep `dir` when dropped (set when a test is failing).
    keep: bool,
}

/// Ports handed to a `spin up` of this process that Spin may not have bound
/// yet, so two starts never get the same one.
fn reserved() -> &'static Mutex<HashSet<u16>> {
    static PORTS: OnceLock<Mutex<HashSet<u16>>> = OnceLock::new();
    PORTS.get_or_init(Default::default)
}

fn free_port() -> anyhow::Result<u16> {
    loop {
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        if reserved().lock().unwrap().insert(port) {
            return Ok(port);
        }
    }
}

/// How a start ended before Spin served.
enum Failed {
    /// Another process took the port between our probe and Spin's bind.
    PortTaken(anyhow::Error),
    Other(anyhow::Error),
}

impl SpinUp {
    /// Starts `bin up --from manifest` on a free local port with `vars` as
    /// `SPIN_VARIABLE_*` (nothing inherited: variables in our own environment
    /// do not leak in), its state under `dir`; returns once Spin serves.
    pub async fn start(bin: &Path, manifest: &Path, vars: &HashMap<String, String>, dir: &Path) -> anyhow::Result<SpinUp> {
        Self::start_with_args(bin, &[], manifest, vars, dir).await
    }

    /// [`SpinUp::start`] with more `spin up` options (e.g. `--disable-cache`).
    pub async fn start_with_args(
        bin: &Path,
        args: &[&str],
        manifest: &Path,
        vars: &HashMap<String, String>,
        dir: &Path,
    ) -> anyhow::Result<SpinUp> {
        // The first start of a process may compile every component: let it
        // finish before the others start (they then load from the cache).
        static FIRST: tokio::sync::Mutex<bool> = tokio::sync::Mutex::const_new(false);
        let mut first = Some(FIRST.lock().await);
        if first.as_deref() == Some(&true) {
            first = None;
        }
        let mut port_races = 0;
        loop {
            let port = free_port()?;
            let started = Self::try_start(bin, args, manifest, vars, dir, port).await;
            reserved().lock().unwrap().remove(&port);
            match started {
                Ok(up) => {
                    if let Some(mut done) = first {
                        *done = true;
                    }
                    return Ok(up);
                }
                Err(Failed::PortTaken(_)) if port_races < 5 => port_races += 1,
                Err(Failed::PortTaken(e) | Failed::Other(e)) => return Err(e),
            }
        }
    }

    async fn try_start(
        bin: &Path,
        args: &[&str],
        manifest: &Path,
        vars: &HashMap<String, String>,
        dir: &Path,
        port: u16,
    ) -> Result<SpinUp, Failed> {
        let other = |e: anyhow::Error| Failed::Other(e);
        std::fs::create_dir_all(dir).map_err(|e| other(e.into()))?;
        let stderr_path = dir.join("stderr.txt");
        let stderr = std::fs::File::create(&stderr_path).map_err(|e| other(e.into()))?;
        let mut cmd = Command::new(bin);
        cmd.arg("up").arg("--from").arg(manifest).arg("--listen").arg(format!("127.0.0.1:{port}")).arg("--state-dir").arg(dir).args(args);
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("SPIN_VARIABLE_") {
                cmd.env_remove(k);
            }
        }
        for (k, v) in vars {
            cmd.env(format!("SPIN_VARIABLE_{}", k.to_uppercase()), v);
        }
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(stderr);
        // Its own process group, so Drop can kill Spin and whatever it
        // started (a wrapper script's child too), and killed with us if this
        // process dies first (Ctrl-C no longer reaches another group).
        cmd.process_group(0);
        // SAFETY: prctl is async-signal-safe and touches no memory of ours.
        unsafe {
            cmd.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let started = Instant::now();
        let mut child = cmd.spawn().with_context(|| format!("starting {}", bin.display())).map_err(other)?;
        let stdout = child.stdout.take().unwrap();
        let mut out_file = std::fs::File::create(dir.join("stdout.txt")).map_err(|e| other(e.into()))?;
        // Spin prints `Serving http://…` once it has bound the port, after
        // every component is compiled: the one sure sign that this Spin (not
        // another process on the same port) is ready.
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel::<bool>();
        std::thread::spawn(move || {
            let mut ready_tx = Some(ready_tx);
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = writeln!(out_file, "{line}");
                if line.starts_with("Serving http://") {
                    if let Some(tx) = ready_tx.take() {
                        let _ = tx.send(true);
                    }
                }
            }
        });
        let mut up = SpinUp { child, addr: ([127, 0, 0, 1], port).into(), dir: dir.to_owned(), keep: false };
        let limit = Duration::from_secs(180);
        match tokio::time::timeout(limit, ready_rx).await {
            Ok(Ok(true)) => Ok(up),
            outcome => {
                let status = up.child.try_wait().ok().flatten();
                let err = std::fs::read_to_string(&stderr_path).unwrap_or_default();
                up.keep = true;
                let why = match outcome {
                    Err(_) => format!("not serving after {limit:?}"),
                    _ => format!(
                        "exited ({}) after {:?} without serving",
                        status.map(|s| s.to_string()).unwrap_or("still running".into()),
                        started.elapsed()
                    ),
                };
                let e = anyhow!("{} up {why}; state in {}; stderr:\n{err}", bin.display(), dir.display());
                // The OS's words, or Spin's own ("127.0.0.1:P is already in
                // use. To have Spin search for a free port, …").
                if err.contains("already in use") || err.contains("address in use") {
                    Err(Failed::PortTaken(e))
                } else {
                    Err(Failed::Other(e))
                }
            }
        }
    }

    /// `http://<addr>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// What Spin wrote to stderr so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.join("stderr.txt")).unwrap_or_default()
    }

    /// Keep the state directory (logs) after Drop.
    pub fn keep_logs(&mut self) {
        self.keep = true;
    }
}

impl Drop for SpinUp {
    fn drop(&mut self) {
        // SAFETY: plain syscall; the group is Spin's own (process_group(0)).
        unsafe {
            libc::kill(-(self.child.id() as i32), libc::SIGKILL);
        }
        let _ = self.child.wait();
        // A failing test shows what Spin said and keeps its logs.
        if std::thread::panicking() {
            let err = self.stderr();
            let tail: Vec<&str> = err.lines().rev().take(40).collect();
            eprintln!("--- spin up stderr (last {} lines; all logs kept in {}):", tail.len(), self.dir.display());
            for line in tail.iter().rev() {
                eprintln!("{line}");
            }
            self.keep = true;
        }
        if !self.keep {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// A fresh state directory under `root` for one `spin up`.
pub fn state_dir(root: &Path) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    root.join(format!("{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed)))
}

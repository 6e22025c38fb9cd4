//! Compiling components, and the on-disk cache of compiled components.
//!
//! Compiling a component with Cranelift takes seconds; loading a compiled
//! one takes milliseconds. Each compiled component is stored as
//! `<cache_dir>/<key>.cwasm`, where the key is a SHA-256 over a format tag,
//! wasmtime's engine-compatibility hash (wasmtime version, target, compiler
//! flags, enabled wasm features) and the `.wasm` bytes. A changed
//! component, wasmtime upgrade or engine setting therefore misses the cache
//! instead of loading incompatible code; identical `.wasm` files share one
//! entry.
//!
//! Safety: `Component::deserialize_file` trusts the file to be wasmtime's
//! own output. The cache directory is written only by this module (via a
//! temporary file and an atomic rename), so it must not be shared with
//! untrusted writers.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};
use wasmtime::component::Component;
use wasmtime::{Config, Engine, OptLevel, Strategy};

/// Bump when the cache layout or key recipe changes.
const CACHE_FORMAT: &str = "dev-host-cwasm-v1";

/// The engine every component of an app is compiled for and runs on.
pub fn new_engine() -> Result<Engine> {
    let mut config = Config::new();
    config.strategy(Strategy::Cranelift);
    config.cranelift_opt_level(OptLevel::Speed);
    config.parallel_compilation(true);
    config.wasm_component_model(true);
    Engine::new(&config).map_err(Into::into)
}

/// How a component was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheOutcome {
    /// Loaded from an earlier compilation.
    Hit,
    /// Compiled now (and stored for next time).
    Compiled,
}

/// The compiled-component cache for one engine.
pub struct ComponentCache {
    dir: PathBuf,
    engine_fingerprint: [u8; 32],
}

/// Feeds `Hash` output into SHA-256 so the engine fingerprint is stable
/// across runs (std's `DefaultHasher` makes no such promise).
struct Sha256Hasher(Sha256);

impl Hasher for Sha256Hasher {
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    fn finish(&self) -> u64 {
        let digest = self.0.clone().finalize();
        u64::from_le_bytes(digest[..8].try_into().expect("digest is 32 bytes"))
    }
}

impl ComponentCache {
    pub fn new(engine: &Engine, dir: &Path) -> Result<ComponentCache> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating component cache directory {}", dir.display()))?;
        let mut hasher = Sha256Hasher(Sha256::new());
        engine.precompile_compatibility_hash().hash(&mut hasher);
        Ok(ComponentCache { dir: dir.to_path_buf(), engine_fingerprint: hasher.0.finalize().into() })
    }

    /// The cache file for these `.wasm` bytes.
    pub fn entry_path(&self, wasm: &[u8]) -> PathBuf {
        let mut sha = Sha256::new();
        sha.update(CACHE_FORMAT.as_bytes());
        sha.update(self.engine_fingerprint);
        sha.update(wasm);
        let key: String = sha.finalize().iter().map(|b| format!("{b:02x}")).collect();
        self.dir.join(format!("{key}.cwasm"))
    }

    /// Loads the compiled component for `wasm` from the cache, or compiles
    /// and stores it. `source` is only used in messages.
    pub fn load_or_compile(&self, engine: &Engine, wasm: &[u8], source: &Path) -> Result<(Component, CacheOutcome)> {
        let entry = self.entry_path(wasm);
        if entry.is_file() {
            // SAFETY: entries are written only by `store` below, from
            // `Component::serialize` for an engine with this fingerprint.
            match unsafe { Component::deserialize_file(engine, &entry) } {
                Ok(component) => return Ok((component, CacheOutcome::Hit)),
                Err(e) => eprintln!("dev-host: ignoring unreadable cache entry {} ({e}); recompiling", entry.display()),
            }
        }
        let component = Component::from_binary(engine, wasm).map_err(anyhow::Error::from).with_context(|| {
            format!("compiling {} (it must be a WASI 0.2 component: build with --target wasm32-wasip2)", source.display())
        })?;
        // A failed cache write only costs a recompile next time.
        if let Err(e) = self.store(&component, &entry) {
            eprintln!("dev-host: could not write cache entry {}: {e:#}", entry.display());
        }
        Ok((component, CacheOutcome::Compiled))
    }

    fn store(&self, component: &Component, entry: &Path) -> Result<()> {
        static UNIQUE: AtomicU64 = AtomicU64::new(0);
        let bytes = component.serialize()?;
        // Write-then-rename so a concurrent reader (another test process)
        // never sees a half-written entry.
        let tmp = entry.with_extension(format!("tmp.{}.{}", std::process::id(), UNIQUE.fetch_add(1, Ordering::Relaxed)));
        std::fs::write(&tmp, &bytes).with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, entry).with_context(|| format!("renaming {}", tmp.display()))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_key_depends_on_bytes_only_for_one_engine() {
        let engine = new_engine().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let cache = ComponentCache::new(&engine, dir.path()).unwrap();
        let again = ComponentCache::new(&new_engine().unwrap(), dir.path()).unwrap();
        assert_eq!(cache.entry_path(b"abc"), again.entry_path(b"abc"));
        assert_ne!(cache.entry_path(b"abc"), cache.entry_path(b"abd"));
        assert!(cache.entry_path(b"abc").starts_with(dir.path()));
    }

    #[test]
    fn caches_a_compiled_component() {
        let engine = new_engine().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let cache = ComponentCache::new(&engine, dir.path()).unwrap();
        // The smallest valid component: no imports, no exports.
        let wasm = b"\0asm\x0d\0\x01\0";
        let (_, first) = cache.load_or_compile(&engine, wasm, Path::new("empty.wasm")).unwrap();
        let (_, second) = cache.load_or_compile(&engine, wasm, Path::new("empty.wasm")).unwrap();
        assert_eq!(first, CacheOutcome::Compiled);
        assert_eq!(second, CacheOutcome::Hit);
        // A core module is not a component.
        let core = b"\0asm\x01\0\0\0";
        let err = cache.load_or_compile(&engine, core, Path::new("core.wasm")).unwrap_err();
        assert!(format!("{err:#}").contains("wasm32-wasip2"), "{err:#}");
    }
}

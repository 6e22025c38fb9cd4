//! `App`: a manifest with its components compiled and linked, ready to be
//! served any number of times.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use wasmtime::component::Component;
use wasmtime::Engine;
use wasmtime_wasi_http::p2::bindings::ProxyPre;

use crate::cache::{new_engine, CacheOutcome, ComponentCache};
use crate::key_value;
use crate::manifest::{Manifest, TriggerRoute};
use crate::routes::Router;
use crate::runtime::{self, HostState};

/// A loaded Spin app: the manifest, its route table, and every component
/// named by an HTTP trigger, compiled (or loaded from the cache) and
/// pre-instantiated.
pub struct App {
    manifest: Manifest,
    engine: Engine,
    router: Router,
    components: BTreeMap<String, LoadedComponent>,
    stats: LoadStats,
}

pub(crate) struct LoadedComponent {
    pub(crate) wasm: PathBuf,
    pub(crate) pre: ProxyPre<HostState>,
}

/// What `App::load` did, for start-up reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoadStats {
    /// Wall time of `App::load`: manifest, compile or cache load, linking.
    pub elapsed: Duration,
    /// Distinct `.wasm` files compiled now.
    pub compiled: usize,
    /// Distinct `.wasm` files loaded from the cache.
    pub from_cache: usize,
}

impl App {
    /// Loads the manifest, compiles (or loads from `cache_dir`) every
    /// component an HTTP trigger names, and links each one. Identical
    /// `.wasm` files are compiled once; different ones are compiled on
    /// parallel threads.
    ///
    /// Fails as `spin up` does before compiling anything when a component
    /// lists a `key_value_stores` label no store has (only `default` exists
    /// here: the dev host reads no runtime-config file).
    pub fn load(manifest: &Path, cache_dir: &Path) -> Result<App> {
        let started = Instant::now();
        let manifest = Manifest::load(manifest)?;
        key_value::check_labels(&manifest)?;

        let routes: Vec<(&str, &str)> = manifest
            .http_triggers
            .iter()
            .filter_map(|t| match &t.route {
                TriggerRoute::Path(route) => Some((route.as_str(), t.component.as_str())),
                TriggerRoute::Private => None,
            })
            .collect();
        let (router, duplicates) = Router::build(routes)?;
        for dup in duplicates {
            eprintln!(
                "dev-host: warning: route {:?} is used by components {:?} and {:?}; only {:?} is reachable",
                dup.route, dup.replaced, dup.effective, dup.effective
            );
        }

        let engine = new_engine()?;
        let cache = ComponentCache::new(&engine, cache_dir)?;

        // Component ids in trigger order, and the distinct wasm files they use.
        let mut ids: Vec<&str> = Vec::new();
        for trigger in &manifest.http_triggers {
            if !ids.contains(&trigger.component.as_str()) {
                ids.push(&trigger.component);
            }
        }
        let mut sources: Vec<&Path> = Vec::new();
        for id in &ids {
            let source = manifest.components[*id].source.as_path();
            if !sources.contains(&source) {
                sources.push(source);
            }
        }

        let compiled = compile_all(&engine, &cache, &sources)?;
        let stats_compiled = compiled.values().filter(|(_, o)| *o == CacheOutcome::Compiled).count();
        let stats_cached = compiled.len() - stats_compiled;

        let linker = runtime::base_linker(&engine)?;
        let mut components = BTreeMap::new();
        for id in ids {
            let source = &manifest.components[id].source;
            let (component, _) = &compiled[source];
            let (pre, stubbed) = runtime::prepare(&linker, component, id)?;
            if let Some(missing) = stubbed {
                eprintln!(
                    "dev-host: warning: component {id:?} imports interfaces the dev host does not provide; calling them traps ({missing})"
                );
            }
            components.insert(id.to_string(), LoadedComponent { wasm: source.clone(), pre });
        }

        Ok(App {
            manifest,
            engine,
            router,
            components,
            stats: LoadStats { elapsed: started.elapsed(), compiled: stats_compiled, from_cache: stats_cached },
        })
    }

    /// `(component id, .wasm path)` for every loaded component.
    pub fn components(&self) -> impl Iterator<Item = (&str, &Path)> {
        self.components.iter().map(|(id, c)| (id.as_str(), c.wasm.as_path()))
    }

    /// `(route as written, component id)` in the order routes are tried.
    pub fn routes(&self) -> impl Iterator<Item = (&str, &str)> {
        self.router.entries().iter().map(|e| (e.raw_route.as_str(), e.component.as_str()))
    }

    /// The parsed manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// How long loading took and what came from the cache.
    pub fn load_stats(&self) -> LoadStats {
        self.stats
    }

    pub(crate) fn engine(&self) -> &Engine {
        &self.engine
    }

    pub(crate) fn router(&self) -> &Router {
        &self.router
    }

    pub(crate) fn component(&self, id: &str) -> Option<&LoadedComponent> {
        self.components.get(id)
    }
}

/// Reads and compiles each distinct source, one thread per file (Cranelift
/// also parallelises inside each compilation).
fn compile_all(engine: &Engine, cache: &ComponentCache, sources: &[&Path]) -> Result<BTreeMap<PathBuf, (Component, CacheOutcome)>> {
    let results: Vec<Result<(PathBuf, (Component, CacheOutcome))>> = std::thread::scope(|scope| {
        let handles: Vec<_> = sources
            .iter()
            .map(|source| {
                scope.spawn(move || {
                    let wasm = std::fs::read(source).with_context(|| format!("reading component {}", source.display()))?;
                    let loaded = cache.load_or_compile(engine, &wasm, source)?;
                    Ok((source.to_path_buf(), loaded))
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or_else(|_| Err(anyhow::anyhow!("compiler thread panicked")))).collect()
    });
    results.into_iter().collect()
}

//! Per-request wasm state: what a component's store holds, which host
//! interfaces it may import, and how a fresh store is set up.
//!
//! Components are linked once at load (`ProxyPre`, a pre-instantiated
//! component), and every request gets a new `Store` and instance, as on
//! Spin: no state survives between requests.
//!
//! Imports provided: all of WASI 0.2 (`wasmtime_wasi::p2`), `wasi:http`
//! (types and outgoing-handler, via `wasmtime_wasi_http::p2`),
//! `fermyon:spin/variables@2.0.0` and `fermyon:spin/key-value@2.0.0` (open
//! stores are resources in the same table as WASI's). The WASI context
//! grants no environment, no arguments, no preopened directories and no
//! sockets (TCP, UDP and name lookup are off, so only `wasi:http` reaches
//! the network, through the allow-list). Anything else a component imports
//! (other Spin interfaces such as sqlite, or other key-value versions) is
//! linked as a stub that traps when called; loading prints which imports
//! those are.

use std::sync::Arc;

use anyhow::{Context, Result};
use wasmtime::component::{Component, HasSelf, Linker, ResourceTable};
use wasmtime::{Engine, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::key_value::{self, ComponentStores, KeyValueData, KeyValueView};
use crate::memory::MemoryMeter;
use crate::outbound::{OutboundHooks, OutboundPolicy};
use crate::stdio::PrefixedStdio;
use crate::variables::{self, ComponentVariables, VariablesView};

/// The `T` of every request's `Store<T>`.
pub struct HostState {
    table: ResourceTable,
    wasi: WasiCtx,
    http: WasiHttpCtx,
    hooks: OutboundHooks,
    variables: VariablesView,
    key_value: Arc<ComponentStores>,
    memory: MemoryMeter,
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl WasiHttpView for HostState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView { ctx: &mut self.http, table: &mut self.table, hooks: &mut self.hooks }
    }
}

/// The linker shared by all components of an app.
pub fn base_linker(engine: &Engine) -> Result<Linker<HostState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
    variables::add_to_linker::<HostState, HasSelf<VariablesView>>(&mut linker, |state| &mut state.variables)?;
    key_value::add_to_linker::<HostState, KeyValueData>(&mut linker, |state| KeyValueView {
        table: &mut state.table,
        stores: &state.key_value,
    })?;
    Ok(linker)
}

/// Links a compiled component and checks that it is an HTTP handler.
/// Returns the pre-instantiated component and, if some imports had to be
/// stubbed, a description of them.
pub fn prepare(base: &Linker<HostState>, component: &Component, id: &str) -> Result<(ProxyPre<HostState>, Option<String>)> {
    let (instance_pre, stubbed) = match base.instantiate_pre(component) {
        Ok(pre) => (pre, None),
        Err(missing) => {
            let mut linker = base.clone();
            linker.define_unknown_imports_as_traps(component)?;
            let pre =
                linker.instantiate_pre(component).map_err(anyhow::Error::from).with_context(|| format!("linking component {id:?}"))?;
            (pre, Some(format!("{missing}")))
        }
    };
    let pre = ProxyPre::new(instance_pre)
        .map_err(anyhow::Error::from)
        .with_context(|| format!("component {id:?} does not export wasi:http/incoming-handler@0.2.x (is it an HTTP component?)"))?;
    Ok((pre, stubbed))
}

/// A fresh store for one request to component `policy.component_id`,
/// with `memory` as its resource limiter (it measures, never limits).
pub fn new_store(
    engine: &Engine,
    policy: Arc<OutboundPolicy>,
    variables: Arc<ComponentVariables>,
    key_value: Arc<ComponentStores>,
    memory: MemoryMeter,
) -> Store<HostState> {
    let id = policy.component_id.as_str();
    let wasi = WasiCtx::builder()
        .stdout(PrefixedStdio::stdout(id))
        .stderr(PrefixedStdio::stderr(id))
        .allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false)
        .build();
    let mut store = Store::new(
        engine,
        HostState {
            table: ResourceTable::new(),
            wasi,
            http: WasiHttpCtx::new(),
            hooks: OutboundHooks(policy),
            variables: VariablesView(variables),
            key_value,
            memory,
        },
    );
    store.limiter(|state| &mut state.memory);
    store
}

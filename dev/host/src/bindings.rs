//! Host-side bindings of the Spin interfaces the dev host implements
//! (`wit/world.wit`): `fermyon:spin/variables@2.0.0` (see
//! [`crate::variables`]) and `fermyon:spin/key-value@2.0.0` (see
//! [`crate::key_value`]). Key-value calls are `async` (the SQLite work runs
//! on a blocking thread) and may trap, as Spin's do, on a handle that is
//! not an open store.

wasmtime::component::bindgen!({
    path: "wit",
    world: "dev-host",
    imports: {
        "fermyon:spin/key-value": async | trappable,
    },
    with: {
        "fermyon:spin/key-value.store": crate::key_value::OpenStore,
    },
});

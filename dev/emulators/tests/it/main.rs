//! The emulators' tests, one binary: a module per emulator and wire surface.

mod authentik_api;
mod data_api_ejson;
mod data_api_engine;
mod data_api_http;
mod data_api_wire;
mod issuer_tokens;
mod ocis_graph;
mod stalwart_jmap;

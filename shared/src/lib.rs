//! The domain crate every component links: models, rules, authorisation,
//! and typed clients of the Data API, Authentik, Stalwart and OCIS.
//!
//! Invariants:
//! - The domain talks to the world only through [`ports`]; in a component
//!   those are Spin's (see [`spin`]), in native tests in-memory fakes.
//! - A raw request string never reaches a filter: bodies and path values are
//!   parsed into [`types`] first.
//! - Every mutation writes its audit event before it answers.

pub mod access;
pub mod audit;
pub mod auth;
pub mod authentik;
pub mod caller;
#[cfg(test)]
mod canned;
pub mod config;
pub mod cors;
pub mod ctx;
pub mod data_api;
pub mod ejson;
pub mod models;
pub mod needs;
pub mod ocis;
pub mod ops;
pub mod ports;
pub mod problem;
pub mod random;
pub mod reports;
pub mod request;
pub mod retry;
pub mod routes;
pub mod stalwart;
pub mod types;
pub mod upstream;

#[cfg(target_arch = "wasm32")]
pub mod spin;

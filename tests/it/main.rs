//! The end-to-end suite, one binary (one link of wasmtime and the emulators):
//! each module is what was a test file, named for what it covers. The
//! in-process modules (imports, clients, kubernetes) run on the dev host only;
//! dev/test.sh skips them on real Spin, and runs `soak` on its own.

mod aliases;
mod bad_input;
mod browser;
mod clients;
mod cors;
mod defects;
mod docs;
mod imports;
mod in_flight;
mod invariants;
mod invites;
mod jwks_cache;
mod kubernetes;
mod lifecycle;
mod list_order;
mod mailbox;
mod manifest;
mod me_composed;
mod members;
mod members_ii;
mod oldest_domain;
mod openapi;
mod ownership;
mod partner_portal;
mod profile;
mod races;
mod rights;
mod round_trip_floors;
mod soak;
mod soak_findings;
mod typescript;
mod users;

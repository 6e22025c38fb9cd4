//! Local stand-ins for the four upstream systems, speaking their real wire
//! contracts (`../shared/contracts/*.md`), plus a dev OIDC token issuer.
//! Each emulator is an axum router wrapped by [`faults::Controls`].

pub mod authentik;
pub mod demo;
pub mod faults;
pub mod ocis;
pub mod stalwart;

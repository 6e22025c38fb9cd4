//! Token verification.

pub mod jwks;
pub mod jwt;

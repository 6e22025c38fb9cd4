//! MongoDB query, update and aggregation semantics over `bson` documents, as
//! the MongoDB manual describes them.
//!
//! No maintained crate gives these semantics (array traversal, null matching
//! missing, cross-type numeric equality, upserts from filters, the update
//! no-op rule, aggregation), so the emulator carries its own:
//!
//! - [`compare`]: BSON comparison order, numeric equality, strict identity;
//! - [`query`]: filters ([`Filter`]), projections ([`Projection`]), sorts
//!   ([`SortSpec`]);
//! - [`update`]: update operators ([`Update`]), replacements, upsert seeds;
//! - [`aggregate`]: pipelines ([`Pipeline`]) and aggregation expressions.
//!
//! Everything parses its specification first and reports an [`EngineError`]
//! for unknown operators or malformed arguments, so a bad request fails the
//! same way whether or not any document would be touched.

pub mod aggregate;
pub mod compare;
mod dates;
pub mod query;
pub mod update;

pub use aggregate::Pipeline;
pub use query::{Filter, Projection, SortSpec};
pub use update::Update;

use std::fmt;

use bson::{Bson, Document};

/// The `error_code` of a malformed request or an unknown operator.
pub const INVALID_PARAMETER: &str = "InvalidParameter";
/// The `error_code` of a write that would duplicate an `_id`.
pub const DUPLICATE_KEY: &str = "DuplicateKey";

/// A request the engine refuses: maps to HTTP 400 with `error_code` = `code`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EngineError {
    pub code: &'static str,
    pub message: String,
}

impl EngineError {
    /// A malformed specification, an unknown operator or a failed write
    /// (`InvalidParameter`).
    pub fn bad(message: impl Into<String>) -> Self {
        EngineError { code: INVALID_PARAMETER, message: message.into() }
    }
    pub fn duplicate_key(message: impl Into<String>) -> Self {
        EngineError { code: DUPLICATE_KEY, message: message.into() }
    }
}

impl fmt::Display for EngineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for EngineError {}

pub type Result<T> = std::result::Result<T, EngineError>;

/// Splits a dotted field path into its components, refusing empty ones.
pub(crate) fn split_path(path: &str) -> Result<Vec<String>> {
    if path.is_empty() {
        return Err(EngineError::bad("FieldPath cannot be constructed with empty string"));
    }
    let parts: Vec<String> = path.split('.').map(str::to_owned).collect();
    if parts.iter().any(String::is_empty) {
        return Err(EngineError::bad(format!("FieldPath must not contain an empty field name: '{path}'")));
    }
    Ok(parts)
}

/// A numeric path component (`"0"`, `"12"`) as an array index.
pub(crate) fn array_index(part: &str) -> Option<usize> {
    if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) || (part.len() > 1 && part.starts_with('0')) {
        return None;
    }
    part.parse().ok()
}

/// A short human rendering of a value for error messages (relaxed EJSON).
pub(crate) fn show(v: &Bson) -> String {
    v.clone().into_relaxed_extjson().to_string()
}

/// MongoDB's name of a value's BSON type, for messages (the gateway's: one list).
pub use gateway::ejson::type_name;

/// An integer argument (Int32, Int64 or an integral Double).
pub(crate) fn integer_arg(v: &Bson) -> Option<i64> {
    match v {
        Bson::Int32(_) | Bson::Int64(_) | Bson::Double(_) | Bson::Decimal128(_) => compare::as_i64_exact(v),
        _ => None,
    }
}

/// Moves `_id` to the front of a document, as the server does on insert.
pub fn id_first(doc: Document) -> Document {
    if doc.keys().next().map(String::as_str) == Some("_id") || !doc.contains_key("_id") {
        return doc;
    }
    let mut out = Document::new();
    let mut doc = doc;
    if let Some(id) = doc.remove("_id") {
        out.insert("_id", id);
    }
    out.extend(doc);
    out
}

//! Spin's key-value store: the host side of `fermyon:spin/key-value@2.0.0`
//! (what `spin_sdk::key_value` 5.2 imports) and Spin's `default` store.
//!
//! Spin's model (v3.6.3 and v4.0.2: `crates/factor-key-value`,
//! `crates/key-value-spin`, `crates/runtime-config`), reproduced here:
//! - A component may open only the labels its `key_value_stores` lists;
//!   any other label is `error::access-denied` at `open`, whether or not
//!   a store has that label.
//! - Every label a component lists must be a store the runtime config
//!   defines, or the app does not start (`KeyValueFactor::configure_app`).
//!   The dev host reads no runtime-config file, so `default` is the only
//!   store: any other label stops [`crate::App::load`] with Spin's error.
//! - `default` is a SQLite database, `sqlite_key_value.db` in the state
//!   directory (`.spin/` beside `spin.toml` unless told otherwise, see
//!   [`StateDir`]), in Spin's own schema: one table `spin_key_value
//!   (store, key, value)` keyed by `(store, key)`. The file is Spin's
//!   format, so `spin up` on the same state directory sees the same data.
//!   With no state directory the store is in memory, for one `serve`.
//! - Stores are the app's, not a component's: two components listing
//!   `default` share it. One connection per store per `serve` (opened on
//!   first use, as Spin does), shared by every request; data outlives
//!   instances and, on disk, the host.
//! - `get` of a missing key is `ok(none)`, `delete` of one is `ok`; SQLite
//!   failures are `error::other` with the error's debug text; a value or
//!   key list over 128 MiB (`MAX_HOST_BUFFERED_BYTES`) is
//!   `error::other("query result exceeds limit of 134217728 bytes")`.
//!
//! Not provided (linked as stubs that trap, as every interface the dev
//! host lacks, see [`crate::runtime`]): the unversioned
//! `fermyon:spin/key-value` (Spin 1 SDKs), `wasi:keyvalue@0.2.0-draft2`
//! and `spin:key-value@3.0.0` (WASIp3), which Spin also links.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use anyhow::{anyhow, Context, Result};
use rusqlite::Connection;
use wasmtime::component::{HasData, Resource, ResourceTable};

pub use crate::bindings::fermyon::spin::key_value::add_to_linker;
use crate::bindings::fermyon::spin::key_value::{Error, Host, HostStore};
use crate::manifest::Manifest;

/// The one store the dev host defines (Spin's `DEFAULT_KEY_VALUE_STORE_LABEL`).
pub const DEFAULT_STORE: &str = "default";

/// The default store's file name in the state directory (Spin's
/// `DEFAULT_SPIN_STORE_FILENAME`).
pub const DEFAULT_STORE_FILENAME: &str = "sqlite_key_value.db";

/// The most a `get` or `get-keys` answer may hold (Spin's
/// `spin_world::MAX_HOST_BUFFERED_BYTES`, 128 MiB).
pub const MAX_HOST_BUFFERED_BYTES: usize = 128 << 20;

/// Where a served app keeps its state, as Spin's `spin up --state-dir`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum StateDir {
    /// `.spin/` beside the manifest: Spin's default for a local app.
    #[default]
    Default,
    /// This directory (a relative path is taken from the working
    /// directory, as Spin does).
    Path(PathBuf),
    /// No state directory (`--state-dir ""`): the default store is in
    /// memory and lasts as long as one `serve`.
    Unset,
}

impl StateDir {
    /// The directory itself, if there is one.
    pub fn resolve(&self, manifest_dir: &Path) -> Result<Option<PathBuf>> {
        Ok(match self {
            StateDir::Default => Some(manifest_dir.join(".spin")),
            StateDir::Path(dir) => Some(std::path::absolute(dir).with_context(|| format!("resolving state dir {}", dir.display()))?),
            StateDir::Unset => None,
        })
    }
}

/// Checks a label's spelling as Spin's manifest does (`kebab_or_snake_case`
/// in `crates/manifest/src/schema/v2.rs`): a kebab-case or a snake_case id
/// (`spin_serde::{KebabId, SnakeId}`).
pub fn validate_label(label: &str) -> Result<(), String> {
    if is_id(label, '-') || is_id(label, '_') {
        Ok(())
    } else {
        Err(format!("expected kebab-case or snake_case, got {label:?}"))
    }
}

/// `spin_serde::id::Id<DELIM, false>`: words separated by `delim`, none
/// empty, each starting with an ASCII letter, then ASCII letters and
/// digits, its letters all lower-case or all upper-case.
fn is_id(id: &str, delim: char) -> bool {
    let wrong = if delim == '-' { '_' } else { '-' };
    !id.is_empty()
        && !id.contains(wrong)
        && id.split(delim).all(|word| {
            let mut chars = word.chars();
            let Some(first) = chars.next().filter(char::is_ascii_alphabetic) else {
                return false;
            };
            let upper = first.is_ascii_uppercase();
            chars.all(|c| c.is_ascii_digit() || (c.is_ascii_alphanumeric() && c.is_ascii_uppercase() == upper))
        })
}

/// Whether the dev host defines a store with this label: only `default`
/// (no runtime-config file adds others).
pub fn is_defined(label: &str) -> bool {
    label == DEFAULT_STORE
}

/// Spin's start-up check (`KeyValueFactor::configure_app`): every label a
/// component lists must be a defined store, or the app does not start.
/// The error reads as Spin's does.
pub fn check_labels(manifest: &Manifest) -> Result<()> {
    for (id, component) in &manifest.components {
        if let Some(label) = component.key_value_stores.iter().find(|label| !is_defined(label)) {
            return Err(anyhow!("unknown key_value_stores label {label:?} for component {id:?}")
                .context("spin_factor_key_value::KeyValueFactor::configure_app failed")
                .context("failed to configure app"));
        }
    }
    Ok(())
}

/// True when some component lists `default` (Spin then says where it keeps
/// the default store's data).
pub fn default_store_used(manifest: &Manifest) -> bool {
    manifest.components.values().any(|c| c.key_value_stores.iter().any(|label| label == DEFAULT_STORE))
}

/// Where a SQLite store lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseLocation {
    InMemory,
    Path(PathBuf),
}

/// The stores of one served app (one per `serve`, as one `spin up`).
pub struct StoreManager {
    default: SqliteStore,
}

impl StoreManager {
    /// The app's stores, with the default one in `state_dir` (in memory
    /// without one). Nothing is opened yet.
    pub fn new(state_dir: Option<&Path>) -> StoreManager {
        let location = match state_dir {
            Some(dir) => DatabaseLocation::Path(dir.join(DEFAULT_STORE_FILENAME)),
            None => DatabaseLocation::InMemory,
        };
        StoreManager { default: SqliteStore { location, connection: OnceLock::new() } }
    }

    /// Where the default store keeps its data.
    pub fn default_location(&self) -> &DatabaseLocation {
        &self.default.location
    }

    /// Spin's summary of the default store: a quoted path, or "a temporary
    /// in-memory store".
    pub fn default_summary(&self) -> String {
        match &self.default.location {
            DatabaseLocation::InMemory => "a temporary in-memory store".into(),
            DatabaseLocation::Path(path) => format!("\"{}\"", path.display()),
        }
    }

    /// Creates the default store's directory if it is missing (Spin does
    /// this when it starts; the database file itself appears on first use).
    pub fn create_dirs(&self) -> Result<()> {
        if let DatabaseLocation::Path(path) = &self.default.location {
            if let Some(parent) = path.parent().filter(|p| !p.exists()) {
                std::fs::create_dir_all(parent)
                    .with_context(|| format!("failed to create key value store's parent directory: '{}", parent.display()))?;
            }
        }
        Ok(())
    }

    /// The connection behind `label`, opened (and the table created) on
    /// first use. Blocking.
    fn connection(&self, label: &str) -> Result<Arc<Mutex<Connection>>, StoreError> {
        if !is_defined(label) {
            return Err(StoreError::Guest(Error::NoSuchStore));
        }
        self.default.connection()
    }
}

/// A SQLite-backed store manager (Spin's `KeyValueSqlite`).
struct SqliteStore {
    location: DatabaseLocation,
    connection: OnceLock<Arc<Mutex<Connection>>>,
}

impl SqliteStore {
    fn connection(&self) -> Result<Arc<Mutex<Connection>>, StoreError> {
        if let Some(connection) = self.connection.get() {
            return Ok(connection.clone());
        }
        // Two first uses at once may both open one; the first one kept wins.
        let connection = match &self.location {
            DatabaseLocation::InMemory => Connection::open_in_memory(),
            DatabaseLocation::Path(path) => Connection::open(path),
        }?;
        connection.execute(
            "CREATE TABLE IF NOT EXISTS spin_key_value (
                store TEXT NOT NULL,
                key   TEXT NOT NULL,
                value BLOB NOT NULL,

                PRIMARY KEY (store, key)
            )",
            [],
        )?;
        Ok(self.connection.get_or_init(|| Arc::new(Mutex::new(connection))).clone())
    }
}

/// A failure inside a store call: a guest-visible error, or SQLite's
/// (which the guest sees as `error::other`, as on Spin).
enum StoreError {
    Guest(Error),
    Sqlite(String),
}

impl From<rusqlite::Error> for StoreError {
    fn from(err: rusqlite::Error) -> StoreError {
        StoreError::Sqlite(format!("{err:?}"))
    }
}

/// What one component may open: the labels of its `key_value_stores`,
/// in the app's stores.
pub struct ComponentStores {
    component_id: String,
    allowed: HashSet<String>,
    manager: Arc<StoreManager>,
}

impl ComponentStores {
    pub fn new(component_id: &str, labels: &[String], manager: Arc<StoreManager>) -> ComponentStores {
        ComponentStores { component_id: component_id.to_string(), allowed: labels.iter().cloned().collect(), manager }
    }

    /// Runs `work` on a blocking thread (SQLite calls block) and turns its
    /// failure into the guest's error, logging SQLite's as Spin does.
    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
    ) -> wasmtime::Result<Result<T, Error>> {
        let outcome =
            tokio::task::spawn_blocking(work).await.map_err(|e| wasmtime::Error::from(e).context("key-value worker thread failed"))?;
        Ok(outcome.map_err(|err| match err {
            StoreError::Guest(err) => err,
            StoreError::Sqlite(text) => {
                eprintln!("dev-host: warning: component '{}' key-value error: {text}", self.component_id);
                Error::Other(text)
            }
        }))
    }
}

/// An open store: the value behind a guest's `store` handle.
pub struct OpenStore {
    label: String,
    connection: Arc<Mutex<Connection>>,
}

impl OpenStore {
    /// The label and the connection, for a call on a blocking thread.
    fn parts(&self) -> (String, Arc<Mutex<Connection>>) {
        (self.label.clone(), self.connection.clone())
    }
}

fn lock(connection: &Mutex<Connection>) -> std::sync::MutexGuard<'_, Connection> {
    connection.lock().unwrap_or_else(PoisonError::into_inner)
}

fn over_limit() -> StoreError {
    StoreError::Guest(Error::Other(format!("query result exceeds limit of {MAX_HOST_BUFFERED_BYTES} bytes")))
}

/// What a request's store lends the `fermyon:spin/key-value` host calls:
/// the resource table (open stores are resources in it) and the
/// component's stores.
pub struct KeyValueView<'a> {
    pub(crate) table: &'a mut ResourceTable,
    pub(crate) stores: &'a ComponentStores,
}

/// The `HasData` marker for [`KeyValueView`].
pub struct KeyValueData;

impl HasData for KeyValueData {
    type Data<'a> = KeyValueView<'a>;
}

impl Host for KeyValueView<'_> {}

impl HostStore for KeyValueView<'_> {
    async fn open(&mut self, label: String) -> wasmtime::Result<Result<Resource<OpenStore>, Error>> {
        if !self.stores.allowed.contains(&label) {
            return Ok(Err(Error::AccessDenied));
        }
        let manager = self.stores.manager.clone();
        let name = label.clone();
        let connection = match self.stores.blocking(move || manager.connection(&name)).await? {
            Ok(connection) => connection,
            Err(err) => return Ok(Err(err)),
        };
        Ok(self.table.push(OpenStore { label, connection }).map_err(|_| Error::StoreTableFull))
    }

    async fn get(&mut self, store: Resource<OpenStore>, key: String) -> wasmtime::Result<Result<Option<Vec<u8>>, Error>> {
        let (label, connection) = self.table.get(&store)?.parts();
        self.stores
            .blocking(move || {
                let connection = lock(&connection);
                let mut statement = connection.prepare_cached("SELECT value FROM spin_key_value WHERE store=$1 AND key=$2")?;
                let value = statement.query_map([&label, &key], |row| row.get::<_, Vec<u8>>(0))?.next().transpose()?;
                if size_of::<Option<Vec<u8>>>() + value.as_ref().map_or(0, Vec::len) > MAX_HOST_BUFFERED_BYTES {
                    return Err(over_limit());
                }
                Ok(value)
            })
            .await
    }

    async fn set(&mut self, store: Resource<OpenStore>, key: String, value: Vec<u8>) -> wasmtime::Result<Result<(), Error>> {
        let (label, connection) = self.table.get(&store)?.parts();
        self.stores
            .blocking(move || {
                lock(&connection)
                    .prepare_cached(
                        "INSERT INTO spin_key_value (store, key, value) VALUES ($1, $2, $3)
                         ON CONFLICT(store, key) DO UPDATE SET value=$3",
                    )?
                    .execute(rusqlite::params![label, key, value])?;
                Ok(())
            })
            .await
    }

    async fn delete(&mut self, store: Resource<OpenStore>, key: String) -> wasmtime::Result<Result<(), Error>> {
        let (label, connection) = self.table.get(&store)?.parts();
        self.stores
            .blocking(move || {
                lock(&connection).prepare_cached("DELETE FROM spin_key_value WHERE store=$1 AND key=$2")?.execute([&label, &key])?;
                Ok(())
            })
            .await
    }

    async fn exists(&mut self, store: Resource<OpenStore>, key: String) -> wasmtime::Result<Result<bool, Error>> {
        // Spin's `exists` is a `get` without the size limit.
        let (label, connection) = self.table.get(&store)?.parts();
        self.stores
            .blocking(move || {
                let connection = lock(&connection);
                let mut statement = connection.prepare_cached("SELECT value FROM spin_key_value WHERE store=$1 AND key=$2")?;
                let found = statement.query_map([&label, &key], |row| row.get::<_, Vec<u8>>(0))?.next().transpose()?.is_some();
                Ok(found)
            })
            .await
    }

    async fn get_keys(&mut self, store: Resource<OpenStore>) -> wasmtime::Result<Result<Vec<String>, Error>> {
        let (label, connection) = self.table.get(&store)?.parts();
        self.stores
            .blocking(move || {
                let connection = lock(&connection);
                let mut statement = connection.prepare_cached("SELECT key FROM spin_key_value WHERE store=$1")?;
                let mut bytes = size_of::<Vec<String>>();
                let mut keys = Vec::new();
                for key in statement.query_map([&label], |row| row.get::<_, String>(0))? {
                    let key = key?;
                    bytes += size_of::<String>() + key.len();
                    if bytes > MAX_HOST_BUFFERED_BYTES {
                        return Err(over_limit());
                    }
                    keys.push(key);
                }
                Ok(keys)
            })
            .await
    }

    async fn drop(&mut self, store: Resource<OpenStore>) -> wasmtime::Result<()> {
        self.table.delete(store)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_spelled_as_spin_requires() {
        for ok in ["default", "snake_case", "kebab-case", "a1", "x", "UPPER", "UPPER-lower2", "jwks_cache2"] {
            assert_eq!(validate_label(ok), Ok(()), "{ok}");
        }
        for bad in ["", "b@dlabel", "mixed_and-delims", "1abc", "a--b", "a__b", "-a", "a_", "camelCase", "Mixed-case", "a b", "ä"] {
            assert!(validate_label(bad).is_err(), "{bad}");
        }
        assert_eq!(validate_label("b@dlabel").unwrap_err(), "expected kebab-case or snake_case, got \"b@dlabel\"");
    }

    #[test]
    fn state_dir_resolution() {
        let manifest_dir = Path::new("/app");
        assert_eq!(StateDir::Default.resolve(manifest_dir).unwrap(), Some(PathBuf::from("/app/.spin")));
        assert_eq!(StateDir::Path("/data/state".into()).resolve(manifest_dir).unwrap(), Some(PathBuf::from("/data/state")));
        let relative = StateDir::Path("state".into()).resolve(manifest_dir).unwrap().unwrap();
        assert_eq!(relative, std::env::current_dir().unwrap().join("state"));
        assert_eq!(StateDir::Unset.resolve(manifest_dir).unwrap(), None);

        let on_disk = StoreManager::new(Some(Path::new("/app/.spin")));
        assert_eq!(on_disk.default_location(), &DatabaseLocation::Path("/app/.spin/sqlite_key_value.db".into()));
        assert_eq!(on_disk.default_summary(), "\"/app/.spin/sqlite_key_value.db\"");
        assert_eq!(StoreManager::new(None).default_summary(), "a temporary in-memory store");
    }

    #[test]
    fn only_the_default_store_is_defined() {
        let manager = StoreManager::new(None);
        assert!(manager.connection(DEFAULT_STORE).is_ok());
        assert!(matches!(manager.connection("other"), Err(StoreError::Guest(Error::NoSuchStore))));
        // One connection per store for the whole app.
        assert!(Arc::ptr_eq(&manager.connection(DEFAULT_STORE).ok().unwrap(), &manager.connection(DEFAULT_STORE).ok().unwrap()));
    }
}

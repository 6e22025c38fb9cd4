//! The emulator's storage: databases → collections → documents in natural
//! (insertion) order, optionally persisted to a directory.
//!
//! Layout: `<dir>/<database>/<collection>.json`, each a JSON array of
//! canonical Extended JSON documents, one per line. Names are
//! percent-encoded outside `[A-Za-z0-9_.-]`. Every write replaces the whole
//! collection file through a temporary file + `rename`, so a crash leaves
//! either the old or the new file, never a torn one.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Context;
use bson::Document;

use super::ejson;

const FILE_EXT: &str = ".json";
const TMP_PREFIX: &str = ".tmp-";

#[derive(Default)]
pub(crate) struct Store {
    dbs: BTreeMap<String, BTreeMap<String, Vec<Document>>>,
    dir: Option<PathBuf>,
}

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

impl Store {
    pub fn memory() -> Store {
        Store::default()
    }

    /// Opens (creating) a data directory and loads every collection in it.
    pub fn open(dir: &Path) -> anyhow::Result<Store> {
        fs::create_dir_all(dir).with_context(|| format!("creating data directory {}", dir.display()))?;
        let mut dbs = BTreeMap::new();
        for db_entry in fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
            let db_entry = db_entry?;
            if !db_entry.file_type()?.is_dir() {
                continue;
            }
            let Some(db) = db_entry.file_name().to_str().and_then(decode_name) else { continue };
            let mut colls = BTreeMap::new();
            for f in fs::read_dir(db_entry.path())? {
                let f = f?;
                let fname = f.file_name().to_string_lossy().into_owned();
                if fname.starts_with(TMP_PREFIX) {
                    // Left over from a write that never reached its rename.
                    let _ = fs::remove_file(f.path());
                    continue;
                }
                let Some(coll) = fname.strip_suffix(FILE_EXT).and_then(decode_name) else { continue };
                let text = fs::read_to_string(f.path()).with_context(|| format!("reading {}", f.path().display()))?;
                let docs = parse_collection(&text).with_context(|| format!("parsing {}", f.path().display()))?;
                colls.insert(coll, docs);
            }
            dbs.insert(db, colls);
        }
        Ok(Store { dbs, dir: Some(dir.to_path_buf()) })
    }

    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// Whether the database has any collection (even an empty one).
    pub fn has_database(&self, db: &str) -> bool {
        self.dbs.get(db).is_some_and(|c| !c.is_empty())
    }

    pub fn docs(&self, db: &str, coll: &str) -> &[Document] {
        self.dbs.get(db).and_then(|c| c.get(coll)).map(Vec::as_slice).unwrap_or(&[])
    }

    pub fn docs_mut(&mut self, db: &str, coll: &str) -> &mut Vec<Document> {
        self.dbs.entry(db.to_owned()).or_default().entry(coll.to_owned()).or_default()
    }

    /// Every database → collection → documents, empty collections included.
    pub fn all(&self) -> &BTreeMap<String, BTreeMap<String, Vec<Document>>> {
        &self.dbs
    }

    /// Writes one collection to disk (no-op in memory).
    pub fn persist(&self, db: &str, coll: &str) -> io::Result<()> {
        let Some(dir) = &self.dir else { return Ok(()) };
        let db_dir = dir.join(encode_name(db));
        fs::create_dir_all(&db_dir)?;
        let path = db_dir.join(format!("{}{FILE_EXT}", encode_name(coll)));
        write_atomic(&path, render_collection(self.docs(db, coll)).as_bytes())
    }

    /// Removes every database, in memory and on disk.
    pub fn clear(&mut self) -> io::Result<()> {
        self.dbs.clear();
        if let Some(dir) = &self.dir {
            for e in fs::read_dir(dir)? {
                let e = e?;
                if e.file_type()?.is_dir() && e.file_name().to_str().and_then(decode_name).is_some() {
                    fs::remove_dir_all(e.path())?;
                }
            }
        }
        Ok(())
    }
}

fn render_collection(docs: &[Document]) -> String {
    let mut out = String::from("[");
    for (i, d) in docs.iter().enumerate() {
        out.push_str(if i == 0 { "\n" } else { ",\n" });
        out.push_str(&ejson::doc_to_canonical(d).to_string());
    }
    out.push_str("\n]\n");
    out
}

fn parse_collection(text: &str) -> anyhow::Result<Vec<Document>> {
    let v: serde_json::Value = serde_json::from_str(text)?;
    let serde_json::Value::Array(items) = v else { anyhow::bail!("a collection file must hold a JSON array") };
    items.into_iter().map(|d| ejson::decode_document(d).map_err(anyhow::Error::msg)).collect()
}

fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!("{TMP_PREFIX}{}-{}", std::process::id(), TMP_COUNTER.fetch_add(1, Ordering::Relaxed)));
    let result = (|| {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, path)?;
        if let Ok(d) = fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// A database or collection name as a file name: `[A-Za-z0-9_-]` and
/// non-leading `.` are kept, every other byte becomes `%XX`.
pub(crate) fn encode_name(name: &str) -> String {
    let mut out = String::new();
    for (i, b) in name.bytes().enumerate() {
        if b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || (b == b'.' && i > 0) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

pub(crate) fn decode_name(file: &str) -> Option<String> {
    if file.starts_with('.') || file.is_empty() {
        return None;
    }
    let bytes = file.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = file.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_file_names() {
        for name in ["users", "audit.events", "we ird/name", "..", ".hidden", "ümlaut", "a%b"] {
            let enc = encode_name(name);
            assert!(!enc.contains('/') && !enc.starts_with('.'), "{enc}");
            assert_eq!(decode_name(&enc).as_deref(), Some(name));
        }
    }
}

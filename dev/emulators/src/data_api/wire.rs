//! The MongoDB wire protocol over the emulator's store: what the official
//! drivers speak, so a Data API gateway backed by the `mongodb` crate can be
//! tested against the same engine as the HTTP emulator.
//!
//! Follows MongoDB's "Wire Protocol" reference (MongoDB 6.0+ semantics):
//! - every message is a 16-byte header (`messageLength`, `requestID`,
//!   `responseTo`, `opCode`, little-endian) and a body;
//! - `OP_MSG` (2013): `flagBits` (`checksumPresent` = bit 0, `moreToCome` =
//!   bit 1; any other bit of the low 16 is "required" and unknown, so the
//!   message is refused), a kind-0 section (the command body) and kind-1
//!   sections (a document sequence: the identifier names the body field
//!   the documents belong to), then a CRC-32C when `checksumPresent`;
//! - `OP_QUERY` (2004) is accepted only for the handshake (`hello` /
//!   `isMaster` on `<db>.$cmd`), which drivers still send that way unless a
//!   server API version is set; it is answered with `OP_REPLY` (1);
//! - a malformed message closes the connection (as mongod does).
//!
//! The server reports itself as a standalone 7.0 (`maxWireVersion` 21; the
//! `mongodb` 3.9 driver accepts 9..=29). It sends no `topologyVersion`, so
//! drivers monitor it by polling rather than with streaming `hello`.
//! Cursors are server-wide (a `getMore` may arrive on any connection), hold
//! their remaining documents (a snapshot at `find`/`aggregate` time), and
//! are dropped after 10 idle minutes, as mongod's `cursorTimeoutMillis`.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bson::{doc, Bson, Document};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::collection::{self, Change, FindQuery, NewDocument, OpError};
use super::engine::{integer_arg, type_name, EngineError, Filter, Pipeline, Projection, SortSpec, Update, DUPLICATE_KEY};
use super::DataApi;

const OP_REPLY: i32 = 1;
const OP_QUERY: i32 = 2004;
const OP_MSG: i32 = 2013;
const CHECKSUM_PRESENT: u32 = 1;
const MORE_TO_COME: u32 = 1 << 1;
/// Bits a server may ignore (`exhaustAllowed` and the optional high half).
const OPTIONAL_BITS: u32 = 0xFFFF_0000;

const MAX_BSON_OBJECT_SIZE: i32 = 16 * 1024 * 1024;
const MAX_MESSAGE_SIZE_BYTES: i32 = 48_000_000;
const MAX_WRITE_BATCH_SIZE: i32 = 100_000;
const MAX_WIRE_VERSION: i32 = 21;
const SESSION_TIMEOUT_MINUTES: i32 = 30;
/// `find`'s first batch when the request gives no `batchSize` (mongod's default).
const DEFAULT_FIRST_BATCH: usize = 101;
const CURSOR_TIMEOUT: Duration = Duration::from_secs(600);

/// The wire-protocol front end of one [`DataApi`]: its cursors and connections.
pub struct Wire(Arc<Server>);

impl Wire {
    pub fn new(api: DataApi) -> Wire {
        Wire(Arc::new(Server { api, cursors: Mutex::new(HashMap::new()), connections: Mutex::new(0) }))
    }

    /// Accepts connections on `listener` until `stop` turns true; each
    /// connection is served on its own task (and ends with the runtime).
    pub async fn serve(self, listener: TcpListener, mut stop: tokio::sync::watch::Receiver<bool>) {
        loop {
            let accepted = tokio::select! {
                a = listener.accept() => a,
                _ = stop.wait_for(|s| *s) => return,
            };
            let Ok((stream, _)) = accepted else { continue };
            let server = self.0.clone();
            tokio::spawn(async move {
                if let Err(e) = server.connection(stream).await {
                    tracing::debug!(error = %e, "data api emulator (wire): connection closed");
                }
            });
        }
    }
}

struct Server {
    api: DataApi,
    cursors: Mutex<HashMap<i64, Cursor>>,
    connections: Mutex<i64>,
}

struct Cursor {
    ns: String,
    docs: VecDeque<Document>,
    used: Instant,
}

/// A protocol violation: the connection is closed.
#[derive(Debug)]
struct Malformed(String);

impl std::fmt::Display for Malformed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "malformed message: {}", self.0)
    }
}

impl std::error::Error for Malformed {}

fn malformed(msg: impl Into<String>) -> anyhow::Error {
    Malformed(msg.into()).into()
}

/// A command refused with `ok: 0`.
#[derive(Debug)]
struct CommandError {
    code: i32,
    code_name: &'static str,
    message: String,
}

impl CommandError {
    fn new(code: i32, code_name: &'static str, message: impl Into<String>) -> Self {
        CommandError { code, code_name, message: message.into() }
    }
    fn bad_value(message: impl Into<String>) -> Self {
        Self::new(2, "BadValue", message)
    }
    fn type_mismatch(message: impl Into<String>) -> Self {
        Self::new(14, "TypeMismatch", message)
    }
    fn to_doc(&self) -> Document {
        doc! { "ok": 0.0, "errmsg": &self.message, "code": self.code, "codeName": self.code_name }
    }
}

impl From<EngineError> for CommandError {
    fn from(e: EngineError) -> Self {
        if e.code == DUPLICATE_KEY {
            CommandError::new(11000, "DuplicateKey", e.message)
        } else {
            CommandError::bad_value(e.message)
        }
    }
}

impl From<OpError> for CommandError {
    fn from(e: OpError) -> Self {
        match e {
            OpError::Engine(e) => e.into(),
            e @ OpError::Persist { .. } => CommandError::new(1, "InternalError", e.to_string()),
        }
    }
}

/// A parse error of an update document: `FailedToParse`, as mongod.
fn failed_to_parse(e: EngineError) -> CommandError {
    CommandError::new(9, "FailedToParse", e.message)
}

type CmdResult = Result<Document, CommandError>;

impl Server {
    async fn connection(&self, mut stream: TcpStream) -> anyhow::Result<()> {
        stream.set_nodelay(true)?;
        let connection_id = {
            let mut n = self.connections.lock().unwrap();
            *n += 1;
            *n
        };
        loop {
            let mut header = [0u8; 16];
            match stream.read_exact(&mut header).await {
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
                Err(e) => return Err(e.into()),
            }
            let len = i32_at(&header, 0);
            let request_id = i32_at(&header, 4);
            let op_code = i32_at(&header, 12);
            if !(16..=MAX_MESSAGE_SIZE_BYTES).contains(&len) {
                return Err(malformed(format!("messageLength {len}")));
            }
            let mut body = vec![0u8; len as usize - 16];
            stream.read_exact(&mut body).await?;
            let reply = match op_code {
                OP_MSG => {
                    let (flags, command) = parse_msg(&header, &body)?;
                    let out = self.run(command, connection_id);
                    if flags & MORE_TO_COME != 0 {
                        continue;
                    }
                    encode_msg(request_id, &out)?
                }
                OP_QUERY => {
                    let command = parse_query(&body)?;
                    let name = command.keys().next().map(String::as_str).unwrap_or("");
                    if !matches!(name.to_ascii_lowercase().as_str(), "hello" | "ismaster") {
                        return Err(malformed(format!("OP_QUERY is only for the handshake, not '{name}'")));
                    }
                    encode_reply(request_id, &self.run(command, connection_id))?
                }
                other => return Err(malformed(format!("opCode {other}"))),
            };
            stream.write_all(&reply).await?;
        }
    }

    /// Runs one command; the answer is the reply body (`ok: 1` or `ok: 0`).
    fn run(&self, command: Document, connection_id: i64) -> Document {
        let name = command.keys().next().cloned().unwrap_or_default();
        let result = self.dispatch(&name, &command, connection_id);
        match result {
            Ok(mut d) => {
                d.insert("ok", 1.0);
                d
            }
            Err(e) => e.to_doc(),
        }
    }

    fn dispatch(&self, name: &str, cmd: &Document, connection_id: i64) -> CmdResult {
        match name {
            "hello" | "isMaster" | "ismaster" => Ok(hello(name, connection_id)),
            "ping" | "endSessions" => Ok(Document::new()),
            "buildInfo" | "buildinfo" => Ok(doc! {
                "version": "7.0.0",
                "versionArray": [7, 0, 0, 0],
                "gitVersion": "emulator",
                "maxBsonObjectSize": MAX_BSON_OBJECT_SIZE,
                "bits": 64,
                "debug": false,
            }),
            "find" => self.find(cmd),
            "getMore" => self.get_more(cmd),
            "killCursors" => self.kill_cursors(cmd),
            "insert" => self.insert(cmd),
            "update" => self.update(cmd),
            "delete" => self.delete(cmd),
            "findAndModify" | "findandmodify" => self.find_and_modify(cmd),
            "aggregate" => self.aggregate(cmd),
            "count" => self.count(cmd),
            "" => Err(CommandError::new(59, "CommandNotFound", "no command given")),
            other => Err(CommandError::new(59, "CommandNotFound", format!("no such command: '{other}'"))),
        }
    }

    fn find(&self, cmd: &Document) -> CmdResult {
        let (db, coll) = namespace(cmd, "find")?;
        let limit = opt_int(cmd, "limit")?.unwrap_or(0);
        let batch_size = opt_count(cmd, "batchSize")?;
        // A negative limit is the legacy "one batch of |limit|".
        let single_batch = opt_bool(cmd, "singleBatch")? || limit < 0;
        let q = FindQuery {
            filter: Filter::parse(&opt_doc(cmd, "filter")?)?,
            sort: SortSpec::parse(&opt_doc(cmd, "sort")?)?,
            skip: opt_count(cmd, "skip")?.unwrap_or(0),
            limit: (limit != 0).then_some(limit.unsigned_abs() as usize),
            projection: Projection::parse(&opt_doc(cmd, "projection")?)?,
        };
        let docs = collection::find(&self.api.lock(), &db, &coll, &q);
        let first = batch_size.unwrap_or(DEFAULT_FIRST_BATCH);
        Ok(self.open_cursor(&db, &coll, docs.into(), first, single_batch))
    }

    fn aggregate(&self, cmd: &Document) -> CmdResult {
        let (db, coll) = namespace(cmd, "aggregate")?;
        let stages = match cmd.get("pipeline") {
            Some(Bson::Array(a)) => a,
            Some(other) => return Err(CommandError::type_mismatch(format!("'pipeline' must be an array, found {}", type_name(other)))),
            None => return Err(missing("pipeline")),
        };
        let cursor = match cmd.get("cursor") {
            Some(Bson::Document(d)) => d.clone(),
            Some(other) => return Err(CommandError::type_mismatch(format!("'cursor' must be an object, found {}", type_name(other)))),
            None => return Err(CommandError::new(9, "FailedToParse", "The 'cursor' option is required")),
        };
        let pipeline = Pipeline::parse(stages)?;
        let docs = collection::aggregate(&self.api.lock(), &db, &coll, &pipeline)?;
        let first = opt_count(&cursor, "batchSize")?.unwrap_or(DEFAULT_FIRST_BATCH);
        Ok(self.open_cursor(&db, &coll, docs.into(), first, false))
    }

    /// Answers `{cursor: {firstBatch, id, ns}}`, keeping the rest for `getMore`.
    fn open_cursor(&self, db: &str, coll: &str, mut docs: VecDeque<Document>, first: usize, single: bool) -> Document {
        let ns = format!("{db}.{coll}");
        let batch = take_batch(&mut docs, first);
        let mut id = 0i64;
        if !single && !docs.is_empty() {
            let mut cursors = self.cursors.lock().unwrap();
            cursors.retain(|_, c| c.used.elapsed() < CURSOR_TIMEOUT);
            while id == 0 || cursors.contains_key(&id) {
                id = rand::random::<i64>() & i64::MAX;
            }
            cursors.insert(id, Cursor { ns: ns.clone(), docs, used: Instant::now() });
        }
        doc! { "cursor": { "firstBatch": batch, "id": id, "ns": ns } }
    }

    fn get_more(&self, cmd: &Document) -> CmdResult {
        let id = match cmd.get("getMore") {
            Some(Bson::Int64(id)) => *id,
            other => {
                return Err(CommandError::type_mismatch(format!("'getMore' must be a long, found {}", other.map_or("nothing", type_name))))
            }
        };
        let coll = opt_str(cmd, "collection")?.ok_or_else(|| missing("collection"))?;
        let db = opt_str(cmd, "$db")?.unwrap_or_else(|| "test".to_owned());
        let batch_size = opt_count(cmd, "batchSize")?.unwrap_or(usize::MAX);
        let mut cursors = self.cursors.lock().unwrap();
        let not_found = || CommandError::new(43, "CursorNotFound", format!("cursor id {id} not found"));
        let cursor = cursors.get_mut(&id).ok_or_else(not_found)?;
        if cursor.ns != format!("{db}.{coll}") {
            return Err(CommandError::new(
                13,
                "Unauthorized",
                format!("Requested getMore on namespace '{db}.{coll}', but cursor belongs to a different namespace {}", cursor.ns),
            ));
        }
        cursor.used = Instant::now();
        let batch = take_batch(&mut cursor.docs, batch_size);
        let ns = cursor.ns.clone();
        let next_id = if cursor.docs.is_empty() {
            cursors.remove(&id);
            0
        } else {
            id
        };
        Ok(doc! { "cursor": { "nextBatch": batch, "id": next_id, "ns": ns } })
    }

    fn kill_cursors(&self, cmd: &Document) -> CmdResult {
        let (db, coll) = namespace(cmd, "killCursors")?;
        let ids = match cmd.get("cursors") {
            Some(Bson::Array(a)) => a,
            _ => return Err(missing("cursors")),
        };
        let ns = format!("{db}.{coll}");
        let (mut killed, mut not_found) = (Vec::new(), Vec::new());
        let mut cursors = self.cursors.lock().unwrap();
        for id in ids {
            let Bson::Int64(id) = id else {
                return Err(CommandError::type_mismatch("'cursors' must hold longs"));
            };
            if cursors.get(id).is_some_and(|c| c.ns == ns) {
                cursors.remove(id);
                killed.push(*id);
            } else {
                not_found.push(*id);
            }
        }
        Ok(doc! { "cursorsKilled": killed, "cursorsNotFound": not_found, "cursorsAlive": [], "cursorsUnknown": [] })
    }

    fn insert(&self, cmd: &Document) -> CmdResult {
        let (db, coll) = namespace(cmd, "insert")?;
        let ordered = opt_bool_or(cmd, "ordered", true)?;
        let docs = statements(cmd, "documents")?.into_iter().map(NewDocument::prepare).collect();
        let outcome = collection::insert(&mut self.api.lock(), &db, &coll, docs, ordered)?;
        let mut out = doc! { "n": count(outcome.inserted_ids.len()) };
        let errors: Vec<Document> = outcome.write_errors.into_iter().map(|e| write_error(e.index, e.error.into())).collect();
        if !errors.is_empty() {
            out.insert("writeErrors", errors);
        }
        Ok(out)
    }

    fn update(&self, cmd: &Document) -> CmdResult {
        let (db, coll) = namespace(cmd, "update")?;
        let ordered = opt_bool_or(cmd, "ordered", true)?;
        let (mut n, mut modified) = (0usize, 0usize);
        let (mut upserted, mut errors) = (Vec::new(), Vec::new());
        for (index, stmt) in statements(cmd, "updates")?.into_iter().enumerate() {
            match self.update_one_statement(&db, &coll, &stmt) {
                Ok(r) => {
                    n += r.matched;
                    modified += r.modified;
                    if let Some(id) = r.upserted_id {
                        n += 1;
                        upserted.push(doc! { "index": count(index), "_id": id });
                    }
                }
                Err(e) => {
                    errors.push(write_error(index, e));
                    if ordered {
                        break;
                    }
                }
            }
        }
        let mut out = doc! { "n": count(n), "nModified": count(modified) };
        if !upserted.is_empty() {
            out.insert("upserted", upserted);
        }
        if !errors.is_empty() {
            out.insert("writeErrors", errors);
        }
        Ok(out)
    }

    fn update_one_statement(&self, db: &str, coll: &str, stmt: &Document) -> Result<collection::UpdateResult, CommandError> {
        let filter = Filter::parse(&req_doc(stmt, "q")?)?;
        let change = parse_change(stmt.get("u"), "u")?;
        let multi = opt_bool(stmt, "multi")?;
        if multi && matches!(change, Change::Replace(_)) {
            return Err(CommandError::new(9, "FailedToParse", "multi update is not supported for replacement-style update"));
        }
        let upsert = opt_bool(stmt, "upsert")?;
        Ok(collection::update(&mut self.api.lock(), db, coll, &filter, &change, multi, upsert)?)
    }

    fn delete(&self, cmd: &Document) -> CmdResult {
        let (db, coll) = namespace(cmd, "delete")?;
        let ordered = opt_bool_or(cmd, "ordered", true)?;
        let (mut n, mut errors) = (0usize, Vec::new());
        for (index, stmt) in statements(cmd, "deletes")?.into_iter().enumerate() {
            let result = (|| {
                let filter = Filter::parse(&req_doc(&stmt, "q")?)?;
                let multi = match stmt.get("limit").and_then(integer_arg) {
                    Some(0) => true,
                    Some(1) => false,
                    _ => return Err(CommandError::bad_value("The limit field in delete objects must be 0 or 1")),
                };
                Ok(collection::delete(&mut self.api.lock(), &db, &coll, &filter, multi)?)
            })();
            match result {
                Ok(deleted) => n += deleted,
                Err(e) => {
                    errors.push(write_error(index, e));
                    if ordered {
                        break;
                    }
                }
            }
        }
        let mut out = doc! { "n": count(n) };
        if !errors.is_empty() {
            out.insert("writeErrors", errors);
        }
        Ok(out)
    }

    fn find_and_modify(&self, cmd: &Document) -> CmdResult {
        let name = cmd.keys().next().cloned().unwrap_or_default();
        let (db, coll) = namespace(cmd, &name)?;
        let filter = Filter::parse(&opt_doc(cmd, "query")?)?;
        let sort = SortSpec::parse(&opt_doc(cmd, "sort")?)?;
        let fields = Projection::parse(&opt_doc(cmd, "fields")?)?;
        let remove = opt_bool(cmd, "remove")?;
        let return_new = opt_bool(cmd, "new")?;
        let upsert = opt_bool(cmd, "upsert")?;
        let action = match (remove, cmd.get("update")) {
            (true, None) => collection::Modify::Remove,
            (false, Some(u)) => collection::Modify::Change { change: parse_change(Some(u), "update")?, upsert, return_new },
            (true, Some(_)) => return Err(CommandError::new(9, "FailedToParse", "Cannot specify both an update and remove=true")),
            (false, None) => return Err(CommandError::new(9, "FailedToParse", "Either an update or remove=true must be specified")),
        };
        if remove && (upsert || return_new) {
            return Err(CommandError::new(9, "FailedToParse", "Cannot specify both upsert=true and remove=true"));
        }
        let r = collection::find_and_modify(&mut self.api.lock(), &db, &coll, &filter, &sort, &action)?;
        let value = r.value.map(|d| fields.as_ref().map_or_else(|| d.clone(), |p| p.apply(&d)));
        let mut last = doc! { "n": i32::from(r.found || r.upserted_id.is_some()) };
        if !remove {
            last.insert("updatedExisting", r.found);
        }
        if let Some(id) = r.upserted_id {
            last.insert("upserted", id);
        }
        Ok(doc! { "lastErrorObject": last, "value": value.map_or(Bson::Null, Bson::Document) })
    }

    fn count(&self, cmd: &Document) -> CmdResult {
        let (db, coll) = namespace(cmd, "count")?;
        let filter = Filter::parse(&opt_doc(cmd, "query")?)?;
        let skip = opt_count(cmd, "skip")?.unwrap_or(0);
        // A negative limit counts as its absolute value (mongod's rule).
        let limit = opt_int(cmd, "limit")?.filter(|l| *l != 0).map(|l| l.unsigned_abs() as usize);
        Ok(doc! { "n": count(collection::count(&self.api.lock(), &db, &coll, &filter, skip, limit)) })
    }
}

fn hello(name: &str, connection_id: i64) -> Document {
    let mut d = Document::new();
    if name == "hello" {
        d.insert("isWritablePrimary", true);
    } else {
        d.insert("ismaster", true);
    }
    d.insert("helloOk", true);
    d.insert("maxBsonObjectSize", MAX_BSON_OBJECT_SIZE);
    d.insert("maxMessageSizeBytes", MAX_MESSAGE_SIZE_BYTES);
    d.insert("maxWriteBatchSize", MAX_WRITE_BATCH_SIZE);
    d.insert("localTime", bson::DateTime::now());
    d.insert("logicalSessionTimeoutMinutes", SESSION_TIMEOUT_MINUTES);
    d.insert("connectionId", connection_id);
    d.insert("minWireVersion", 0);
    d.insert("maxWireVersion", MAX_WIRE_VERSION);
    d.insert("readOnly", false);
    d
}

/// Takes at most `n` documents and at most 16 MiB (at least one document).
fn take_batch(docs: &mut VecDeque<Document>, n: usize) -> Vec<Document> {
    let mut out = Vec::new();
    let mut bytes = 0usize;
    while out.len() < n {
        let Some(d) = docs.front() else { break };
        let size = bson::to_vec(d).map_or(0, |v| v.len());
        if !out.is_empty() && bytes + size > MAX_BSON_OBJECT_SIZE as usize {
            break;
        }
        bytes += size;
        out.push(docs.pop_front().expect("front exists"));
    }
    out
}

fn count(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

fn write_error(index: usize, e: CommandError) -> Document {
    doc! { "index": count(index), "code": e.code, "errmsg": e.message }
}

fn missing(field: &str) -> CommandError {
    CommandError::new(40414, "IDLFailedToParse", format!("BSON field '{field}' is missing but a required field"))
}

/// The database (`$db`) and collection (the command's value) of a command, checked.
fn namespace(cmd: &Document, name: &str) -> Result<(String, String), CommandError> {
    let db = opt_str(cmd, "$db")?.ok_or_else(|| missing("$db"))?;
    let coll = match cmd.get(name) {
        Some(Bson::String(s)) => s.clone(),
        Some(other) => {
            return Err(CommandError::new(73, "InvalidNamespace", format!("collection name has invalid type {}", type_name(other))))
        }
        None => return Err(missing(name)),
    };
    collection::check_namespace(&db, &coll).map_err(|e| CommandError::new(73, "InvalidNamespace", e.message))?;
    Ok((db, coll))
}

/// The statements of a write: the array field (from the body or a kind-1 section).
fn statements(cmd: &Document, field: &str) -> Result<Vec<Document>, CommandError> {
    match cmd.get(field) {
        Some(Bson::Array(items)) => items
            .iter()
            .map(|it| match it {
                Bson::Document(d) => Ok(d.clone()),
                other => Err(CommandError::type_mismatch(format!("'{field}' entries must be objects, found {}", type_name(other)))),
            })
            .collect(),
        Some(other) => Err(CommandError::type_mismatch(format!("'{field}' must be an array, found {}", type_name(other)))),
        None => Err(missing(field)),
    }
}

/// An update's `u` (or findAndModify's `update`): operators or a replacement.
fn parse_change(v: Option<&Bson>, field: &str) -> Result<Change, CommandError> {
    match v {
        Some(Bson::Document(d)) if d.keys().next().is_some_and(|k| k.starts_with('$')) => {
            Ok(Change::Update(Update::parse(d).map_err(failed_to_parse)?))
        }
        Some(Bson::Document(d)) => Ok(Change::replacement(d.clone()).map_err(failed_to_parse)?),
        Some(Bson::Array(_)) => Err(CommandError::new(9, "FailedToParse", "pipeline-style updates are not supported")),
        Some(other) => Err(CommandError::type_mismatch(format!("'{field}' must be an object, found {}", type_name(other)))),
        None => Err(missing(field)),
    }
}

fn opt_str(d: &Document, key: &str) -> Result<Option<String>, CommandError> {
    match d.get(key) {
        None => Ok(None),
        Some(Bson::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(CommandError::type_mismatch(format!("'{key}' must be a string, found {}", type_name(other)))),
    }
}

fn opt_doc(d: &Document, key: &str) -> Result<Document, CommandError> {
    match d.get(key) {
        None | Some(Bson::Null) => Ok(Document::new()),
        Some(Bson::Document(x)) => Ok(x.clone()),
        Some(other) => Err(CommandError::type_mismatch(format!("'{key}' must be an object, found {}", type_name(other)))),
    }
}

fn req_doc(d: &Document, key: &str) -> Result<Document, CommandError> {
    match d.get(key) {
        None => Err(missing(key)),
        Some(_) => opt_doc(d, key),
    }
}

fn opt_int(d: &Document, key: &str) -> Result<Option<i64>, CommandError> {
    match d.get(key) {
        None | Some(Bson::Null) => Ok(None),
        Some(v) => {
            integer_arg(v).map(Some).ok_or_else(|| CommandError::type_mismatch(format!("'{key}' must be a number, found {}", type_name(v))))
        }
    }
}

fn opt_count(d: &Document, key: &str) -> Result<Option<usize>, CommandError> {
    match opt_int(d, key)? {
        Some(n) if n < 0 => Err(CommandError::bad_value(format!("'{key}' must be non-negative, found {n}"))),
        n => Ok(n.map(|n| n as usize)),
    }
}

fn opt_bool_or(d: &Document, key: &str, default: bool) -> Result<bool, CommandError> {
    match d.get(key) {
        None | Some(Bson::Null) => Ok(default),
        Some(Bson::Boolean(b)) => Ok(*b),
        Some(v) => integer_arg(v)
            .map(|n| n != 0)
            .ok_or_else(|| CommandError::type_mismatch(format!("'{key}' must be a boolean, found {}", type_name(v)))),
    }
}

fn opt_bool(d: &Document, key: &str) -> Result<bool, CommandError> {
    opt_bool_or(d, key, false)
}

// ---------------------------------------------------------------------------
// Framing

fn i32_at(b: &[u8], at: usize) -> i32 {
    i32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

/// Reads one BSON document at the start of `b`; answers it and its length.
fn read_doc(b: &[u8]) -> anyhow::Result<(Document, usize)> {
    if b.len() < 5 {
        return Err(malformed("truncated document"));
    }
    let len = i32_at(b, 0);
    if len < 5 || len as usize > b.len() {
        return Err(malformed(format!("document length {len}")));
    }
    let doc = Document::from_reader(&b[..len as usize]).map_err(|e| malformed(format!("invalid BSON: {e}")))?;
    Ok((doc, len as usize))
}

fn read_cstring(b: &[u8]) -> anyhow::Result<(String, usize)> {
    let end = b.iter().position(|&c| c == 0).ok_or_else(|| malformed("unterminated cstring"))?;
    let s = std::str::from_utf8(&b[..end]).map_err(|_| malformed("cstring is not UTF-8"))?;
    Ok((s.to_owned(), end + 1))
}

/// An OP_MSG body: its flags and the command (kind-1 sequences merged in).
fn parse_msg(header: &[u8; 16], body: &[u8]) -> anyhow::Result<(u32, Document)> {
    if body.len() < 5 {
        return Err(malformed("OP_MSG too short"));
    }
    let flags = u32::from_le_bytes(body[..4].try_into().expect("4 bytes"));
    if flags & !(CHECKSUM_PRESENT | MORE_TO_COME | OPTIONAL_BITS) != 0 {
        return Err(malformed(format!("unknown required flag bits {flags:#x}")));
    }
    let mut sections = &body[4..];
    if flags & CHECKSUM_PRESENT != 0 {
        if sections.len() < 4 {
            return Err(malformed("missing checksum"));
        }
        let (rest, sum) = sections.split_at(sections.len() - 4);
        let mut all = header.to_vec();
        all.extend_from_slice(&body[..body.len() - 4]);
        if crc32c(&all) != u32::from_le_bytes(sum.try_into().expect("4 bytes")) {
            return Err(malformed("checksum mismatch"));
        }
        sections = rest;
    }
    let mut command = None;
    let mut sequences = Vec::new();
    while let Some((&kind, rest)) = sections.split_first() {
        match kind {
            0 => {
                if command.is_some() {
                    return Err(malformed("two kind-0 sections"));
                }
                let (d, n) = read_doc(rest)?;
                command = Some(d);
                sections = &rest[n..];
            }
            1 => {
                if rest.len() < 4 {
                    return Err(malformed("truncated kind-1 section"));
                }
                let size = i32_at(rest, 0);
                if size < 4 || size as usize > rest.len() {
                    return Err(malformed(format!("kind-1 section size {size}")));
                }
                let (id, n) = read_cstring(&rest[4..size as usize])?;
                let mut docs_bytes = &rest[4 + n..size as usize];
                let mut docs = Vec::new();
                while !docs_bytes.is_empty() {
                    let (d, n) = read_doc(docs_bytes)?;
                    docs.push(Bson::Document(d));
                    docs_bytes = &docs_bytes[n..];
                }
                sequences.push((id, docs));
                sections = &rest[size as usize..];
            }
            k => return Err(malformed(format!("section kind {k}"))),
        }
    }
    let mut command = command.ok_or_else(|| malformed("no kind-0 section"))?;
    for (id, docs) in sequences {
        if command.contains_key(&id) {
            return Err(malformed(format!("'{id}' is both in the body and a document sequence")));
        }
        command.insert(id, docs);
    }
    Ok((flags, command))
}

/// An OP_QUERY body: the query document (a `$query` wrapper unwrapped).
fn parse_query(body: &[u8]) -> anyhow::Result<Document> {
    if body.len() < 4 {
        return Err(malformed("OP_QUERY too short"));
    }
    let (ns, n) = read_cstring(&body[4..])?;
    if !ns.ends_with(".$cmd") {
        return Err(malformed(format!("OP_QUERY on '{ns}'")));
    }
    let rest = body.get(4 + n + 8..).ok_or_else(|| malformed("OP_QUERY too short"))?;
    let (mut q, _) = read_doc(rest)?;
    if let Some(Bson::Document(inner)) = q.remove("$query") {
        q = inner;
    }
    q.insert("$db", ns.trim_end_matches(".$cmd"));
    Ok(q)
}

fn header(len: usize, response_to: i32, op_code: i32) -> anyhow::Result<Vec<u8>> {
    let len = i32::try_from(len + 16).map_err(|_| anyhow::anyhow!("reply too large"))?;
    let mut out = Vec::with_capacity(len as usize);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&rand::random::<i32>().to_le_bytes());
    out.extend_from_slice(&response_to.to_le_bytes());
    out.extend_from_slice(&op_code.to_le_bytes());
    Ok(out)
}

fn encode_msg(response_to: i32, reply: &Document) -> anyhow::Result<Vec<u8>> {
    let doc = bson::to_vec(reply)?;
    let mut out = header(4 + 1 + doc.len(), response_to, OP_MSG)?;
    out.extend_from_slice(&0u32.to_le_bytes());
    out.push(0);
    out.extend_from_slice(&doc);
    Ok(out)
}

fn encode_reply(response_to: i32, reply: &Document) -> anyhow::Result<Vec<u8>> {
    let doc = bson::to_vec(reply)?;
    let mut out = header(20 + doc.len(), response_to, OP_REPLY)?;
    out.extend_from_slice(&0i32.to_le_bytes()); // responseFlags
    out.extend_from_slice(&0i64.to_le_bytes()); // cursorID
    out.extend_from_slice(&0i32.to_le_bytes()); // startingFrom
    out.extend_from_slice(&1i32.to_le_bytes()); // numberReturned
    out.extend_from_slice(&doc);
    Ok(out)
}

/// CRC-32C (Castagnoli), the OP_MSG checksum.
fn crc32c(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0x82F6_3B78 } else { crc >> 1 };
        }
    }
    !crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_matches_the_standard_check_value() {
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
    }
}

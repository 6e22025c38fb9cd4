//! Update operators, replacements and upsert seeds (MongoDB manual:
//! `operator/update/*`, `db.collection.updateOne` "upsert",
//! `operator/update/setOnInsert`).

use bson::{Bson, Document};

use super::compare::{add_numbers, cmp_bson, eq_bson, identical, is_number, mul_numbers};
use super::query::{parse_ops, Filter, Pred, SortSpec};
use super::{array_index, integer_arg, show, split_path, type_name, EngineError, Result};

/// A parsed update document (`{$set: {…}, $inc: {…}}`).
#[derive(Clone, Debug)]
pub struct Update {
    ops: Vec<FieldOp>,
}

#[derive(Clone, Debug)]
struct FieldOp {
    dotted: String,
    path: Vec<String>,
    kind: Kind,
}

#[derive(Clone, Debug)]
enum Kind {
    Set(Bson),
    SetOnInsert(Bson),
    Unset,
    Inc(Bson),
    Mul(Bson),
    Min(Bson),
    Max(Bson),
    CurrentDate { timestamp: bool },
    Push(PushSpec),
    AddToSet(Vec<Bson>),
    Pull(PullCond),
    PullAll(Vec<Bson>),
    Pop { first: bool },
    Rename { to: String, to_path: Vec<String> },
}

#[derive(Clone, Debug)]
struct PushSpec {
    each: Vec<Bson>,
    position: Option<i64>,
    slice: Option<i64>,
    sort: Option<PushSort>,
}

#[derive(Clone, Debug)]
enum PushSort {
    Value { asc: bool },
    Fields(SortSpec),
}

#[derive(Clone, Debug)]
enum PullCond {
    Value(Bson),
    Preds(Vec<Pred>),
    Query(Filter),
}

/// What an operator does to the value at its path.
enum Change {
    Keep,
    Set(Bson),
    Remove,
}

/// Largest index an update may pad an array to.
const MAX_PAD: usize = 100_000;

impl Update {
    /// Parses an update document. It must be non-empty and made of update
    /// operators only; unknown operators, non-numeric `$inc`, positional
    /// paths (`a.$`, `a.$[]`) and conflicting paths are errors.
    pub fn parse(doc: &Document) -> Result<Update> {
        if doc.is_empty() {
            return Err(EngineError::bad("Update document requires atomic operators"));
        }
        let mut ops = Vec::new();
        for (op, arg) in doc {
            if !op.starts_with('$') {
                return Err(EngineError::bad(format!(
                    "Update document requires atomic operators (found field '{op}'); use replaceOne to replace a document"
                )));
            }
            let Bson::Document(fields) = arg else {
                return Err(EngineError::bad(format!(
                    "Modifiers operate on fields but we found type {} instead. For example: {{$mod: {{<field>: ...}}}} not {{{op}: {}}}",
                    type_name(arg),
                    show(arg)
                )));
            };
            const KNOWN: [&str; 14] = [
                "$set",
                "$setOnInsert",
                "$unset",
                "$inc",
                "$mul",
                "$min",
                "$max",
                "$currentDate",
                "$push",
                "$addToSet",
                "$pull",
                "$pullAll",
                "$pop",
                "$rename",
            ];
            if !KNOWN.contains(&op.as_str()) {
                return Err(EngineError::bad(format!(
                    "Unknown modifier: {op}. Expected a valid update modifier or pipeline-style update specified as an array"
                )));
            }
            for (field, v) in fields {
                let path = update_path(field)?;
                let kind = match op.as_str() {
                    "$set" => Kind::Set(v.clone()),
                    "$setOnInsert" => Kind::SetOnInsert(v.clone()),
                    "$unset" => Kind::Unset,
                    "$inc" | "$mul" => {
                        if !is_number(v) {
                            return Err(EngineError::bad(format!(
                                "Cannot {} with non-numeric argument: {{{field}: {}}}",
                                if op == "$inc" { "increment" } else { "multiply" },
                                show(v)
                            )));
                        }
                        if op == "$inc" {
                            Kind::Inc(v.clone())
                        } else {
                            Kind::Mul(v.clone())
                        }
                    }
                    "$min" => Kind::Min(v.clone()),
                    "$max" => Kind::Max(v.clone()),
                    "$currentDate" => match v {
                        Bson::Boolean(true) => Kind::CurrentDate { timestamp: false },
                        Bson::Document(d) if d.len() == 1 && d.get_str("$type") == Ok("date") => Kind::CurrentDate { timestamp: false },
                        Bson::Document(d) if d.len() == 1 && d.get_str("$type") == Ok("timestamp") => Kind::CurrentDate { timestamp: true },
                        _ => {
                            return Err(EngineError::bad(format!(
                                "$currentDate takes true or {{$type: \"date\" | \"timestamp\"}}, found {} for '{field}'",
                                show(v)
                            )))
                        }
                    },
                    "$push" => Kind::Push(parse_push(v)?),
                    "$addToSet" => Kind::AddToSet(parse_add_to_set(v)?),
                    "$pull" => Kind::Pull(parse_pull(field, v)?),
                    "$pullAll" => match v {
                        Bson::Array(items) => Kind::PullAll(items.clone()),
                        _ => return Err(EngineError::bad(format!("$pullAll requires an array argument but was given a {}", type_name(v)))),
                    },
                    "$pop" => match integer_arg(v) {
                        Some(1) => Kind::Pop { first: false },
                        Some(-1) => Kind::Pop { first: true },
                        _ => return Err(EngineError::bad(format!("$pop expects 1 or -1, found: {}", show(v)))),
                    },
                    "$rename" => match v {
                        Bson::String(to) => {
                            let to_path = update_path(to)?;
                            if to == field {
                                return Err(EngineError::bad(format!(
                                    "The source and target field for $rename must differ: {field}: \"{to}\""
                                )));
                            }
                            if field == "_id" || to == "_id" {
                                return Err(EngineError::bad(
                                    "Performing an update on the path '_id' would modify the immutable field '_id'",
                                ));
                            }
                            Kind::Rename { to: to.clone(), to_path }
                        }
                        _ => return Err(EngineError::bad(format!("The 'to' field for $rename must be a string: {field}: {}", show(v)))),
                    },
                    other => {
                        return Err(EngineError::bad(format!(
                            "Unknown modifier: {other}. Expected a valid update modifier or pipeline-style update specified as an array"
                        )))
                    }
                };
                ops.push(FieldOp { dotted: field.clone(), path, kind });
            }
        }
        // Two operators may not touch the same path, or a path and its prefix.
        let mut paths: Vec<&str> = Vec::new();
        for op in &ops {
            paths.push(&op.dotted);
            if let Kind::Rename { to, .. } = &op.kind {
                paths.push(to);
            }
        }
        for (i, a) in paths.iter().enumerate() {
            for b in &paths[i + 1..] {
                if let Some(at) = conflict(a, b) {
                    return Err(EngineError::bad(format!("Updating the path '{b}' would create a conflict at '{at}'")));
                }
            }
        }
        Ok(Update { ops })
    }

    /// Applies the operators to `doc`. `inserting` is true when an upsert
    /// builds a new document: only then does `$setOnInsert` run. Outside an
    /// insert, changing `_id` is an error.
    pub fn apply(&self, doc: &mut Document, inserting: bool) -> Result<()> {
        let id_before = doc.get("_id").cloned();
        let id_desc = id_before.as_ref().map(show).unwrap_or_else(|| "null".to_owned());
        for op in &self.ops {
            let field = op.dotted.as_str();
            match &op.kind {
                Kind::Set(v) => modify(doc, &op.path, &mut |_| Ok(Change::Set(v.clone())))?,
                Kind::SetOnInsert(v) => {
                    if inserting {
                        modify(doc, &op.path, &mut |_| Ok(Change::Set(v.clone())))?
                    }
                }
                Kind::Unset => modify(doc, &op.path, &mut |cur| Ok(if cur.is_some() { Change::Remove } else { Change::Keep }))?,
                Kind::Inc(n) | Kind::Mul(n) => {
                    let inc = matches!(op.kind, Kind::Inc(_));
                    modify(doc, &op.path, &mut |cur| match cur {
                        None if inc => Ok(Change::Set(n.clone())),
                        None => Ok(Change::Set(mul_numbers(n, &Bson::Int32(0)))),
                        Some(x) if is_number(x) => Ok(Change::Set(if inc { add_numbers(x, n) } else { mul_numbers(x, n) })),
                        Some(x) => Err(EngineError::bad(format!(
                            "Cannot apply {} to a value of non-numeric type. {{_id: {id_desc}}} has the field '{}' of non-numeric type {}",
                            if inc { "$inc" } else { "$mul" },
                            op.path.last().map(String::as_str).unwrap_or(field),
                            type_name(x)
                        ))),
                    })?
                }
                Kind::Min(v) | Kind::Max(v) => {
                    let want = if matches!(op.kind, Kind::Min(_)) { std::cmp::Ordering::Less } else { std::cmp::Ordering::Greater };
                    modify(doc, &op.path, &mut |cur| match cur {
                        None => Ok(Change::Set(v.clone())),
                        Some(x) if cmp_bson(v, x) == want => Ok(Change::Set(v.clone())),
                        Some(_) => Ok(Change::Keep),
                    })?
                }
                Kind::CurrentDate { timestamp } => {
                    let now = bson::DateTime::now();
                    let v = if *timestamp {
                        Bson::Timestamp(bson::Timestamp { time: (now.timestamp_millis() / 1000) as u32, increment: 1 })
                    } else {
                        Bson::DateTime(now)
                    };
                    modify(doc, &op.path, &mut |_| Ok(Change::Set(v.clone())))?
                }
                Kind::Push(spec) => modify(doc, &op.path, &mut |cur| match cur {
                    None => Ok(Change::Set(Bson::Array(spec.apply(Vec::new())))),
                    Some(Bson::Array(items)) => Ok(Change::Set(Bson::Array(spec.apply(items.clone())))),
                    Some(x) => Err(EngineError::bad(format!(
                        "The field '{field}' must be an array but is of type {} in document {{_id: {id_desc}}}",
                        type_name(x)
                    ))),
                })?,
                Kind::AddToSet(values) => modify(doc, &op.path, &mut |cur| {
                    let mut items = match cur {
                        None => Vec::new(),
                        Some(Bson::Array(items)) => items.clone(),
                        Some(x) => {
                            return Err(EngineError::bad(format!(
                                "Cannot apply $addToSet to non-array field. Field named '{}' has non-array type {}",
                                op.path.last().map(String::as_str).unwrap_or(field),
                                type_name(x)
                            )))
                        }
                    };
                    for v in values {
                        if !items.iter().any(|e| eq_bson(e, v)) {
                            items.push(v.clone());
                        }
                    }
                    Ok(Change::Set(Bson::Array(items)))
                })?,
                Kind::Pull(cond) => modify(doc, &op.path, &mut |cur| match cur {
                    None => Ok(Change::Keep),
                    Some(Bson::Array(items)) => Ok(Change::Set(Bson::Array(items.iter().filter(|e| !cond.removes(e)).cloned().collect()))),
                    Some(_) => Err(EngineError::bad("Cannot apply $pull to a non-array value")),
                })?,
                Kind::PullAll(values) => modify(doc, &op.path, &mut |cur| match cur {
                    None => Ok(Change::Keep),
                    Some(Bson::Array(items)) => {
                        Ok(Change::Set(Bson::Array(items.iter().filter(|e| !values.iter().any(|v| eq_bson(e, v))).cloned().collect())))
                    }
                    Some(_) => Err(EngineError::bad("$pullAll requires an array field")),
                })?,
                Kind::Pop { first } => modify(doc, &op.path, &mut |cur| match cur {
                    None => Ok(Change::Keep),
                    Some(Bson::Array(items)) => {
                        let mut items = items.clone();
                        if !items.is_empty() {
                            if *first {
                                items.remove(0);
                            } else {
                                items.pop();
                            }
                        }
                        Ok(Change::Set(Bson::Array(items)))
                    }
                    Some(x) => Err(EngineError::bad(format!("Path '{field}' contains an element of non-array type '{}'", type_name(x)))),
                })?,
                Kind::Rename { to_path, .. } => {
                    let mut taken = None;
                    modify(doc, &op.path, &mut |cur| {
                        taken = cur.cloned();
                        Ok(if cur.is_some() { Change::Remove } else { Change::Keep })
                    })?;
                    if let Some(v) = taken {
                        modify(doc, to_path, &mut |_| Ok(Change::Set(v.clone())))?;
                    }
                }
            }
        }
        if !inserting {
            let id_after = doc.get("_id");
            let same = match (&id_before, id_after) {
                (Some(a), Some(b)) => identical(a, b),
                (None, None) => true,
                _ => false,
            };
            if !same {
                return Err(immutable_id());
            }
        }
        Ok(())
    }
}

fn immutable_id() -> EngineError {
    EngineError::bad("Performing an update on the path '_id' would modify the immutable field '_id'")
}

/// Splits an update path; positional operators and `$`-fields are refused.
fn update_path(field: &str) -> Result<Vec<String>> {
    let path = split_path(field)?;
    if path.iter().any(|p| p.starts_with('$')) {
        return Err(EngineError::bad(format!(
            "positional operators and $-prefixed field names are not supported in update paths: '{field}'"
        )));
    }
    Ok(path)
}

/// Whether two dotted paths overlap (equal, or one is a prefix of the
/// other at a component boundary); returns the shorter one.
fn conflict<'a>(a: &'a str, b: &'a str) -> Option<&'a str> {
    let (short, long) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    (long == short || (long.starts_with(short) && long.as_bytes()[short.len()] == b'.')).then_some(short)
}

fn parse_push(v: &Bson) -> Result<PushSpec> {
    let Bson::Document(d) = v else {
        return Ok(PushSpec { each: vec![v.clone()], position: None, slice: None, sort: None });
    };
    if !d.contains_key("$each") {
        if let Some(k) = d.keys().find(|k| k.starts_with('$')) {
            if matches!(k.as_str(), "$position" | "$slice" | "$sort") {
                return Err(EngineError::bad(format!("{k} requires $each in $push")));
            }
        }
        return Ok(PushSpec { each: vec![v.clone()], position: None, slice: None, sort: None });
    }
    let mut spec = PushSpec { each: Vec::new(), position: None, slice: None, sort: None };
    for (k, m) in d {
        match k.as_str() {
            "$each" => match m {
                Bson::Array(items) => spec.each = items.clone(),
                _ => {
                    return Err(EngineError::bad(format!(
                        "The argument to $each in $push must be an array but it was of type: {}",
                        type_name(m)
                    )))
                }
            },
            "$position" => {
                spec.position = Some(integer_arg(m).ok_or_else(|| EngineError::bad("The value for $position must be an integer value"))?)
            }
            "$slice" => spec.slice = Some(integer_arg(m).ok_or_else(|| EngineError::bad("The value for $slice must be an integer value"))?),
            "$sort" => {
                spec.sort = Some(match m {
                    Bson::Document(s) => PushSort::Fields(SortSpec::parse(s)?),
                    _ => match integer_arg(m) {
                        Some(1) => PushSort::Value { asc: true },
                        Some(-1) => PushSort::Value { asc: false },
                        _ => return Err(EngineError::bad("The $sort element value must be either 1 or -1")),
                    },
                })
            }
            other => return Err(EngineError::bad(format!("Unrecognized clause in $push: {other}"))),
        }
    }
    Ok(spec)
}

impl PushSpec {
    fn apply(&self, mut items: Vec<Bson>) -> Vec<Bson> {
        let len = items.len() as i64;
        let at = match self.position {
            None => items.len(),
            Some(p) if p >= 0 => p.min(len) as usize,
            Some(p) => (len + p).max(0) as usize,
        };
        items.splice(at..at, self.each.iter().cloned());
        match &self.sort {
            Some(PushSort::Value { asc }) => items.sort_by(|a, b| {
                let o = cmp_bson(a, b);
                if *asc {
                    o
                } else {
                    o.reverse()
                }
            }),
            Some(PushSort::Fields(spec)) => spec.sort_items(&mut items, |e| match e {
                Bson::Document(d) => Some(d),
                _ => None,
            }),
            None => {}
        }
        if let Some(n) = self.slice {
            if n >= 0 {
                items.truncate(n as usize);
            } else {
                let keep = (-n) as usize;
                if items.len() > keep {
                    items.drain(..items.len() - keep);
                }
            }
        }
        items
    }
}

fn parse_add_to_set(v: &Bson) -> Result<Vec<Bson>> {
    match v {
        Bson::Document(d) if d.contains_key("$each") => {
            if d.len() != 1 {
                return Err(EngineError::bad("Found unexpected fields after $each in $addToSet"));
            }
            match d.get("$each") {
                Some(Bson::Array(items)) => Ok(items.clone()),
                Some(other) => Err(EngineError::bad(format!(
                    "The argument to $each in $addToSet must be an array but it was of type {}",
                    type_name(other)
                ))),
                None => unreachable!("checked by contains_key"),
            }
        }
        other => Ok(vec![other.clone()]),
    }
}

fn parse_pull(field: &str, v: &Bson) -> Result<PullCond> {
    match v {
        Bson::Document(d) if d.keys().next().is_some_and(|k| k.starts_with('$') && !matches!(k.as_str(), "$and" | "$or" | "$nor")) => {
            Ok(PullCond::Preds(parse_ops(field, d)?))
        }
        Bson::Document(d) => Ok(PullCond::Query(Filter::parse(d)?)),
        Bson::RegularExpression(_) => Err(EngineError::bad("regular expressions are not supported in $pull")),
        other => Ok(PullCond::Value(other.clone())),
    }
}

impl PullCond {
    fn removes(&self, e: &Bson) -> bool {
        match self {
            PullCond::Value(v) => eq_bson(e, v),
            PullCond::Preds(preds) => preds.iter().all(|p| p.holds_for_value(e)),
            PullCond::Query(f) => matches!(e, Bson::Document(d) if f.matches(d)),
        }
    }
}

/// Runs `f` on the value at `path`, creating embedded documents on the way
/// when `f` sets a value; numeric components index arrays (padding with
/// nulls). Creating a field inside a scalar or a non-indexed array is an error.
fn modify(doc: &mut Document, path: &[String], f: &mut dyn FnMut(Option<&Bson>) -> Result<Change>) -> Result<()> {
    let key = &path[0];
    if path.len() == 1 {
        match f(doc.get(key))? {
            Change::Keep => {}
            Change::Set(v) => match doc.get_mut(key) {
                Some(slot) => *slot = v,
                None => {
                    doc.insert(key.clone(), v);
                }
            },
            Change::Remove => {
                doc.remove(key);
            }
        }
        return Ok(());
    }
    match doc.get_mut(key) {
        Some(v) => modify_value(v, key, &path[1..], f),
        None => {
            if let Change::Set(v) = f(None)? {
                doc.insert(key.clone(), nested(&path[1..], v));
            }
            Ok(())
        }
    }
}

fn modify_value(v: &mut Bson, parent: &str, path: &[String], f: &mut dyn FnMut(Option<&Bson>) -> Result<Change>) -> Result<()> {
    match v {
        Bson::Document(d) => modify(d, path, f),
        Bson::Array(items) => {
            let Some(idx) = array_index(&path[0]).filter(|i| *i <= items.len() + MAX_PAD) else {
                return match f(None)? {
                    Change::Set(_) => Err(EngineError::bad(format!(
                        "Cannot create field '{}' in element {{{parent}: {}}}",
                        path[0],
                        show(&Bson::Array(items.clone()))
                    ))),
                    _ => Ok(()),
                };
            };
            if path.len() == 1 {
                match f(items.get(idx))? {
                    Change::Keep => {}
                    Change::Set(x) => {
                        if idx < items.len() {
                            items[idx] = x;
                        } else {
                            items.resize(idx, Bson::Null);
                            items.push(x);
                        }
                    }
                    Change::Remove => {
                        if idx < items.len() {
                            items[idx] = Bson::Null;
                        }
                    }
                }
                Ok(())
            } else if idx < items.len() {
                let key = path[0].clone();
                modify_value(&mut items[idx], &key, &path[1..], f)
            } else {
                if let Change::Set(x) = f(None)? {
                    items.resize(idx, Bson::Null);
                    items.push(nested(&path[1..], x));
                }
                Ok(())
            }
        }
        other => match f(None)? {
            Change::Set(_) => Err(EngineError::bad(format!("Cannot create field '{}' in element {{{parent}: {}}}", path[0], show(other)))),
            _ => Ok(()),
        },
    }
}

/// `{a: {b: v}}` for the path `a.b`.
fn nested(path: &[String], v: Bson) -> Bson {
    path.iter().rev().fold(v, |acc, k| {
        let mut d = Document::new();
        d.insert(k.clone(), acc);
        Bson::Document(d)
    })
}

/// The document an upsert starts from: the filter's equality clauses, with
/// dotted keys as embedded documents. Comparison clauses, `$in` (even with
/// one element) and `$or` are not copied.
pub fn upsert_seed(filter: &Filter) -> Result<Document> {
    let mut doc = Document::new();
    for (path, v) in filter.equality_clauses() {
        let mut clash = false;
        modify(&mut doc, &path, &mut |cur| {
            if let Some(existing) = cur {
                if !eq_bson(existing, &v) {
                    clash = true;
                }
                return Ok(Change::Keep);
            }
            Ok(Change::Set(v.clone()))
        })
        .map_err(|_| EngineError::bad(format!("cannot infer query fields to set, path '{}' is matched twice", path.join("."))))?;
        if clash {
            return Err(EngineError::bad(format!("cannot infer query fields to set, path '{}' is matched twice", path.join("."))));
        }
    }
    Ok(doc)
}

/// Builds the document an upsert inserts: the filter's equality clauses,
/// then the update (with `$setOnInsert`). An `_id` that differs from the
/// filter's `_id` equality is an error. The `_id` is not generated here.
pub fn upsert_document(filter: &Filter, update: &Update) -> Result<Document> {
    let mut doc = upsert_seed(filter)?;
    let seeded_id = doc.get("_id").cloned();
    update.apply(&mut doc, true)?;
    if let Some(id) = seeded_id {
        if !doc.get("_id").is_some_and(|now| identical(now, &id)) {
            return Err(immutable_id());
        }
    }
    Ok(doc)
}

/// Refuses a replacement document with update operators.
pub fn check_replacement(doc: &Document) -> Result<()> {
    if let Some(k) = doc.keys().find(|k| k.starts_with('$')) {
        return Err(EngineError::bad(format!("Replacement document must not contain atomic operators (found '{k}')")));
    }
    Ok(())
}

/// The result of replacing `old` with `replacement`: `old`'s `_id` first,
/// then every field of the replacement. A different `_id` is an error.
pub fn replace(old: &Document, replacement: &Document) -> Result<Document> {
    check_replacement(replacement)?;
    let mut out = Document::new();
    if let Some(id) = old.get("_id") {
        if let Some(new_id) = replacement.get("_id") {
            if !identical(id, new_id) {
                return Err(immutable_id());
            }
        }
        out.insert("_id", id.clone());
    }
    for (k, v) in replacement {
        if k != "_id" {
            out.insert(k.clone(), v.clone());
        }
    }
    Ok(out)
}

/// The document a `replaceOne` upsert inserts: the replacement, taking the
/// filter's `_id` equality when it has no `_id` of its own.
pub fn upsert_replacement(filter: &Filter, replacement: &Document) -> Result<Document> {
    check_replacement(replacement)?;
    let mut doc = replacement.clone();
    if !doc.contains_key("_id") {
        if let Some((_, id)) = filter.equality_clauses().into_iter().find(|(p, _)| p.len() == 1 && p[0] == "_id") {
            doc.insert("_id", id);
        }
    }
    Ok(super::id_first(doc))
}

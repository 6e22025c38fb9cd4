//! Aggregation pipelines and expressions (MongoDB manual:
//! `operator/aggregation/*`).
//!
//! Stages: `$match $project $addFields/$set $unset $unwind $group $sort $skip
//! $limit $count $lookup $replaceRoot/$replaceWith $facet`. `$lookup` takes
//! the equality form, the equality form with a `pipeline` run over the
//! joined documents (MongoDB 5.0's concise correlated form) and the
//! uncorrelated `pipeline` form; `let` variables are not supported.
//! Expressions: field paths (`"$a.b"`), `$$ROOT`/`$$CURRENT`/`$$REMOVE`/`$$NOW`,
//! literals, `$literal`, `$cond`, `$switch`, `$eq $ne $gt $gte $lt $lte $cmp
//! $in $and $or $not $ifNull $size $add $subtract $multiply $divide $concat
//! $floor $round $max $min $sum $dateToString`. Accumulators: `$sum $avg $first
//! $last $push $addToSet $min $max $count`.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use bson::{Bson, Document};

use super::compare::{add_numbers, as_f64, cmp_bson, eq_bson, f64_to_decimal, is_number, mul_numbers, sub_numbers, OrdBson};
use super::query::{leaves, Filter, Leaf, Projection, SortSpec};
use super::{integer_arg, show, split_path, type_name, EngineError, Result};

/// A parsed pipeline. Parse with [`Pipeline::parse`]; run with [`Pipeline::run`].
#[derive(Clone, Debug)]
pub struct Pipeline {
    stages: Vec<Stage>,
}

#[derive(Clone, Debug)]
enum Stage {
    Match(Filter),
    Project(AggProjection),
    AddFields(Vec<(Vec<String>, Expr)>),
    Unset(Projection),
    Unwind { path: Vec<String>, index: Option<String>, preserve: bool },
    Group { id: Expr, accs: Vec<(String, AccKind, Expr)> },
    Sort(SortSpec),
    Skip(usize),
    Limit(usize),
    Count(String),
    Lookup { from: String, join: Option<(Vec<String>, Vec<String>)>, pipeline: Option<Pipeline>, as_path: Vec<String> },
    ReplaceRoot(Expr),
    Facet(Vec<(String, Pipeline)>),
}

impl Pipeline {
    /// Parses a pipeline: an array of single-field stage documents.
    pub fn parse(stages: &[Bson]) -> Result<Pipeline> {
        let mut out = Vec::new();
        for s in stages {
            let Bson::Document(d) = s else {
                return Err(EngineError::bad("Each element of the 'pipeline' array must be an object"));
            };
            if d.len() != 1 {
                return Err(EngineError::bad("A pipeline stage specification object must contain exactly one field."));
            }
            let (name, arg) = d.iter().next().expect("one field");
            out.push(parse_stage(name, arg)?);
        }
        Ok(Pipeline { stages: out })
    }

    /// The collections `$lookup` stages read (in the same database).
    pub fn foreign_collections(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .stages
            .iter()
            .flat_map(|s| match s {
                Stage::Lookup { from, pipeline, .. } => {
                    let mut v = vec![from.clone()];
                    v.extend(pipeline.iter().flat_map(Pipeline::foreign_collections));
                    v
                }
                Stage::Facet(facets) => facets.iter().flat_map(|(_, p)| p.foreign_collections()).collect(),
                _ => vec![],
            })
            .collect();
        names.sort();
        names.dedup();
        names
    }

    /// Runs the pipeline over `docs`; `foreign` gives the documents of a
    /// collection named by `$lookup` (borrowed: a join reads them, and
    /// copies only what it embeds).
    pub fn run<'f>(&self, mut docs: Vec<Document>, foreign: &dyn Fn(&str) -> &'f [Document]) -> Result<Vec<Document>> {
        for stage in &self.stages {
            docs = run_stage(stage, docs, foreign)?;
        }
        Ok(docs)
    }

    /// Runs the pipeline over a collection: a leading `$match` picks the
    /// documents before any is copied (what an index does for MongoDB).
    pub fn run_on<'f>(&self, input: &[Document], foreign: &dyn Fn(&str) -> &'f [Document]) -> Result<Vec<Document>> {
        match self.stages.first() {
            Some(Stage::Match(f)) => {
                let mut docs: Vec<Document> = input.iter().filter(|d| f.matches(d)).cloned().collect();
                for stage in &self.stages[1..] {
                    docs = run_stage(stage, docs, foreign)?;
                }
                Ok(docs)
            }
            _ => self.run(input.to_vec(), foreign),
        }
    }
}

fn require_doc<'a>(stage: &str, arg: &'a Bson) -> Result<&'a Document> {
    match arg {
        Bson::Document(d) => Ok(d),
        other => Err(EngineError::bad(format!("the {stage} stage specification must be an object, found {}", type_name(other)))),
    }
}

fn parse_stage(name: &str, arg: &Bson) -> Result<Stage> {
    Ok(match name {
        "$match" => Stage::Match(Filter::parse(require_doc(name, arg)?)?),
        "$project" => Stage::Project(AggProjection::parse(require_doc(name, arg)?)?),
        "$addFields" | "$set" => {
            let d = require_doc(name, arg)?;
            let mut fields = Vec::new();
            flatten_fields(d, &[], &mut fields)?;
            Stage::AddFields(fields)
        }
        "$unset" => {
            let paths: Vec<String> = match arg {
                Bson::String(s) => vec![s.clone()],
                Bson::Array(items) if !items.is_empty() => items
                    .iter()
                    .map(|i| match i {
                        Bson::String(s) => Ok(s.clone()),
                        _ => Err(EngineError::bad("$unset specification must be a string or an array containing only string values")),
                    })
                    .collect::<Result<_>>()?,
                _ => return Err(EngineError::bad("$unset specification must be a string or an array with at least one field")),
            };
            Stage::Unset(Projection::exclusion(&paths)?)
        }
        "$unwind" => {
            let (path, index, preserve) = match arg {
                Bson::String(s) => (s.clone(), None, false),
                Bson::Document(d) => {
                    let mut path = None;
                    let mut index = None;
                    let mut preserve = false;
                    for (k, v) in d {
                        match (k.as_str(), v) {
                            ("path", Bson::String(s)) => path = Some(s.clone()),
                            ("includeArrayIndex", Bson::String(s)) => {
                                if s.is_empty() || s.starts_with('$') {
                                    return Err(EngineError::bad(
                                        "includeArrayIndex option to $unwind stage must not be prefixed with '$' or empty",
                                    ));
                                }
                                index = Some(s.clone())
                            }
                            ("preserveNullAndEmptyArrays", Bson::Boolean(b)) => preserve = *b,
                            _ => {
                                return Err(EngineError::bad(format!(
                                    "unrecognized or malformed option to $unwind stage: {k}: {}",
                                    show(v)
                                )))
                            }
                        }
                    }
                    (path.ok_or_else(|| EngineError::bad("no path specified to $unwind stage"))?, index, preserve)
                }
                _ => return Err(EngineError::bad("expected either a string or an object as specification for $unwind stage")),
            };
            let Some(p) = path.strip_prefix('$') else {
                return Err(EngineError::bad(format!("path option to $unwind stage should be prefixed with a '$': {path}")));
            };
            Stage::Unwind { path: split_path(p)?, index, preserve }
        }
        "$group" => {
            let d = require_doc(name, arg)?;
            let mut id = None;
            let mut accs = Vec::new();
            for (k, v) in d {
                if k == "_id" {
                    id = Some(parse_expr(v)?);
                    continue;
                }
                if k.contains('.') {
                    return Err(EngineError::bad(format!("The field name '{k}' cannot contain '.'")));
                }
                let acc = match v {
                    Bson::Document(a) if a.len() == 1 => a,
                    _ => return Err(EngineError::bad(format!("The field '{k}' must be an accumulator object"))),
                };
                let (op, expr) = acc.iter().next().expect("one field");
                let kind = match op.as_str() {
                    "$sum" => AccKind::Sum,
                    "$avg" => AccKind::Avg,
                    "$first" => AccKind::First,
                    "$last" => AccKind::Last,
                    "$push" => AccKind::Push,
                    "$addToSet" => AccKind::AddToSet,
                    "$min" => AccKind::Min,
                    "$max" => AccKind::Max,
                    "$count" => {
                        if !matches!(expr, Bson::Document(e) if e.is_empty()) {
                            return Err(EngineError::bad("$count takes no arguments, i.e. $count:{}"));
                        }
                        AccKind::Count
                    }
                    other => return Err(EngineError::bad(format!("unknown group operator '{other}'"))),
                };
                let expr = if kind == AccKind::Count { Expr::Literal(Bson::Null) } else { parse_expr(expr)? };
                accs.push((k.clone(), kind, expr));
            }
            Stage::Group { id: id.ok_or_else(|| EngineError::bad("a group specification must include an _id"))?, accs }
        }
        "$sort" => {
            let spec = SortSpec::parse(require_doc(name, arg)?)?;
            if spec.is_empty() {
                return Err(EngineError::bad("$sort stage must have at least one sort key"));
            }
            Stage::Sort(spec)
        }
        "$skip" => match integer_arg(arg) {
            Some(n) if n >= 0 => Stage::Skip(n as usize),
            _ => return Err(EngineError::bad(format!("invalid argument to $skip stage: {}", show(arg)))),
        },
        "$limit" => match integer_arg(arg) {
            Some(n) if n > 0 => Stage::Limit(n as usize),
            _ => {
                return Err(EngineError::bad(format!("invalid argument to $limit stage: the limit must be positive, found {}", show(arg))))
            }
        },
        "$count" => match arg {
            Bson::String(s) if !s.is_empty() && !s.starts_with('$') && !s.contains('.') => Stage::Count(s.clone()),
            _ => return Err(EngineError::bad("the count field must be a non-empty string without '$' prefix or '.'")),
        },
        "$lookup" => parse_lookup(require_doc(name, arg)?)?,
        "$facet" => {
            let d = require_doc(name, arg)?;
            if d.is_empty() {
                return Err(EngineError::bad("$facet requires at least one output field"));
            }
            let mut facets = Vec::new();
            for (k, v) in d {
                if k.is_empty() || k.starts_with('$') || k.contains('.') {
                    return Err(EngineError::bad(format!(
                        "$facet output field names may not be empty, start with '$' or contain '.': '{k}'"
                    )));
                }
                let Bson::Array(stages) = v else {
                    return Err(EngineError::bad(format!("arguments to $facet must be arrays, {k} is type {}", type_name(v))));
                };
                // The manual: a facet's sub-pipeline cannot hold another $facet
                // (nor $out, $merge, $collStats, $indexStats, $geoNear, which
                // the emulator does not know at all).
                if stages.iter().any(|s| matches!(s, Bson::Document(sd) if sd.contains_key("$facet"))) {
                    return Err(EngineError::bad("$facet is not allowed to be used within a $facet stage"));
                }
                facets.push((k.clone(), Pipeline::parse(stages)?));
            }
            Stage::Facet(facets)
        }
        "$replaceRoot" => {
            let d = require_doc(name, arg)?;
            match (d.len(), d.get("newRoot")) {
                (1, Some(e)) => Stage::ReplaceRoot(parse_expr(e)?),
                _ => return Err(EngineError::bad("no newRoot specified for the $replaceRoot stage")),
            }
        }
        "$replaceWith" => Stage::ReplaceRoot(parse_expr(arg)?),
        other => return Err(EngineError::bad(format!("Unrecognized pipeline stage name: '{other}'"))),
    })
}

/// `$lookup`: `{from, localField, foreignField, as}` joins by equality;
/// adding `pipeline` runs it over each document's joined documents (the
/// concise correlated form, MongoDB 5.0); `{from, pipeline, as}` alone runs
/// the pipeline over the whole foreign collection for every document.
fn parse_lookup(d: &Document) -> Result<Stage> {
    if let Some(k) = d.keys().find(|k| !matches!(k.as_str(), "from" | "localField" | "foreignField" | "as" | "pipeline" | "let")) {
        return Err(EngineError::bad(format!("unknown argument to $lookup: {k}")));
    }
    if d.contains_key("let") {
        return Err(EngineError::bad("$lookup 'let' variables are not supported by the emulator"));
    }
    let get = |k: &str| -> Result<Option<String>> {
        match d.get(k) {
            Some(Bson::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(EngineError::bad(format!("$lookup argument '{k}' must be a string"))),
            None => Ok(None),
        }
    };
    let from = get("from")?.ok_or_else(|| EngineError::bad("missing 'from' option to $lookup stage specification"))?;
    let as_field = get("as")?.ok_or_else(|| EngineError::bad("must specify 'as' field for a $lookup"))?;
    let pipeline = match d.get("pipeline") {
        None => None,
        Some(Bson::Array(stages)) => Some(Pipeline::parse(stages)?),
        Some(other) => return Err(EngineError::bad(format!("$lookup argument 'pipeline' must be an array, is type {}", type_name(other)))),
    };
    let join = match (get("localField")?, get("foreignField")?) {
        (Some(l), Some(f)) => Some((split_path(&l)?, split_path(&f)?)),
        (None, None) if pipeline.is_some() => None,
        (None, None) => {
            return Err(EngineError::bad("$lookup requires either 'pipeline' or both 'localField' and 'foreignField' to be specified"))
        }
        _ => return Err(EngineError::bad("$lookup requires both or neither of 'localField' and 'foreignField' to be specified")),
    };
    Ok(Stage::Lookup { from, join, pipeline, as_path: split_path(&as_field)? })
}

/// The foreign documents of an equality `$lookup`, indexed by every value
/// their `foreignField` offers to query equality: the value itself, each
/// element of an array, and null for a missing field (MongoDB's `$lookup`
/// matches as `{foreignField: {$in: <local values>}}` does). The index is
/// what a real deployment's index on the foreign field gives: without it a
/// join of thousands of documents against a large collection is quadratic.
struct ForeignIndex(BTreeMap<OrdBson, Vec<usize>>);

impl ForeignIndex {
    fn build(others: &[Document], foreign: &[String]) -> Self {
        let mut map: BTreeMap<OrdBson, Vec<usize>> = BTreeMap::new();
        for (i, o) in others.iter().enumerate() {
            let mut keys = Vec::new();
            for l in leaves(o, foreign) {
                match l {
                    Leaf::Missing => keys.push(Bson::Null),
                    Leaf::Value(v) => {
                        if let Bson::Array(items) = v {
                            keys.extend(items.iter().cloned());
                        }
                        keys.push(v.clone());
                    }
                }
            }
            for k in keys {
                let slot = map.entry(OrdBson(k)).or_default();
                if slot.last() != Some(&i) {
                    slot.push(i);
                }
            }
        }
        ForeignIndex(map)
    }

    /// Positions of the documents equal to any of `keys`, in collection order.
    fn lookup(&self, keys: Vec<Bson>) -> Vec<usize> {
        let mut hits: Vec<usize> = keys.into_iter().filter_map(|k| self.0.get(&OrdBson(k))).flatten().copied().collect();
        hits.sort_unstable();
        hits.dedup();
        hits
    }
}

/// `{a: {b: expr}, "c.d": expr}` → `[(a.b, expr), (c.d, expr)]`: nested
/// non-expression objects name embedded fields.
fn flatten_fields(d: &Document, prefix: &[String], out: &mut Vec<(Vec<String>, Expr)>) -> Result<()> {
    for (k, v) in d {
        if k.starts_with('$') {
            return Err(EngineError::bad(format!("FieldPath field names may not start with '$': '{k}'")));
        }
        let mut path = prefix.to_vec();
        path.extend(split_path(k)?);
        match v {
            Bson::Document(sub) if !sub.is_empty() && !sub.keys().next().is_some_and(|f| f.starts_with('$')) => {
                flatten_fields(sub, &path, out)?
            }
            _ => out.push((path, parse_expr(v)?)),
        }
    }
    Ok(())
}

fn run_stage<'f>(stage: &Stage, docs: Vec<Document>, foreign: &dyn Fn(&str) -> &'f [Document]) -> Result<Vec<Document>> {
    Ok(match stage {
        Stage::Match(f) => docs.into_iter().filter(|d| f.matches(d)).collect(),
        Stage::Project(p) => docs.iter().map(|d| p.apply(d)).collect::<Result<_>>()?,
        Stage::AddFields(fields) => {
            let mut out = Vec::with_capacity(docs.len());
            for d in docs {
                let values = fields.iter().map(|(_, e)| e.eval(&d)).collect::<Result<Vec<_>>>()?;
                let mut d = d;
                for ((path, _), v) in fields.iter().zip(values) {
                    set_field(&mut d, path, v);
                }
                out.push(d);
            }
            out
        }
        Stage::Unset(p) => docs.iter().map(|d| p.apply(d)).collect(),
        Stage::Unwind { path, index, preserve } => {
            let mut out = Vec::new();
            for d in docs {
                match get_plain(&d, path).cloned() {
                    Some(Bson::Array(items)) if !items.is_empty() => {
                        for (i, e) in items.into_iter().enumerate() {
                            let mut x = d.clone();
                            set_field(&mut x, path, Some(e));
                            if let Some(f) = index {
                                x.insert(f.clone(), Bson::Int64(i as i64));
                            }
                            out.push(x);
                        }
                    }
                    Some(Bson::Array(_)) | Some(Bson::Null) | Some(Bson::Undefined) | None => {
                        if *preserve {
                            let mut x = d.clone();
                            if matches!(get_plain(&x, path), Some(Bson::Array(_))) {
                                set_field(&mut x, path, None);
                            }
                            if let Some(f) = index {
                                x.insert(f.clone(), Bson::Null);
                            }
                            out.push(x);
                        }
                    }
                    Some(_) => {
                        let mut x = d;
                        if let Some(f) = index {
                            x.insert(f.clone(), Bson::Null);
                        }
                        out.push(x);
                    }
                }
            }
            out
        }
        Stage::Group { id, accs } => group(docs, id, accs)?,
        Stage::Sort(spec) => {
            let mut docs = docs;
            spec.sort(&mut docs);
            docs
        }
        Stage::Skip(n) => docs.into_iter().skip(*n).collect(),
        Stage::Limit(n) => docs.into_iter().take(*n).collect(),
        Stage::Count(name) => {
            if docs.is_empty() {
                Vec::new()
            } else {
                let mut d = Document::new();
                d.insert(name.clone(), count_value(docs.len()));
                vec![d]
            }
        }
        Stage::Lookup { from, join, pipeline, as_path } => {
            let others = foreign(from);
            let index = join.as_ref().map(|(_, f)| ForeignIndex::build(others, f));
            let mut out = Vec::with_capacity(docs.len());
            for mut d in docs {
                let joined: Vec<Document> = match (join, &index) {
                    (Some((local, _)), Some(index)) => {
                        let mut keys = Vec::new();
                        for l in leaves(&d, local) {
                            match l {
                                Leaf::Missing => keys.push(Bson::Null),
                                Leaf::Value(Bson::Array(items)) => keys.extend(items.iter().cloned()),
                                Leaf::Value(v) => keys.push(v.clone()),
                            }
                        }
                        index.lookup(keys).into_iter().map(|i| others[i].clone()).collect()
                    }
                    _ => others.to_vec(),
                };
                let joined = match pipeline {
                    Some(p) => p.run(joined, foreign)?,
                    None => joined,
                };
                set_field(&mut d, as_path, Some(Bson::Array(joined.into_iter().map(Bson::Document).collect())));
                out.push(d);
            }
            out
        }
        Stage::Facet(facets) => {
            let mut out = Document::new();
            for (name, p) in facets {
                let docs = p.run(docs.clone(), foreign)?;
                out.insert(name.clone(), Bson::Array(docs.into_iter().map(Bson::Document).collect()));
            }
            vec![out]
        }
        Stage::ReplaceRoot(e) => {
            let mut out = Vec::with_capacity(docs.len());
            for d in &docs {
                match e.eval(d)? {
                    Some(Bson::Document(x)) => out.push(x),
                    other => {
                        return Err(EngineError::bad(format!(
                            "'newRoot' expression must evaluate to an object, but resulting value was: {}",
                            other.as_ref().map(show).unwrap_or_else(|| "MISSING".to_owned())
                        )))
                    }
                }
            }
            out
        }
    })
}

fn count_value(n: usize) -> Bson {
    i32::try_from(n).map(Bson::Int32).unwrap_or(Bson::Int64(n as i64))
}

/// The value at a path through embedded documents only (no array traversal).
fn get_plain<'a>(d: &'a Document, path: &[String]) -> Option<&'a Bson> {
    let v = d.get(&path[0])?;
    if path.len() == 1 {
        return Some(v);
    }
    match v {
        Bson::Document(sub) => get_plain(sub, &path[1..]),
        _ => None,
    }
}

/// `$addFields`-style assignment: sets (or, for `None`, removes) the field at
/// `path`, creating embedded documents, and through an array of documents
/// sets the field in every element.
fn set_field(d: &mut Document, path: &[String], v: Option<Bson>) {
    if path.len() == 1 {
        match v {
            Some(x) => {
                d.insert(path[0].clone(), x);
            }
            None => {
                d.remove(&path[0]);
            }
        }
        return;
    }
    match d.get_mut(&path[0]) {
        Some(Bson::Document(sub)) => set_field(sub, &path[1..], v),
        Some(Bson::Array(items)) => {
            for e in items.iter_mut() {
                if let Bson::Document(sub) = e {
                    set_field(sub, &path[1..], v.clone());
                }
            }
        }
        _ => {
            if v.is_some() {
                let mut sub = Document::new();
                set_field(&mut sub, &path[1..], v);
                d.insert(path[0].clone(), sub);
            }
        }
    }
}

// ---------------------------------------------------------------------------
// $project

#[derive(Clone, Debug)]
enum AggProjection {
    Exclude(Projection),
    Include { include_id: bool, id_expr: Option<Expr>, nodes: Vec<(String, PNode)> },
}

#[derive(Clone, Debug)]
enum PNode {
    Include,
    Expr(Expr),
    Sub(Vec<(String, PNode)>),
}

enum Item {
    Include,
    Exclude,
    Expr(Expr),
}

fn flag(v: &Bson) -> Option<bool> {
    match v {
        Bson::Boolean(b) => Some(*b),
        _ if is_number(v) => Some(as_f64(v).is_some_and(|f| f != 0.0)),
        _ => None,
    }
}

fn collect_items(d: &Document, prefix: &[String], out: &mut Vec<(Vec<String>, Item)>) -> Result<()> {
    for (k, v) in d {
        if k.starts_with('$') {
            return Err(EngineError::bad(format!("FieldPath field names may not start with '$': '{k}'")));
        }
        let mut path = prefix.to_vec();
        path.extend(split_path(k)?);
        match v {
            Bson::Document(sub) if !sub.is_empty() && !sub.keys().next().is_some_and(|f| f.starts_with('$')) => {
                collect_items(sub, &path, out)?
            }
            Bson::Document(sub) if sub.is_empty() => {
                return Err(EngineError::bad(format!(
                    "An empty sub-projection is not a valid value. Found empty object at path {}",
                    path.join(".")
                )))
            }
            _ => match flag(v) {
                Some(true) => out.push((path, Item::Include)),
                Some(false) => out.push((path, Item::Exclude)),
                None => out.push((path, Item::Expr(parse_expr(v)?))),
            },
        }
    }
    Ok(())
}

fn insert_node(nodes: &mut Vec<(String, PNode)>, path: &[String], node: PNode, full: &str) -> Result<()> {
    let collision = || EngineError::bad(format!("Invalid $project :: caused by :: Path collision at {full}"));
    let pos = nodes.iter().position(|(k, _)| k == &path[0]);
    if path.len() == 1 {
        if pos.is_some() {
            return Err(collision());
        }
        nodes.push((path[0].clone(), node));
        return Ok(());
    }
    let i = match pos {
        Some(i) => i,
        None => {
            nodes.push((path[0].clone(), PNode::Sub(Vec::new())));
            nodes.len() - 1
        }
    };
    match &mut nodes[i].1 {
        PNode::Sub(sub) => insert_node(sub, &path[1..], node, full),
        _ => Err(collision()),
    }
}

impl AggProjection {
    fn parse(spec: &Document) -> Result<AggProjection> {
        if spec.is_empty() {
            return Err(EngineError::bad("Invalid $project :: caused by :: projection specification must have at least one field"));
        }
        let mut items = Vec::new();
        collect_items(spec, &[], &mut items)?;
        let mut include_id = true;
        let mut id_expr = None;
        let mut rest = Vec::new();
        for (path, item) in items {
            if path.len() == 1 && path[0] == "_id" {
                match item {
                    Item::Include => include_id = true,
                    Item::Exclude => include_id = false,
                    Item::Expr(e) => id_expr = Some(e),
                }
            } else {
                rest.push((path, item));
            }
        }
        let excludes: Vec<&Vec<String>> = rest.iter().filter(|(_, i)| matches!(i, Item::Exclude)).map(|(p, _)| p).collect();
        let includes = rest.iter().find(|(_, i)| !matches!(i, Item::Exclude));
        if let (Some(ex), Some(_)) = (excludes.first(), includes) {
            return Err(EngineError::bad(format!(
                "Invalid $project :: caused by :: Cannot do exclusion on field {} in inclusion projection",
                ex.join(".")
            )));
        }
        if includes.is_none() && id_expr.is_none() && (!excludes.is_empty() || !include_id) {
            let mut paths: Vec<String> = excludes.iter().map(|p| p.join(".")).collect();
            if !include_id {
                paths.push("_id".to_owned());
            }
            return Ok(AggProjection::Exclude(Projection::exclusion(&paths)?));
        }
        let mut nodes = Vec::new();
        for (path, item) in rest {
            let node = match item {
                Item::Include => PNode::Include,
                Item::Expr(e) => PNode::Expr(e),
                Item::Exclude => unreachable!("exclusions were rejected above"),
            };
            insert_node(&mut nodes, &path, node, &path.join("."))?;
        }
        Ok(AggProjection::Include { include_id, id_expr, nodes })
    }

    fn apply(&self, doc: &Document) -> Result<Document> {
        match self {
            AggProjection::Exclude(p) => Ok(p.apply(doc)),
            AggProjection::Include { include_id, id_expr, nodes } => {
                let mut out = Document::new();
                if let Some(e) = id_expr {
                    if let Some(v) = e.eval(doc)? {
                        out.insert("_id", v);
                    }
                } else if *include_id {
                    if let Some(id) = doc.get("_id") {
                        out.insert("_id", id.clone());
                    }
                }
                let body = project_doc(doc, nodes, doc, true)?;
                out.extend(body);
                Ok(out)
            }
        }
    }
}

fn has_expr(nodes: &[(String, PNode)]) -> bool {
    nodes.iter().any(|(_, n)| match n {
        PNode::Expr(_) => true,
        PNode::Sub(s) => has_expr(s),
        PNode::Include => false,
    })
}

fn project_doc(d: &Document, nodes: &[(String, PNode)], root: &Document, top: bool) -> Result<Document> {
    let mut out = Document::new();
    for (k, v) in d {
        if top && k == "_id" {
            continue;
        }
        match nodes.iter().find(|(n, _)| n == k).map(|(_, n)| n) {
            Some(PNode::Include) => {
                out.insert(k.clone(), v.clone());
            }
            Some(PNode::Sub(sub)) => {
                if let Some(x) = project_value(v, sub, root)? {
                    out.insert(k.clone(), x);
                }
            }
            _ => {}
        }
    }
    for (k, n) in nodes {
        match n {
            PNode::Expr(e) => {
                if let Some(v) = e.eval(root)? {
                    out.insert(k.clone(), v);
                }
            }
            PNode::Sub(sub) if has_expr(sub) && !matches!(d.get(k), Some(Bson::Document(_)) | Some(Bson::Array(_))) => {
                out.insert(k.clone(), project_doc(&Document::new(), sub, root, false)?);
            }
            _ => {}
        }
    }
    Ok(out)
}

fn project_value(v: &Bson, sub: &[(String, PNode)], root: &Document) -> Result<Option<Bson>> {
    Ok(match v {
        Bson::Document(d) => Some(Bson::Document(project_doc(d, sub, root, false)?)),
        Bson::Array(items) => {
            let mut out = Vec::new();
            for e in items {
                if let Some(x) = project_value(e, sub, root)? {
                    out.push(x);
                }
            }
            Some(Bson::Array(out))
        }
        _ => None,
    })
}

// ---------------------------------------------------------------------------
// $group

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum AccKind {
    Sum,
    Avg,
    First,
    Last,
    Push,
    AddToSet,
    Min,
    Max,
    Count,
}

enum Acc {
    Sum(Bson),
    Avg(Bson, u64),
    First(Option<Bson>),
    Last(Bson),
    Push(Vec<Bson>),
    AddToSet(Vec<Bson>),
    Min(Option<Bson>),
    Max(Option<Bson>),
    Count(usize),
}

impl Acc {
    fn new(kind: AccKind) -> Acc {
        match kind {
            AccKind::Sum => Acc::Sum(Bson::Int32(0)),
            AccKind::Avg => Acc::Avg(Bson::Int32(0), 0),
            AccKind::First => Acc::First(None),
            AccKind::Last => Acc::Last(Bson::Null),
            AccKind::Push => Acc::Push(Vec::new()),
            AccKind::AddToSet => Acc::AddToSet(Vec::new()),
            AccKind::Min => Acc::Min(None),
            AccKind::Max => Acc::Max(None),
            AccKind::Count => Acc::Count(0),
        }
    }

    fn add(&mut self, v: Option<Bson>) {
        match self {
            Acc::Sum(s) => {
                if let Some(x) = v.filter(is_number) {
                    *s = add_numbers(s, &x);
                }
            }
            Acc::Avg(s, n) => {
                if let Some(x) = v.filter(is_number) {
                    *s = add_numbers(s, &x);
                    *n += 1;
                }
            }
            Acc::First(f) => {
                if f.is_none() {
                    *f = Some(v.unwrap_or(Bson::Null));
                }
            }
            Acc::Last(l) => *l = v.unwrap_or(Bson::Null),
            Acc::Push(items) => items.extend(v),
            Acc::AddToSet(items) => {
                if let Some(x) = v {
                    if !items.iter().any(|e| eq_bson(e, &x)) {
                        items.push(x);
                    }
                }
            }
            Acc::Min(m) => {
                if let Some(x) = v.filter(|x| !matches!(x, Bson::Null | Bson::Undefined)) {
                    if m.as_ref().is_none_or(|cur| cmp_bson(&x, cur) == Ordering::Less) {
                        *m = Some(x);
                    }
                }
            }
            Acc::Max(m) => {
                if let Some(x) = v.filter(|x| !matches!(x, Bson::Null | Bson::Undefined)) {
                    if m.as_ref().is_none_or(|cur| cmp_bson(&x, cur) == Ordering::Greater) {
                        *m = Some(x);
                    }
                }
            }
            Acc::Count(n) => *n += 1,
        }
    }

    fn result(self) -> Bson {
        match self {
            Acc::Sum(s) => s,
            Acc::Avg(_, 0) => Bson::Null,
            Acc::Avg(s, n) => match s {
                Bson::Decimal128(_) => f64_to_decimal(as_f64(&s).unwrap_or(f64::NAN) / n as f64),
                other => Bson::Double(as_f64(&other).unwrap_or(f64::NAN) / n as f64),
            },
            Acc::First(f) => f.unwrap_or(Bson::Null),
            Acc::Last(l) => l,
            Acc::Push(items) | Acc::AddToSet(items) => Bson::Array(items),
            Acc::Min(m) | Acc::Max(m) => m.unwrap_or(Bson::Null),
            Acc::Count(n) => count_value(n),
        }
    }
}

fn group(docs: Vec<Document>, id: &Expr, accs: &[(String, AccKind, Expr)]) -> Result<Vec<Document>> {
    let mut index: BTreeMap<OrdBson, usize> = BTreeMap::new();
    let mut groups: Vec<(Bson, Vec<Acc>)> = Vec::new();
    for d in &docs {
        let key = id.eval(d)?.unwrap_or(Bson::Null);
        let i = *index.entry(OrdBson(key.clone())).or_insert_with(|| {
            groups.push((key, accs.iter().map(|(_, k, _)| Acc::new(*k)).collect()));
            groups.len() - 1
        });
        for (j, (_, kind, e)) in accs.iter().enumerate() {
            let v = if *kind == AccKind::Count { None } else { e.eval(d)? };
            groups[i].1[j].add(v);
        }
    }
    Ok(groups
        .into_iter()
        .map(|(key, states)| {
            let mut out = Document::new();
            out.insert("_id", key);
            for ((name, _, _), st) in accs.iter().zip(states) {
                out.insert(name.clone(), st.result());
            }
            out
        })
        .collect())
}

// ---------------------------------------------------------------------------
// Expressions

/// An aggregation expression.
#[derive(Clone, Debug)]
pub(crate) enum Expr {
    /// `"$a.b"`, or `"$$ROOT.a.b"` (the pipeline has no sub-scopes, so
    /// `$$CURRENT` is `$$ROOT`). An empty path is the whole document.
    Field(Vec<String>),
    Remove,
    Now,
    Literal(Bson),
    Array(Vec<Expr>),
    Object(Vec<(String, Expr)>),
    Cond(Box<Expr>, Box<Expr>, Box<Expr>),
    Cmp(CmpKind, Box<Expr>, Box<Expr>),
    In(Box<Expr>, Box<Expr>),
    And(Vec<Expr>),
    Or(Vec<Expr>),
    Not(Box<Expr>),
    IfNull(Vec<Expr>),
    Size(Box<Expr>),
    Add(Vec<Expr>),
    Subtract(Box<Expr>, Box<Expr>),
    Multiply(Vec<Expr>),
    Divide(Box<Expr>, Box<Expr>),
    Concat(Vec<Expr>),
    Floor(Box<Expr>),
    /// `$round: [number, place]`: halves to even.
    Round(Box<Expr>, Box<Expr>),
    /// `$max`/`$min` as expressions (not accumulators): `true` is `$max`.
    Extreme(bool, Vec<Expr>),
    /// `$sum` as an expression: of one array argument, its numeric
    /// elements; of several arguments, the numeric ones; 0 when none.
    Sum(Vec<Expr>),
    /// `$switch`: `(case, then)` branches in order, then `default`.
    Switch(Vec<(Expr, Expr)>, Option<Box<Expr>>),
    DateToString {
        date: Box<Expr>,
        format: Option<String>,
        offset_minutes: i32,
        on_null: Option<Box<Expr>>,
    },
}

#[derive(Clone, Copy, Debug)]
pub(crate) enum CmpKind {
    Eq,
    Ne,
    Gt,
    Gte,
    Lt,
    Lte,
    Cmp,
}

fn args_of(v: &Bson) -> Vec<&Bson> {
    match v {
        Bson::Array(items) => items.iter().collect(),
        other => vec![other],
    }
}

fn exact_args<'a>(op: &str, v: &'a Bson, n: usize) -> Result<Vec<&'a Bson>> {
    let a = args_of(v);
    if a.len() != n {
        return Err(EngineError::bad(format!("Expression {op} takes exactly {n} arguments. {} were passed in.", a.len())));
    }
    Ok(a)
}

fn parse_all(args: Vec<&Bson>) -> Result<Vec<Expr>> {
    args.into_iter().map(parse_expr).collect()
}

/// Parses an aggregation expression.
pub(crate) fn parse_expr(v: &Bson) -> Result<Expr> {
    match v {
        Bson::String(s) if s.starts_with("$$") => {
            let body = &s[2..];
            let (var, rest) = body.split_once('.').map(|(a, b)| (a, Some(b))).unwrap_or((body, None));
            let path = match rest {
                Some(r) => split_path(r)?,
                None => Vec::new(),
            };
            match var {
                "ROOT" | "CURRENT" => Ok(Expr::Field(path)),
                "REMOVE" if path.is_empty() => Ok(Expr::Remove),
                "NOW" if path.is_empty() => Ok(Expr::Now),
                _ => Err(EngineError::bad(format!("Use of undefined variable: {var}"))),
            }
        }
        Bson::String(s) if s.starts_with('$') => {
            let p = &s[1..];
            if p.is_empty() {
                return Err(EngineError::bad("'$' by itself is not a valid FieldPath"));
            }
            Ok(Expr::Field(split_path(p)?))
        }
        Bson::Array(items) => Ok(Expr::Array(items.iter().map(parse_expr).collect::<Result<_>>()?)),
        Bson::Document(d) => {
            let op_keys = d.keys().filter(|k| k.starts_with('$')).count();
            if op_keys == 0 {
                let mut fields = Vec::new();
                for (k, x) in d {
                    if k.contains('.') {
                        return Err(EngineError::bad(format!("FieldPath field names may not contain '.': '{k}'")));
                    }
                    fields.push((k.clone(), parse_expr(x)?));
                }
                return Ok(Expr::Object(fields));
            }
            if d.len() != 1 {
                return Err(EngineError::bad(format!(
                    "an expression specification must contain exactly one field, the name of the expression. Found {} fields in {}",
                    d.len(),
                    show(v)
                )));
            }
            let (op, arg) = d.iter().next().expect("one field");
            parse_operator(op, arg)
        }
        other => Ok(Expr::Literal(other.clone())),
    }
}

fn parse_operator(op: &str, arg: &Bson) -> Result<Expr> {
    let b = |v: &Bson| parse_expr(v).map(Box::new);
    Ok(match op {
        "$literal" => Expr::Literal(arg.clone()),
        "$cond" => match arg {
            Bson::Document(d) => {
                for k in d.keys() {
                    if !matches!(k.as_str(), "if" | "then" | "else") {
                        return Err(EngineError::bad(format!("Unrecognized parameter to $cond: {k}")));
                    }
                }
                let get = |k: &str| d.get(k).ok_or_else(|| EngineError::bad(format!("Missing '{k}' parameter to $cond")));
                Expr::Cond(b(get("if")?)?, b(get("then")?)?, b(get("else")?)?)
            }
            _ => {
                let a = exact_args(op, arg, 3)?;
                Expr::Cond(b(a[0])?, b(a[1])?, b(a[2])?)
            }
        },
        "$eq" | "$ne" | "$gt" | "$gte" | "$lt" | "$lte" | "$cmp" => {
            let a = exact_args(op, arg, 2)?;
            let kind = match op {
                "$eq" => CmpKind::Eq,
                "$ne" => CmpKind::Ne,
                "$gt" => CmpKind::Gt,
                "$gte" => CmpKind::Gte,
                "$lt" => CmpKind::Lt,
                "$lte" => CmpKind::Lte,
                _ => CmpKind::Cmp,
            };
            Expr::Cmp(kind, b(a[0])?, b(a[1])?)
        }
        "$in" => {
            let a = exact_args(op, arg, 2)?;
            Expr::In(b(a[0])?, b(a[1])?)
        }
        "$and" => Expr::And(parse_all(args_of(arg))?),
        "$or" => Expr::Or(parse_all(args_of(arg))?),
        "$not" => {
            let a = exact_args(op, arg, 1)?;
            Expr::Not(b(a[0])?)
        }
        "$ifNull" => {
            let a = args_of(arg);
            if a.len() < 2 {
                return Err(EngineError::bad("$ifNull needs at least two arguments"));
            }
            Expr::IfNull(parse_all(a)?)
        }
        "$size" => {
            let a = exact_args(op, arg, 1)?;
            Expr::Size(b(a[0])?)
        }
        "$add" => Expr::Add(parse_all(args_of(arg))?),
        "$multiply" => Expr::Multiply(parse_all(args_of(arg))?),
        "$subtract" => {
            let a = exact_args(op, arg, 2)?;
            Expr::Subtract(b(a[0])?, b(a[1])?)
        }
        "$divide" => {
            let a = exact_args(op, arg, 2)?;
            Expr::Divide(b(a[0])?, b(a[1])?)
        }
        "$concat" => Expr::Concat(parse_all(args_of(arg))?),
        "$floor" => {
            let a = exact_args(op, arg, 1)?;
            Expr::Floor(b(a[0])?)
        }
        "$round" => {
            let a = args_of(arg);
            match a.len() {
                1 => Expr::Round(b(a[0])?, Box::new(Expr::Literal(Bson::Int32(0)))),
                2 => Expr::Round(b(a[0])?, b(a[1])?),
                n => {
                    return Err(EngineError::bad(format!(
                        "Expression $round takes at least 1 arguments, and at most 2, but {n} were passed in."
                    )))
                }
            }
        }
        "$max" | "$min" => Expr::Extreme(op == "$max", parse_all(args_of(arg))?),
        "$sum" => Expr::Sum(parse_all(args_of(arg))?),
        "$switch" => parse_switch(arg)?,
        "$dateToString" => super::dates::parse_date_to_string(arg)?,
        other => return Err(EngineError::bad(format!("Unrecognized expression '{other}'"))),
    })
}

fn parse_switch(arg: &Bson) -> Result<Expr> {
    let Bson::Document(d) = arg else {
        return Err(EngineError::bad(format!("$switch requires an object as an argument, found: {}", type_name(arg))));
    };
    let mut branches = Vec::new();
    let mut default = None;
    for (k, v) in d {
        match (k.as_str(), v) {
            ("branches", Bson::Array(items)) => {
                for item in items {
                    let Bson::Document(bd) = item else {
                        return Err(EngineError::bad(format!("$switch expected each branch to be an object, found: {}", type_name(item))));
                    };
                    let (mut case, mut then) = (None, None);
                    for (bk, bv) in bd {
                        match bk.as_str() {
                            "case" => case = Some(parse_expr(bv)?),
                            "then" => then = Some(parse_expr(bv)?),
                            other => return Err(EngineError::bad(format!("$switch found an unknown argument to a branch: {other}"))),
                        }
                    }
                    let case = case.ok_or_else(|| EngineError::bad("$switch requires each branch have a 'case' expression"))?;
                    let then = then.ok_or_else(|| EngineError::bad("$switch requires each branch have a 'then' expression."))?;
                    branches.push((case, then));
                }
            }
            ("branches", other) => {
                return Err(EngineError::bad(format!("$switch expected an array for 'branches', found: {}", type_name(other))))
            }
            ("default", v) => default = Some(Box::new(parse_expr(v)?)),
            (other, _) => return Err(EngineError::bad(format!("$switch found an unknown argument: {other}"))),
        }
    }
    if branches.is_empty() {
        return Err(EngineError::bad("$switch requires at least one branch."));
    }
    Ok(Expr::Switch(branches, default))
}

/// The operands of `$max`, `$min`, `$sum` as expressions: of one argument
/// that is an array, its elements; otherwise the arguments (missing ones
/// left out).
fn operands(items: &[Expr], doc: &Document) -> Result<Vec<Bson>> {
    let mut values = Vec::new();
    for e in items {
        values.push(e.eval(doc)?);
    }
    Ok(match values.as_slice() {
        [Some(Bson::Array(a))] => a.clone(),
        _ => values.into_iter().flatten().collect(),
    })
}

/// `$round` of a double at `place` decimal places, halves to even (the
/// manual: "rounds to the nearest even value" at .5).
fn round_half_even(x: f64, place: i32) -> f64 {
    if !x.is_finite() {
        return x;
    }
    let scale = 10f64.powi(place);
    let y = x * scale;
    let r = y.round_ties_even();
    if place == 0 {
        r
    } else {
        r / scale
    }
}

/// Aggregation truthiness: false, null, missing and numeric zero are false.
fn truthy(v: &Option<Bson>) -> bool {
    match v {
        None | Some(Bson::Null) | Some(Bson::Undefined) | Some(Bson::Boolean(false)) => false,
        Some(x) if is_number(x) => as_f64(x).is_some_and(|f| f != 0.0),
        Some(_) => true,
    }
}

/// Aggregation comparison: missing sorts below every value (so
/// `{$eq: ["$missing", null]}` is false), otherwise the BSON order.
fn cmp_opt(a: &Option<Bson>, b: &Option<Bson>) -> Ordering {
    match (a, b) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Less,
        (Some(_), None) => Ordering::Greater,
        (Some(x), Some(y)) => cmp_bson(x, y),
    }
}

/// `"$a.b"` in aggregation: through an array of documents it yields the
/// array of the values found (missing ones left out).
fn field_value(v: &Bson, path: &[String]) -> Option<Bson> {
    if path.is_empty() {
        return Some(v.clone());
    }
    match v {
        Bson::Document(d) => d.get(&path[0]).and_then(|x| field_value(x, &path[1..])),
        Bson::Array(items) => Some(Bson::Array(
            items.iter().filter(|e| matches!(e, Bson::Document(_) | Bson::Array(_))).filter_map(|e| field_value(e, path)).collect(),
        )),
        _ => None,
    }
}

fn nullish(v: &Option<Bson>) -> bool {
    matches!(v, None | Some(Bson::Null) | Some(Bson::Undefined))
}

impl Expr {
    /// Evaluates against a document; `None` is "missing".
    pub(crate) fn eval(&self, doc: &Document) -> Result<Option<Bson>> {
        Ok(match self {
            Expr::Field(path) if path.is_empty() => Some(Bson::Document(doc.clone())),
            Expr::Field(path) => doc.get(&path[0]).and_then(|v| field_value(v, &path[1..])),
            Expr::Remove => None,
            Expr::Now => Some(Bson::DateTime(bson::DateTime::now())),
            Expr::Literal(v) => Some(v.clone()),
            Expr::Array(items) => Some(Bson::Array(items.iter().map(|e| Ok(e.eval(doc)?.unwrap_or(Bson::Null))).collect::<Result<_>>()?)),
            Expr::Object(fields) => {
                let mut out = Document::new();
                for (k, e) in fields {
                    if let Some(v) = e.eval(doc)? {
                        out.insert(k.clone(), v);
                    }
                }
                Some(Bson::Document(out))
            }
            Expr::Cond(c, t, e) => {
                if truthy(&c.eval(doc)?) {
                    t.eval(doc)?
                } else {
                    e.eval(doc)?
                }
            }
            Expr::Cmp(kind, a, b) => {
                let o = cmp_opt(&a.eval(doc)?, &b.eval(doc)?);
                Some(match kind {
                    CmpKind::Eq => Bson::Boolean(o == Ordering::Equal),
                    CmpKind::Ne => Bson::Boolean(o != Ordering::Equal),
                    CmpKind::Gt => Bson::Boolean(o == Ordering::Greater),
                    CmpKind::Gte => Bson::Boolean(o != Ordering::Less),
                    CmpKind::Lt => Bson::Boolean(o == Ordering::Less),
                    CmpKind::Lte => Bson::Boolean(o != Ordering::Greater),
                    CmpKind::Cmp => Bson::Int32(o as i32),
                })
            }
            Expr::In(needle, hay) => {
                let n = needle.eval(doc)?;
                match hay.eval(doc)? {
                    Some(Bson::Array(items)) => Some(Bson::Boolean(n.as_ref().is_some_and(|x| items.iter().any(|e| eq_bson(e, x))))),
                    other => {
                        return Err(EngineError::bad(format!(
                            "$in requires an array as a second argument, found: {}",
                            other.as_ref().map(type_name).unwrap_or("missing")
                        )))
                    }
                }
            }
            Expr::And(items) => {
                let mut all = true;
                for e in items {
                    if !truthy(&e.eval(doc)?) {
                        all = false;
                        break;
                    }
                }
                Some(Bson::Boolean(all))
            }
            Expr::Or(items) => {
                let mut any = false;
                for e in items {
                    if truthy(&e.eval(doc)?) {
                        any = true;
                        break;
                    }
                }
                Some(Bson::Boolean(any))
            }
            Expr::Not(e) => Some(Bson::Boolean(!truthy(&e.eval(doc)?))),
            Expr::IfNull(items) => {
                let (last, first) = items.split_last().expect("parsed with at least two");
                for e in first {
                    let v = e.eval(doc)?;
                    if !nullish(&v) {
                        return Ok(v);
                    }
                }
                last.eval(doc)?
            }
            Expr::Size(e) => match e.eval(doc)? {
                Some(Bson::Array(items)) => Some(count_value(items.len())),
                other => {
                    return Err(EngineError::bad(format!(
                        "The argument to $size must be an array. Type of argument is: {}",
                        other.as_ref().map(type_name).unwrap_or("missing")
                    )))
                }
            },
            Expr::Add(items) => {
                let mut acc = Bson::Int32(0);
                let mut date: Option<i64> = None;
                for e in items {
                    let v = e.eval(doc)?;
                    match v {
                        None | Some(Bson::Null) | Some(Bson::Undefined) => return Ok(Some(Bson::Null)),
                        Some(Bson::DateTime(d)) if date.is_none() => date = Some(d.timestamp_millis()),
                        Some(x) if is_number(&x) => acc = add_numbers(&acc, &x),
                        Some(x) => {
                            return Err(EngineError::bad(format!("$add only supports numeric or date types, not {}", type_name(&x))))
                        }
                    }
                }
                match date {
                    Some(ms) => Some(Bson::DateTime(bson::DateTime::from_millis(ms + as_f64(&acc).unwrap_or(0.0).round() as i64))),
                    None => Some(acc),
                }
            }
            Expr::Multiply(items) => {
                let mut acc = Bson::Int32(1);
                for e in items {
                    match e.eval(doc)? {
                        None | Some(Bson::Null) | Some(Bson::Undefined) => return Ok(Some(Bson::Null)),
                        Some(x) if is_number(&x) => acc = mul_numbers(&acc, &x),
                        Some(x) => return Err(EngineError::bad(format!("$multiply only supports numeric types, not {}", type_name(&x)))),
                    }
                }
                Some(acc)
            }
            Expr::Subtract(a, b) => match (a.eval(doc)?, b.eval(doc)?) {
                (x, y) if nullish(&x) || nullish(&y) => Some(Bson::Null),
                (Some(Bson::DateTime(x)), Some(Bson::DateTime(y))) => Some(Bson::Int64(x.timestamp_millis() - y.timestamp_millis())),
                (Some(Bson::DateTime(x)), Some(y)) if is_number(&y) => {
                    Some(Bson::DateTime(bson::DateTime::from_millis(x.timestamp_millis() - as_f64(&y).unwrap_or(0.0).round() as i64)))
                }
                (Some(x), Some(y)) if is_number(&x) && is_number(&y) => Some(sub_numbers(&x, &y)),
                (Some(x), Some(y)) => return Err(EngineError::bad(format!("can't $subtract {} from {}", type_name(&y), type_name(&x)))),
                _ => Some(Bson::Null),
            },
            Expr::Divide(a, b) => match (a.eval(doc)?, b.eval(doc)?) {
                (x, y) if nullish(&x) || nullish(&y) => Some(Bson::Null),
                (Some(x), Some(y)) if is_number(&x) && is_number(&y) => {
                    let d = as_f64(&y).unwrap_or(f64::NAN);
                    if d == 0.0 {
                        return Err(EngineError::bad("can't $divide by zero"));
                    }
                    let q = as_f64(&x).unwrap_or(f64::NAN) / d;
                    if matches!(x, Bson::Decimal128(_)) || matches!(y, Bson::Decimal128(_)) {
                        Some(f64_to_decimal(q))
                    } else {
                        Some(Bson::Double(q))
                    }
                }
                (Some(x), Some(y)) => {
                    return Err(EngineError::bad(format!(
                        "$divide only supports numeric types, not {} and {}",
                        type_name(&x),
                        type_name(&y)
                    )))
                }
                _ => Some(Bson::Null),
            },
            Expr::Floor(e) => match e.eval(doc)? {
                None | Some(Bson::Null) | Some(Bson::Undefined) => Some(Bson::Null),
                Some(Bson::Double(f)) => Some(Bson::Double(f.floor())),
                Some(Bson::Decimal128(d)) => Some(f64_to_decimal(super::compare::decimal_to_f64(&d).floor())),
                Some(x) if is_number(&x) => Some(x),
                Some(x) => return Err(EngineError::bad(format!("$floor only supports numeric types, not {}", type_name(&x)))),
            },
            Expr::Round(e, place) => {
                let place = match place.eval(doc)? {
                    Some(p) if is_number(&p) => match super::compare::as_i64_exact(&p) {
                        Some(n) if (-20..100).contains(&n) => n as i32,
                        _ => {
                            return Err(EngineError::bad(format!(
                                "$round requires \"place\" to be an integer between -20 and 100, but got {}",
                                show(&p)
                            )))
                        }
                    },
                    other => {
                        return Err(EngineError::bad(format!(
                            "$round requires \"place\" to be an integer, found {}",
                            other.as_ref().map(type_name).unwrap_or("missing")
                        )))
                    }
                };
                match e.eval(doc)? {
                    None | Some(Bson::Null) | Some(Bson::Undefined) => Some(Bson::Null),
                    Some(Bson::Double(f)) => Some(Bson::Double(round_half_even(f, place))),
                    Some(Bson::Decimal128(d)) => Some(f64_to_decimal(round_half_even(super::compare::decimal_to_f64(&d), place))),
                    // Integers are already whole at place >= 0; a negative
                    // place rounds them to tens, hundreds, ..., halves to even.
                    Some(x) if is_number(&x) && place >= 0 => Some(x),
                    Some(x) if is_number(&x) => {
                        let r = round_half_even(as_f64(&x).unwrap_or(f64::NAN), place) as i64;
                        Some(match x {
                            Bson::Int32(_) => i32::try_from(r).map(Bson::Int32).unwrap_or(Bson::Int64(r)),
                            _ => Bson::Int64(r),
                        })
                    }
                    Some(x) => return Err(EngineError::bad(format!("$round only supports numeric types, not {}", type_name(&x)))),
                }
            }
            Expr::Extreme(max, items) => {
                // Null and missing are ignored; nothing left is null.
                let values = operands(items, doc)?;
                let want = if *max { Ordering::Greater } else { Ordering::Less };
                let mut best: Option<Bson> = None;
                for v in values.into_iter().filter(|v| !matches!(v, Bson::Null | Bson::Undefined)) {
                    if best.as_ref().is_none_or(|b| cmp_bson(&v, b) == want) {
                        best = Some(v);
                    }
                }
                Some(best.unwrap_or(Bson::Null))
            }
            Expr::Sum(items) => {
                let values = operands(items, doc)?;
                Some(values.iter().filter(|v| is_number(v)).fold(Bson::Int32(0), |acc, v| add_numbers(&acc, v)))
            }
            Expr::Switch(branches, default) => {
                for (case, then) in branches {
                    if truthy(&case.eval(doc)?) {
                        return then.eval(doc);
                    }
                }
                match default {
                    Some(d) => d.eval(doc)?,
                    None => {
                        return Err(EngineError::bad(
                            "$switch could not find a matching branch for an input, and no default was specified.",
                        ))
                    }
                }
            }
            Expr::DateToString { date, format, offset_minutes, on_null } => match date.eval(doc)? {
                None | Some(Bson::Null) | Some(Bson::Undefined) => match on_null {
                    Some(e) => e.eval(doc)?,
                    None => Some(Bson::Null),
                },
                Some(Bson::DateTime(d)) => {
                    Some(Bson::String(super::dates::format(d.timestamp_millis(), format.as_deref(), *offset_minutes)))
                }
                Some(Bson::ObjectId(o)) => {
                    Some(Bson::String(super::dates::format(o.timestamp().timestamp_millis(), format.as_deref(), *offset_minutes)))
                }
                Some(x) => return Err(EngineError::bad(format!("can't convert from BSON type {} to Date", type_name(&x)))),
            },
            Expr::Concat(items) => {
                let mut s = String::new();
                for e in items {
                    match e.eval(doc)? {
                        None | Some(Bson::Null) | Some(Bson::Undefined) => return Ok(Some(Bson::Null)),
                        Some(Bson::String(x)) => s.push_str(&x),
                        Some(x) => return Err(EngineError::bad(format!("$concat only supports strings, not {}", type_name(&x)))),
                    }
                }
                Some(Bson::String(s))
            }
        })
    }
}

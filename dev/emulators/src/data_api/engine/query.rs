//! Query filters, projections and sorts (MongoDB manual: query and
//! projection operators, `query-embedded-documents`, `query-arrays`,
//! `query-array-of-documents`, `bson-type-comparison-order`).

use std::cmp::Ordering;
use std::collections::BTreeMap;

use bson::{Bson, Document};

use super::compare::{cmp_bson, eq_bson, type_rank};
use super::{array_index, integer_arg, show, split_path, type_name, EngineError, Result};

/// A parsed query filter. Parse once with [`Filter::parse`], then test
/// documents with [`Filter::matches`].
#[derive(Clone, Debug)]
pub struct Filter {
    clauses: Vec<Clause>,
}

#[derive(Clone, Debug)]
enum Clause {
    And(Vec<Filter>),
    Or(Vec<Filter>),
    Nor(Vec<Filter>),
    Field { path: Vec<String>, preds: Vec<Pred> },
}

/// One condition on the values found at a path.
#[derive(Clone, Debug)]
pub(crate) enum Pred {
    Eq(Bson),
    Ne(Bson),
    Cmp(CmpOp, Bson),
    In(Vec<Bson>),
    Nin(Vec<Bson>),
    Exists(bool),
    Not(Vec<Pred>),
    All(Vec<AllItem>),
    ElemMatch(ElemMatch),
    Size(usize),
    /// Never matches (`$size` with a negative or fractional count matches nothing).
    Never,
    Type(Vec<TypeSel>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CmpOp {
    Gt,
    Gte,
    Lt,
    Lte,
}

impl CmpOp {
    fn holds(self, o: Ordering) -> bool {
        match self {
            CmpOp::Gt => o == Ordering::Greater,
            CmpOp::Gte => o != Ordering::Less,
            CmpOp::Lt => o == Ordering::Less,
            CmpOp::Lte => o != Ordering::Greater,
        }
    }
}

#[derive(Clone, Debug)]
pub(crate) enum AllItem {
    Value(Bson),
    Elem(ElemMatch),
}

#[derive(Clone, Debug)]
pub(crate) enum ElemMatch {
    /// `{$elemMatch: {$gte: 80, $lt: 85}}`: conditions on the element itself.
    Value(Vec<Pred>),
    /// `{$elemMatch: {product: "xyz", score: {$gte: 8}}}`: a query on document elements.
    Doc(Filter),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TypeSel {
    Number,
    Named(&'static str),
}

/// What a path yields in one document: a value, or nothing (missing).
#[derive(Clone, Copy, Debug)]
pub(crate) enum Leaf<'a> {
    Missing,
    Value(&'a Bson),
}

/// Every value `path` reaches in `doc`. Through arrays the rest of the path
/// is applied to each document element; a numeric component also selects an
/// element by index. Terminal arrays are returned whole (predicates look
/// into them).
pub(crate) fn leaves<'a>(doc: &'a Document, path: &[String]) -> Vec<Leaf<'a>> {
    let mut out = Vec::new();
    walk_doc(doc, path, &mut out);
    out
}

fn walk_doc<'a>(doc: &'a Document, path: &[String], out: &mut Vec<Leaf<'a>>) {
    walk(doc.get(&path[0]), &path[1..], out);
}

fn walk<'a>(v: Option<&'a Bson>, path: &[String], out: &mut Vec<Leaf<'a>>) {
    let Some(v) = v else {
        out.push(Leaf::Missing);
        return;
    };
    if path.is_empty() {
        out.push(Leaf::Value(v));
        return;
    }
    match v {
        Bson::Document(d) => walk_doc(d, path, out),
        Bson::Array(arr) => {
            let before = out.len();
            if let Some(i) = array_index(&path[0]) {
                if let Some(e) = arr.get(i) {
                    walk(Some(e), &path[1..], out);
                }
            }
            for e in arr {
                if let Bson::Document(d) = e {
                    walk_doc(d, path, out);
                }
            }
            if out.len() == before {
                out.push(Leaf::Missing);
            }
        }
        _ => out.push(Leaf::Missing),
    }
}

impl Filter {
    /// Parses a query filter. Unknown operators and malformed arguments are
    /// errors (`$regex`, `$expr`, `$where`, `$text` are not supported: App
    /// Services refused them to Data API users too).
    pub fn parse(doc: &Document) -> Result<Filter> {
        let mut clauses = Vec::new();
        for (k, v) in doc {
            match k.as_str() {
                "$and" | "$or" | "$nor" => {
                    let subs = match v {
                        Bson::Array(items) if !items.is_empty() => items
                            .iter()
                            .map(|it| match it {
                                Bson::Document(d) => Filter::parse(d),
                                _ => Err(EngineError::bad(format!("{k} argument's entries must be objects"))),
                            })
                            .collect::<Result<Vec<_>>>()?,
                        _ => return Err(EngineError::bad(format!("{k} argument must be a non-empty array"))),
                    };
                    clauses.push(match k.as_str() {
                        "$and" => Clause::And(subs),
                        "$or" => Clause::Or(subs),
                        _ => Clause::Nor(subs),
                    });
                }
                "$comment" => {}
                _ if k.starts_with('$') => {
                    return Err(EngineError::bad(format!("unknown top level operator: {k}")));
                }
                _ => clauses.push(Clause::Field { path: split_path(k)?, preds: parse_field_value(k, v)? }),
            }
        }
        Ok(Filter { clauses })
    }

    /// Parses a filter given as canonical or relaxed Extended JSON.
    pub fn from_ejson(v: serde_json::Value) -> Result<Filter> {
        match crate::data_api::ejson::decode(v) {
            Ok(Bson::Document(d)) => Filter::parse(&d),
            Ok(_) => Err(EngineError::bad("filter must be an object")),
            Err(e) => Err(EngineError::bad(e)),
        }
    }

    /// The empty filter: matches every document.
    pub fn all() -> Filter {
        Filter { clauses: Vec::new() }
    }

    pub fn matches(&self, doc: &Document) -> bool {
        self.clauses.iter().all(|c| match c {
            Clause::And(fs) => fs.iter().all(|f| f.matches(doc)),
            Clause::Or(fs) => fs.iter().any(|f| f.matches(doc)),
            Clause::Nor(fs) => !fs.iter().any(|f| f.matches(doc)),
            Clause::Field { path, preds } => {
                let ls = leaves(doc, path);
                preds.iter().all(|p| p.holds(&ls))
            }
        })
    }

    /// The equality clauses an upsert copies into the new document:
    /// `field: value`, `field: {$eq: value}`, and such clauses inside a
    /// top-level `$and` (recursively). Returns (dotted path, value) pairs.
    pub fn equality_clauses(&self) -> Vec<(Vec<String>, Bson)> {
        let mut out = Vec::new();
        self.collect_equalities(&mut out);
        out
    }

    fn collect_equalities(&self, out: &mut Vec<(Vec<String>, Bson)>) {
        for c in &self.clauses {
            match c {
                Clause::And(fs) => fs.iter().for_each(|f| f.collect_equalities(out)),
                Clause::Field { path, preds } => {
                    for p in preds {
                        if let Pred::Eq(v) = p {
                            out.push((path.clone(), v.clone()));
                        }
                    }
                }
                Clause::Or(_) | Clause::Nor(_) => {}
            }
        }
    }
}

/// Whether a document value is an operator expression (`{$gt: 1}`): its
/// first field starts with `$`.
fn is_operator_doc(d: &Document) -> bool {
    d.keys().next().is_some_and(|k| k.starts_with('$'))
}

fn parse_field_value(field: &str, v: &Bson) -> Result<Vec<Pred>> {
    match v {
        Bson::Document(d) if is_operator_doc(d) => parse_ops(field, d),
        Bson::RegularExpression(_) => Err(unsupported_regex()),
        _ => Ok(vec![Pred::Eq(v.clone())]),
    }
}

fn unsupported_regex() -> EngineError {
    EngineError::bad("regular expressions ($regex) are not supported (the Data API refused them to users too)")
}

/// Parses an operator document (`{$gt: 1, $lt: 5}`) into predicates.
pub(crate) fn parse_ops(field: &str, d: &Document) -> Result<Vec<Pred>> {
    let mut preds = Vec::new();
    for (op, arg) in d {
        let pred = match op.as_str() {
            "$eq" => Pred::Eq(arg.clone()),
            "$ne" => Pred::Ne(arg.clone()),
            "$gt" => Pred::Cmp(CmpOp::Gt, arg.clone()),
            "$gte" => Pred::Cmp(CmpOp::Gte, arg.clone()),
            "$lt" => Pred::Cmp(CmpOp::Lt, arg.clone()),
            "$lte" => Pred::Cmp(CmpOp::Lte, arg.clone()),
            "$in" | "$nin" => {
                let Bson::Array(items) = arg else {
                    return Err(EngineError::bad(format!("{op} needs an array")));
                };
                for it in items {
                    match it {
                        Bson::Document(x) if is_operator_doc(x) => {
                            return Err(EngineError::bad(format!("cannot nest $ under {op}")));
                        }
                        Bson::RegularExpression(_) => return Err(unsupported_regex()),
                        _ => {}
                    }
                }
                if op == "$in" {
                    Pred::In(items.clone())
                } else {
                    Pred::Nin(items.clone())
                }
            }
            "$exists" => Pred::Exists(truthy_arg(arg)),
            "$not" => match arg {
                Bson::Document(x) if x.is_empty() => return Err(EngineError::bad("$not cannot be empty")),
                Bson::Document(x) if is_operator_doc(x) => Pred::Not(parse_ops(field, x)?),
                Bson::RegularExpression(_) => return Err(unsupported_regex()),
                _ => return Err(EngineError::bad("$not needs a regex or a document")),
            },
            "$all" => {
                let Bson::Array(items) = arg else {
                    return Err(EngineError::bad("$all needs an array"));
                };
                let mut all = Vec::new();
                for it in items {
                    match it {
                        Bson::Document(x) if x.keys().next().map(String::as_str) == Some("$elemMatch") => {
                            if x.len() != 1 {
                                return Err(EngineError::bad("$all/$elemMatch has to be consistent"));
                            }
                            let Some(Bson::Document(em)) = x.get("$elemMatch") else {
                                return Err(EngineError::bad("$elemMatch needs an Object"));
                            };
                            all.push(AllItem::Elem(parse_elem_match(field, em)?));
                        }
                        Bson::Document(x) if is_operator_doc(x) => {
                            return Err(EngineError::bad("no $ expressions in $all"));
                        }
                        Bson::RegularExpression(_) => return Err(unsupported_regex()),
                        _ => all.push(AllItem::Value(it.clone())),
                    }
                }
                Pred::All(all)
            }
            "$elemMatch" => match arg {
                Bson::Document(x) => Pred::ElemMatch(parse_elem_match(field, x)?),
                _ => return Err(EngineError::bad("$elemMatch needs an Object")),
            },
            "$size" => match arg {
                Bson::Int32(_) | Bson::Int64(_) | Bson::Double(_) | Bson::Decimal128(_) => match integer_arg(arg) {
                    Some(n) if n < 0 => return Err(EngineError::bad("$size may not be negative")),
                    Some(n) => Pred::Size(n as usize),
                    None => Pred::Never,
                },
                _ => return Err(EngineError::bad("$size needs a number")),
            },
            "$type" => {
                let sels = match arg {
                    Bson::Array(items) => items.iter().map(type_selector).collect::<Result<Vec<_>>>()?,
                    other => vec![type_selector(other)?],
                };
                Pred::Type(sels)
            }
            "$regex" | "$options" => return Err(unsupported_regex()),
            other => return Err(EngineError::bad(format!("unknown operator: {other}"))),
        };
        preds.push(pred);
    }
    Ok(preds)
}

fn parse_elem_match(field: &str, d: &Document) -> Result<ElemMatch> {
    let value_form = d.keys().next().is_some_and(|k| k.starts_with('$') && !matches!(k.as_str(), "$and" | "$or" | "$nor"));
    if value_form {
        Ok(ElemMatch::Value(parse_ops(field, d)?))
    } else {
        Ok(ElemMatch::Doc(Filter::parse(d)?))
    }
}

/// `$exists` and similar flags: false, 0 and null are false, anything else true.
fn truthy_arg(v: &Bson) -> bool {
    match v {
        Bson::Boolean(b) => *b,
        Bson::Null | Bson::Undefined => false,
        _ => super::compare::as_f64(v).is_none_or(|f| f != 0.0),
    }
}

const TYPE_CODES: [(i64, &str); 21] = [
    (1, "double"),
    (2, "string"),
    (3, "object"),
    (4, "array"),
    (5, "binData"),
    (6, "undefined"),
    (7, "objectId"),
    (8, "bool"),
    (9, "date"),
    (10, "null"),
    (11, "regex"),
    (12, "dbPointer"),
    (13, "javascript"),
    (14, "symbol"),
    (15, "javascriptWithScope"),
    (16, "int"),
    (17, "timestamp"),
    (18, "long"),
    (19, "decimal"),
    (-1, "minKey"),
    (127, "maxKey"),
];

fn type_selector(v: &Bson) -> Result<TypeSel> {
    match v {
        Bson::String(s) if s == "number" => Ok(TypeSel::Number),
        Bson::String(s) => TYPE_CODES
            .iter()
            .find(|(_, n)| n == s)
            .map(|(_, n)| TypeSel::Named(n))
            .ok_or_else(|| EngineError::bad(format!("Unknown type name alias: {s}"))),
        _ => match integer_arg(v) {
            Some(code) => TYPE_CODES
                .iter()
                .find(|(c, _)| *c == code)
                .map(|(_, n)| TypeSel::Named(n))
                .ok_or_else(|| EngineError::bad(format!("Invalid numerical type code: {code}"))),
            None => Err(EngineError::bad("type must be represented as a number or a string")),
        },
    }
}

impl TypeSel {
    fn holds(self, v: &Bson) -> bool {
        match self {
            TypeSel::Number => super::compare::is_number(v),
            TypeSel::Named(n) => type_name(v) == n,
        }
    }
}

/// Query equality of one found value with `v`: the value itself equals `v`,
/// or it is an array with an element equal to `v`; a missing value equals null.
fn leaf_eq(l: &Leaf, v: &Bson) -> bool {
    match l {
        Leaf::Missing => matches!(v, Bson::Null),
        Leaf::Value(x) => eq_bson(x, v) || matches!(x, Bson::Array(items) if items.iter().any(|e| eq_bson(e, v))),
    }
}

/// The value and, for an array, its elements: what a comparison looks at.
fn candidates<'a>(x: &'a Bson) -> impl Iterator<Item = &'a Bson> {
    let elems: &'a [Bson] = match x {
        Bson::Array(items) => items,
        _ => &[],
    };
    std::iter::once(x).chain(elems.iter())
}

impl Pred {
    /// Whether the predicate holds for the values a path found in one document.
    pub(crate) fn holds(&self, ls: &[Leaf]) -> bool {
        match self {
            Pred::Eq(v) => ls.iter().any(|l| leaf_eq(l, v)),
            Pred::Ne(v) => !ls.iter().any(|l| leaf_eq(l, v)),
            Pred::Cmp(op, v) => ls.iter().any(|l| match l {
                Leaf::Missing => matches!(v, Bson::Null) && op.holds(Ordering::Equal),
                Leaf::Value(x) => candidates(x).any(|c| type_rank(c) == type_rank(v) && op.holds(cmp_bson(c, v))),
            }),
            Pred::In(items) => items.iter().any(|v| ls.iter().any(|l| leaf_eq(l, v))),
            Pred::Nin(items) => !items.iter().any(|v| ls.iter().any(|l| leaf_eq(l, v))),
            Pred::Exists(want) => ls.iter().any(|l| matches!(l, Leaf::Value(_))) == *want,
            Pred::Not(preds) => !preds.iter().all(|p| p.holds(ls)),
            Pred::All(items) => {
                !items.is_empty()
                    && items.iter().all(|it| match it {
                        AllItem::Value(v) => ls.iter().any(|l| leaf_eq(l, v)),
                        AllItem::Elem(em) => em.holds(ls),
                    })
            }
            Pred::ElemMatch(em) => em.holds(ls),
            Pred::Size(n) => ls.iter().any(|l| matches!(l, Leaf::Value(Bson::Array(a)) if a.len() == *n)),
            Pred::Never => false,
            Pred::Type(sels) => ls.iter().any(|l| match l {
                Leaf::Missing => false,
                Leaf::Value(x) => candidates(x).any(|c| sels.iter().any(|s| s.holds(c))),
            }),
        }
    }

    /// Whether the predicate holds for a single value (an array element).
    pub(crate) fn holds_for_value(&self, v: &Bson) -> bool {
        self.holds(&[Leaf::Value(v)])
    }
}

impl ElemMatch {
    fn holds(&self, ls: &[Leaf]) -> bool {
        ls.iter().any(|l| match l {
            Leaf::Value(Bson::Array(items)) => items.iter().any(|e| self.element_matches(e)),
            _ => false,
        })
    }

    fn element_matches(&self, e: &Bson) -> bool {
        match self {
            ElemMatch::Value(preds) => preds.iter().all(|p| p.holds_for_value(e)),
            ElemMatch::Doc(f) => matches!(e, Bson::Document(d) if f.matches(d)),
        }
    }
}

// ---------------------------------------------------------------------------
// Projection

/// A find projection: inclusion (`{a: 1, "b.c": 1}`) or exclusion
/// (`{a: 0}`), with `_id` included unless `_id: 0`.
#[derive(Clone, Debug)]
pub struct Projection {
    inclusion: bool,
    include_id: bool,
    tree: ProjTree,
}

type ProjTree = BTreeMap<String, ProjNode>;

#[derive(Clone, Debug)]
enum ProjNode {
    Leaf,
    Sub(ProjTree),
}

impl Projection {
    /// Parses a projection; `None` for the empty projection (every field).
    pub fn parse(spec: &Document) -> Result<Option<Projection>> {
        if spec.is_empty() {
            return Ok(None);
        }
        let mut include_id = true;
        let mut mode: Option<(bool, String)> = None;
        let mut tree = ProjTree::new();
        for (k, v) in spec {
            if k.starts_with('$') || k.contains(".$") || k.ends_with('$') {
                return Err(EngineError::bad(format!("positional and $-prefixed projections are not supported: '{k}'")));
            }
            let include = match v {
                Bson::Boolean(b) => *b,
                _ if super::compare::is_number(v) => super::compare::as_f64(v).is_some_and(|f| f != 0.0),
                Bson::Document(_) => {
                    return Err(EngineError::bad(format!("projection operators ($slice, $elemMatch, $meta) are not supported: '{k}'")))
                }
                other => {
                    return Err(EngineError::bad(format!("projection values must be 0/1 or true/false, found {} for '{k}'", show(other))))
                }
            };
            if k == "_id" {
                include_id = include;
                continue;
            }
            match &mode {
                Some((m, first)) if *m != include => {
                    return Err(EngineError::bad(if *m {
                        format!("Cannot do exclusion on field {k} in inclusion projection")
                    } else {
                        format!("Cannot do inclusion on field {k} in exclusion projection (after {first})")
                    }));
                }
                Some(_) => {}
                None => mode = Some((include, k.clone())),
            }
            insert_path(&mut tree, &split_path(k)?, k)?;
        }
        let inclusion = match mode {
            Some((m, _)) => m,
            None => include_id,
        };
        Ok(Some(Projection { inclusion, include_id, tree }))
    }

    /// An exclusion projection of the given paths (the `$unset` stage).
    pub(crate) fn exclusion(paths: &[String]) -> Result<Projection> {
        let mut tree = ProjTree::new();
        let mut include_id = true;
        for p in paths {
            if p == "_id" {
                include_id = false;
                continue;
            }
            insert_path(&mut tree, &split_path(p)?, p)?;
        }
        Ok(Projection { inclusion: false, include_id, tree })
    }

    pub fn apply(&self, doc: &Document) -> Document {
        let mut out = Document::new();
        for (k, v) in doc {
            if k == "_id" {
                if self.include_id {
                    out.insert(k.clone(), v.clone());
                }
                continue;
            }
            if self.inclusion {
                match self.tree.get(k) {
                    Some(ProjNode::Leaf) => {
                        out.insert(k.clone(), v.clone());
                    }
                    Some(ProjNode::Sub(t)) => {
                        if let Some(x) = include_value(v, t) {
                            out.insert(k.clone(), x);
                        }
                    }
                    None => {}
                }
            } else {
                match self.tree.get(k) {
                    Some(ProjNode::Leaf) => {}
                    Some(ProjNode::Sub(t)) => {
                        out.insert(k.clone(), exclude_value(v, t));
                    }
                    None => {
                        out.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        out
    }
}

fn insert_path(tree: &mut ProjTree, path: &[String], full: &str) -> Result<()> {
    let collision = || EngineError::bad(format!("Path collision at {full}"));
    if path.len() == 1 {
        if tree.contains_key(&path[0]) {
            return Err(collision());
        }
        tree.insert(path[0].clone(), ProjNode::Leaf);
        return Ok(());
    }
    match tree.entry(path[0].clone()).or_insert_with(|| ProjNode::Sub(ProjTree::new())) {
        ProjNode::Leaf => Err(collision()),
        ProjNode::Sub(t) => insert_path(t, &path[1..], full),
    }
}

fn include_doc(d: &Document, t: &ProjTree) -> Document {
    let mut out = Document::new();
    for (k, v) in d {
        match t.get(k) {
            Some(ProjNode::Leaf) => {
                out.insert(k.clone(), v.clone());
            }
            Some(ProjNode::Sub(sub)) => {
                if let Some(x) = include_value(v, sub) {
                    out.insert(k.clone(), x);
                }
            }
            None => {}
        }
    }
    out
}

fn include_value(v: &Bson, t: &ProjTree) -> Option<Bson> {
    match v {
        Bson::Document(d) => Some(Bson::Document(include_doc(d, t))),
        Bson::Array(items) => Some(Bson::Array(items.iter().filter_map(|e| include_value(e, t)).collect())),
        _ => None,
    }
}

fn exclude_doc(d: &Document, t: &ProjTree) -> Document {
    let mut out = Document::new();
    for (k, v) in d {
        match t.get(k) {
            Some(ProjNode::Leaf) => {}
            Some(ProjNode::Sub(sub)) => {
                out.insert(k.clone(), exclude_value(v, sub));
            }
            None => {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    out
}

fn exclude_value(v: &Bson, t: &ProjTree) -> Bson {
    match v {
        Bson::Document(d) => Bson::Document(exclude_doc(d, t)),
        Bson::Array(items) => Bson::Array(items.iter().map(|e| exclude_value(e, t)).collect()),
        other => other.clone(),
    }
}

// ---------------------------------------------------------------------------
// Sort

/// A sort specification: `(path, ascending)` keys in order.
#[derive(Clone, Debug)]
pub struct SortSpec {
    keys: Vec<(Vec<String>, bool)>,
}

impl SortSpec {
    /// Parses `{field: 1 | -1, …}`. An empty spec sorts nothing.
    pub fn parse(spec: &Document) -> Result<SortSpec> {
        let mut keys = Vec::new();
        for (k, v) in spec {
            let dir = match integer_arg(v) {
                Some(1) => true,
                Some(-1) => false,
                _ if matches!(v, Bson::Document(_)) => return Err(EngineError::bad(format!("$meta sort keys are not supported: '{k}'"))),
                _ => {
                    return Err(EngineError::bad(format!(
                        "$sort key ordering must be 1 (for ascending) or -1 (for descending), found {} for '{k}'",
                        show(v)
                    )))
                }
            };
            keys.push((split_path(k)?, dir));
        }
        Ok(SortSpec { keys })
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Sorts stably (ties keep their current order).
    pub fn sort(&self, docs: &mut Vec<Document>) {
        self.sort_items(docs, |d| Some(d));
    }

    /// Sorts any items by the document `doc_of` gives for each (items
    /// without a document sort as an empty document).
    pub(crate) fn sort_items<T>(&self, items: &mut Vec<T>, doc_of: impl Fn(&T) -> Option<&Document>) {
        if self.keys.is_empty() {
            return;
        }
        let empty = Document::new();
        let mut keyed: Vec<(Vec<Bson>, T)> = items
            .drain(..)
            .map(|it| {
                let d = doc_of(&it).unwrap_or(&empty);
                let keys = self.keys.iter().map(|(p, asc)| sort_key(d, p, *asc)).collect();
                (keys, it)
            })
            .collect();
        keyed.sort_by(|(a, _), (b, _)| {
            for (i, (_, asc)) in self.keys.iter().enumerate() {
                let o = cmp_bson(&a[i], &b[i]);
                let o = if *asc { o } else { o.reverse() };
                if o != Ordering::Equal {
                    return o;
                }
            }
            Ordering::Equal
        });
        items.extend(keyed.into_iter().map(|(_, it)| it));
    }
}

/// The value a document sorts by on `path`: a missing field counts as null,
/// an array by its smallest (ascending) or largest (descending) element, an
/// empty array below null (as `undefined`).
fn sort_key(doc: &Document, path: &[String], asc: bool) -> Bson {
    let mut cands: Vec<Bson> = Vec::new();
    for l in leaves(doc, path) {
        match l {
            Leaf::Missing => cands.push(Bson::Null),
            Leaf::Value(Bson::Array(items)) if items.is_empty() => cands.push(Bson::Undefined),
            Leaf::Value(Bson::Array(items)) => cands.extend(items.iter().cloned()),
            Leaf::Value(v) => cands.push(v.clone()),
        }
    }
    let picked = if asc { cands.into_iter().min_by(cmp_bson) } else { cands.into_iter().max_by(cmp_bson) };
    picked.unwrap_or(Bson::Null)
}

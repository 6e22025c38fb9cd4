//! What an API key may do: which actions on which collections.
//!
//! A request uses the right `(its collection, its action)`, and an
//! `aggregate` also the right `(from, aggregate)` for every `$lookup`,
//! `$graphLookup` and `$unionWith` anywhere in its pipeline (sub-pipelines of
//! `$facet`, `$lookup` and `$unionWith` included): a lookup reads its `from`
//! collection, and reading through a pipeline is the `aggregate` right.
//! Rights name collections, in whatever database the request names.
//!
//! Stages that read beyond collections (`$currentOp`, `$documents`, …) are
//! refused for every key before any policy is asked
//! ([`crate::request::DENIED_STAGES`]), so a key's rights are all it reads.

use std::collections::{BTreeMap, BTreeSet};

use bson::Bson;
use serde_json::Value;

use crate::request::{collection_name_problem, Action, ActionRequest, Op};
use crate::ApiError;

/// Longest collection name a policy may hold: MongoDB's namespace limit.
pub const MAX_COLLECTION_NAME_BYTES: usize = 255;

/// Which actions on which collections a key may run.
#[derive(Clone, PartialEq, Eq)]
pub struct Policy {
    /// Every action on every collection: a bare key.
    all: bool,
    rights: BTreeMap<String, BTreeSet<Action>>,
}

impl Policy {
    /// Every action on every collection: what a key without a policy may do.
    pub fn all() -> Policy {
        Policy { all: true, rights: BTreeMap::new() }
    }

    /// Exactly these rights.
    pub fn from_rights(rights: impl IntoIterator<Item = (String, Action)>) -> Policy {
        let mut map: BTreeMap<String, BTreeSet<Action>> = BTreeMap::new();
        for (coll, action) in rights {
            map.entry(coll).or_default().insert(action);
        }
        Policy { all: false, rights: map }
    }

    /// `{"<collection>": ["find", "findOne", …], …}`: action names as the
    /// routes spell them. The error names the unknown action or the bad
    /// collection name.
    pub fn parse(value: &Value) -> Result<Policy, String> {
        let Value::Object(colls) = value else {
            return Err(format!("a policy is an object {{\"<collection>\": [\"<action>\", …]}}, found {}", json_type(value)));
        };
        let mut rights = Vec::new();
        for (coll, actions) in colls {
            if let Some(why) = collection_name_problem(coll) {
                return Err(format!("invalid collection name '{}': {why}", coll.escape_debug()));
            }
            if coll.len() > MAX_COLLECTION_NAME_BYTES {
                return Err(format!("invalid collection name '{coll}': longer than {MAX_COLLECTION_NAME_BYTES} bytes"));
            }
            let Value::Array(actions) = actions else {
                return Err(format!("collection '{coll}': the actions are an array of action names, found {}", json_type(actions)));
            };
            for action in actions {
                let name = action.as_str().ok_or_else(|| format!("collection '{coll}': an action name is a string, found {action}"))?;
                let action = Action::parse(name).ok_or_else(|| {
                    let known: Vec<&str> = Action::ALL.iter().map(|a| a.name()).collect();
                    format!("collection '{coll}': unknown action '{}' (the actions are {})", name.escape_debug(), known.join(", "))
                })?;
                rights.push((coll.clone(), action));
            }
        }
        Ok(Policy::from_rights(rights))
    }

    /// Whether this policy holds `action` on `collection`.
    pub fn allows(&self, collection: &str, action: Action) -> bool {
        self.all || self.rights.get(collection).is_some_and(|actions| actions.contains(&action))
    }

    /// Every right [`rights`] of `req` must be held; the first one that is
    /// not is a `403` ([`ApiError::forbidden`]), and the request goes no further.
    pub fn check(&self, req: &ActionRequest) -> Result<(), ApiError> {
        if self.all {
            return Ok(());
        }
        let db = &req.ns.database;
        for (i, (coll, action)) in rights(req).into_iter().enumerate() {
            if self.allows(&coll, action) {
                continue;
            }
            // The hosted service's message for a namespace no rule covers,
            // then what was missing.
            return Err(ApiError::forbidden(if i == 0 {
                format!("no rule exists for namespace '{db}.{coll}' that allows {} for this API key", action.name())
            } else {
                format!(
                    "no rule exists for namespace '{db}.{coll}' that allows aggregate for this API key: the pipeline reads it ($lookup, $graphLookup or $unionWith)"
                )
            }));
        }
        Ok(())
    }
}

impl std::fmt::Debug for Policy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.all {
            return f.write_str("Policy(all)");
        }
        let mut map = f.debug_map();
        for (coll, actions) in &self.rights {
            map.entry(coll, &actions.iter().map(|a| a.name()).collect::<Vec<_>>());
        }
        map.finish()
    }
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The rights `req` uses, each once, its own first: `(collection, action)`,
/// then `(from, aggregate)` for every `$lookup`, `$graphLookup` and
/// `$unionWith` anywhere in an aggregate pipeline. A `$lookup` with a
/// `pipeline` and no `from` reads no collection. A `from` that is not a
/// string (refused earlier, by [`ActionRequest::parse`]) is a right no
/// parsed policy holds.
pub fn rights(req: &ActionRequest) -> Vec<(String, Action)> {
    let mut out = vec![(req.ns.collection.clone(), req.action())];
    if let Op::Aggregate { pipeline } = &req.op {
        for stage in pipeline {
            reads(stage, &mut out);
        }
    }
    let mut seen = BTreeSet::new();
    out.retain(|r| seen.insert(r.clone()));
    out
}

/// Wherever the key appears, so a sub-pipeline (`$facet`, `$lookup`,
/// `$unionWith`, or any stage yet to come) cannot hide a read.
fn reads(d: &bson::Document, out: &mut Vec<(String, Action)>) {
    for (k, v) in d {
        let target = match (k.as_str(), v) {
            ("$lookup" | "$graphLookup", Bson::Document(spec)) => spec.get("from"),
            ("$unionWith", Bson::Document(spec)) => spec.get("coll"),
            ("$unionWith", other) => Some(other),
            _ => None,
        };
        match target {
            Some(Bson::String(coll)) => out.push((coll.clone(), Action::Aggregate)),
            Some(other) => out.push((other.to_string(), Action::Aggregate)),
            None => {}
        }
        reads_value(v, out);
    }
}

fn reads_value(b: &Bson, out: &mut Vec<(String, Action)>) {
    match b {
        Bson::Document(d) => reads(d, out),
        Bson::Array(items) => items.iter().for_each(|it| reads_value(it, out)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::{doc, Document};
    use serde_json::json;

    fn request(action: Action, coll: &str, extra: Document) -> ActionRequest {
        let mut body = doc! {"dataSource": "x", "database": "db", "collection": coll};
        body.extend(extra);
        ActionRequest::parse(action, &body).unwrap()
    }

    fn aggregate(pipeline: bson::Bson) -> ActionRequest {
        request(Action::Aggregate, "users", doc! {"pipeline": pipeline})
    }

    fn rights_of(req: &ActionRequest) -> Vec<(String, &'static str)> {
        rights(req).into_iter().map(|(c, a)| (c, a.name())).collect()
    }

    fn r(list: &[(&str, &'static str)]) -> Vec<(String, &'static str)> {
        list.iter().map(|(c, a)| (c.to_string(), *a)).collect()
    }

    #[test]
    fn a_request_uses_its_own_right() {
        assert_eq!(rights_of(&request(Action::InsertOne, "users", doc! {"document": {}})), r(&[("users", "insertOne")]));
        assert_eq!(rights_of(&request(Action::Find, "tenants", doc! {"filter": {"$lookup": "x"}})), r(&[("tenants", "find")]));
        assert_eq!(rights_of(&aggregate(bson::bson!([{"$match": {}}]))), r(&[("users", "aggregate")]));
    }

    #[test]
    fn lookups_anywhere_in_a_pipeline_read_their_collection() {
        let req = aggregate(bson::bson!([
            {"$match": {"a": 1}},
            {"$lookup": {"from": "tenants", "localField": "t", "foreignField": "_id", "as": "t",
                "pipeline": [{"$lookup": {"from": "domains", "as": "d", "pipeline": [{"$unionWith": "mailboxes"}]}}]}},
            {"$facet": {
                "a": [{"$graphLookup": {"from": "partners", "startWith": "$p", "connectFromField": "p", "connectToField": "_id", "as": "g"}}],
                "b": [{"$unionWith": {"coll": "audit", "pipeline": [{"$lookup": {"from": "files", "localField": "f", "foreignField": "_id", "as": "f"}}]}}],
            }},
            {"$lookup": {"let": {"x": "$x"}, "pipeline": [{"$match": {}}], "as": "none"}},
            {"$lookup": {"from": "tenants", "localField": "u", "foreignField": "_id", "as": "again"}},
            {"$lookup": {"from": "users", "localField": "u", "foreignField": "_id", "as": "self"}},
        ]));
        assert_eq!(
            rights_of(&req),
            r(&[
                ("users", "aggregate"),
                ("tenants", "aggregate"),
                ("domains", "aggregate"),
                ("mailboxes", "aggregate"),
                ("partners", "aggregate"),
                ("audit", "aggregate"),
                ("files", "aggregate"),
            ])
        );
    }

    #[test]
    fn a_from_that_is_not_a_name_is_a_right_no_policy_holds() {
        // Built by hand: ActionRequest::parse refuses it (400).
        let mut req = aggregate(bson::bson!([{"$match": {}}]));
        req.op = Op::Aggregate { pipeline: vec![doc! {"$lookup": {"from": {"db": "admin", "coll": "x"}, "as": "y"}}] };
        let users = Policy::from_rights([("users".to_owned(), Action::Aggregate), ("x".to_owned(), Action::Aggregate)]);
        assert_eq!(users.check(&req).unwrap_err().status, 403);
        assert!(Policy::all().check(&req).is_ok());
    }

    #[test]
    fn check_allows_exactly_the_rights_held() {
        let p = Policy::parse(&json!({"users": ["find", "aggregate"], "tenants": ["findOne"]})).unwrap();
        assert!(p.check(&request(Action::Find, "users", doc! {})).is_ok());
        assert!(p.check(&request(Action::FindOne, "tenants", doc! {})).is_ok());
        assert!(p.check(&aggregate(bson::bson!([{"$match": {}}]))).is_ok());
        assert!(p
            .check(&aggregate(bson::bson!([{"$lookup": {"from": "users", "localField": "a", "foreignField": "b", "as": "c"}}])))
            .is_ok());

        let e = p.check(&request(Action::InsertOne, "users", doc! {"document": {}})).unwrap_err();
        assert_eq!((e.status, e.code.as_str()), (403, "NoMatchingRuleFound"));
        assert_eq!(e.message, "no rule exists for namespace 'db.users' that allows insertOne for this API key");
        let e = p.check(&request(Action::Find, "tenants", doc! {})).unwrap_err();
        assert!(e.message.starts_with("no rule exists for namespace 'db.tenants' that allows find"), "{e}");
        assert_eq!(p.check(&request(Action::FindOne, "audit", doc! {})).unwrap_err().status, 403);
        for pipeline in [
            bson::bson!([{"$lookup": {"from": "tenants", "localField": "a", "foreignField": "b", "as": "c"}}]),
            bson::bson!([{"$facet": {"x": [{"$lookup": {"from": "secrets", "localField": "a", "foreignField": "b", "as": "c"}}]}}]),
            bson::bson!([{"$unionWith": "secrets"}]),
            bson::bson!([{"$unionWith": {"coll": "users", "pipeline": [{"$graphLookup": {"from": "secrets", "startWith": "$a",
                "connectFromField": "a", "connectToField": "b", "as": "c"}}]}}]),
        ] {
            let e = p.check(&aggregate(pipeline.clone())).unwrap_err();
            assert_eq!((e.status, e.code.as_str()), (403, "NoMatchingRuleFound"), "{pipeline}");
            assert!(e.message.contains("the pipeline reads it"), "{pipeline}: {e}");
        }
        // A lookup is a read through a pipeline: `find` on its collection is not enough.
        let e = p.check(&aggregate(bson::bson!([{"$unionWith": "tenants"}]))).unwrap_err();
        assert!(e.message.starts_with("no rule exists for namespace 'db.tenants' that allows aggregate"), "{e}");

        let nothing = Policy::from_rights([]);
        assert_eq!(nothing.check(&request(Action::Find, "users", doc! {})).unwrap_err().status, 403);
        for action in Action::ALL {
            assert!(Policy::all().allows("anything", action));
        }
    }

    #[test]
    fn parse_builds_the_same_policy_as_from_rights() {
        let p = Policy::parse(&json!({"users": ["find", "findOne", "find"], "tenants": [], "audit": ["insertOne"]})).unwrap();
        let want = Policy::from_rights([
            ("users".to_owned(), Action::Find),
            ("users".to_owned(), Action::FindOne),
            ("audit".to_owned(), Action::InsertOne),
        ]);
        assert!(p.allows("users", Action::FindOne) && !p.allows("tenants", Action::Find) && !p.allows("users", Action::Aggregate));
        assert_eq!(p, want, "an empty list grants nothing");
        assert_eq!(format!("{p:?}"), r#"{"audit": ["insertOne"], "users": ["findOne", "find"]}"#);
        assert_eq!(format!("{:?}", Policy::all()), "Policy(all)");
        assert_ne!(Policy::all(), want);
    }

    #[test]
    fn parse_names_what_is_wrong() {
        let long = "c".repeat(256);
        for (policy, names) in [
            (json!({"users": ["find", "count"]}), "unknown action 'count'"),
            (json!({"users": ["Find"]}), "unknown action 'Find'"),
            (json!({"users": ["find"], "tenants": ["*"]}), "collection 'tenants': unknown action '*'"),
            (json!({"": ["find"]}), "invalid collection name ''"),
            (json!({"a$b": ["find"]}), "invalid collection name 'a$b'"),
            (json!({"a\u{0}b": ["find"]}), "invalid collection name 'a\\0b'"),
            (json!({"system.users": ["find"]}), "invalid collection name 'system.users'"),
            (json!({long.clone(): ["find"]}), "longer than 255 bytes"),
            (json!({"users": "find"}), "collection 'users': the actions are an array"),
            (json!({"users": [1]}), "collection 'users': an action name is a string"),
            (json!(["users"]), "a policy is an object"),
        ] {
            let e = Policy::parse(&policy).unwrap_err();
            assert!(e.contains(names), "{policy}: {e}");
        }
        assert!(Policy::parse(&json!({"c".repeat(255): ["find"]})).is_ok(), "255 bytes is the limit");
    }
}

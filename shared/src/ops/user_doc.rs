//! The user document: how operations stamp, read back and put back what
//! they wrote, and what it says of the person's accounts.

use serde_json::{json, Map, Value};

use crate::authentik::Authentik;
use crate::ctx::Ctx;
use crate::data_api::{coll, decode, DataApi, Find};
use crate::ejson::{DateTime, ObjectId};
use crate::models::{Stored, User};
use crate::ports::Http;
use crate::problem::{Error, UpstreamError};
use crate::types::Role;

use super::tenant::Member;
use super::undo;

/// The timestamps of a `User` upsert: `updatedAt` always, `createdAt` on insert.
pub fn stamp<H: Http>(ctx: &Ctx<H>, mut update: Value) -> Value {
    update["$set"]["updatedAt"] = ctx.now.ejson();
    update["$setOnInsert"]["createdAt"] = ctx.now.ejson();
    update
}

/// Puts the user document of `uid` back as read, once: only while it still
/// holds this request's write (its `updatedAt`), so a later writer's change
/// is never undone. `None`: this request inserted it, for an identity that
/// goes too, so it is deleted.
pub async fn restore_user_doc<H: Http>(ctx: &Ctx<H>, uid: &str, before: Option<&Value>) -> Result<(), UpstreamError> {
    // Without the Data API's configuration nothing was written.
    let Ok(db) = ctx.db() else { return Ok(()) };
    match before {
        Some(doc) => {
            let ours = json!({ User::SUBJECT: uid, "updatedAt": ctx.now.ejson() });
            db.replace_one(coll::USERS, ours, doc.clone(), false).await.map(|_| ())
        }
        None => db.delete_one(coll::USERS, User::by_subject(uid)).await.map(|_| ()),
    }
}

/// [`restore_user_doc`], tried again while its failure may be passing.
pub async fn undo_user_doc<H: Http>(ctx: &Ctx<H>, uid: &str, before: Option<Value>) {
    let what = format!("undo: restoring the user document of {uid}");
    let _ = undo::retried(&what, || restore_user_doc(ctx, uid, before.as_ref())).await;
}

/// The undo of this request's update of the member's document: the `keys`
/// it set go back to what was read — only while the document still holds
/// this request's write, and never by inserting it. So a document a
/// concurrent removal deleted stays deleted (the soak's seed 20261207: a
/// timed-out update put back a member whose removal had been answered
/// `204`). The write is recognised by `mark`, a field and a value only
/// this request wrote (a new mailbox's id, a new address), whoever wrote
/// after it; without one, by this request's `updatedAt`, so a later
/// writer's change stands. `updatedAt` goes back with the keys. (Seed 5170577: keyed by
/// `updatedAt` alone, a mailbox-create undone after a concurrent update
/// deleted its mailbox but left the document naming it.)
pub async fn put_back_ours<H: Http>(
    ctx: &Ctx<H>,
    db: &DataApi<'_, H>,
    member: &Member,
    keys: &[&str],
    mark: Option<(&str, Value)>,
) -> Result<(), UpstreamError> {
    let mut filter = json!({ "_id": member.user.id });
    match mark {
        Some((field, value)) => filter[field] = value,
        None => filter["updatedAt"] = ctx.now.ejson(),
    }
    let update = put_back(&member.doc, keys.iter().copied().chain(["updatedAt"]));
    db.update_one(coll::USERS, filter, update, false).await.map(|_| ())
}

/// The member's identity pk.
pub fn identity(user: &User) -> Option<i64> {
    user.authentik_user_pk.map(|pk| pk.0)
}

/// The member's identity pk, found by e-mail when the document does not
/// name it (written before the pk was kept, or by hand), as partner-staff
/// removal finds it. `None`: there is no identity to change.
pub async fn identity_or_by_email<H: Http>(ak: &Authentik<'_, H>, user: &User) -> Result<Option<i64>, UpstreamError> {
    match identity(user) {
        Some(pk) => Ok(Some(pk)),
        None => Ok(ak.find_user_by_email(&user.email).await?.map(|u| u.pk)),
    }
}

/// The update that puts `keys` (dotted paths) back as `doc` has them:
/// `$set` to the value read, `$unset` where there was none. It undoes this
/// request's own writes of those keys and leaves the rest of the document
/// alone, unlike replacing it whole, which would also undo what a
/// concurrent request wrote meanwhile.
pub fn put_back<'k>(doc: &Value, keys: impl IntoIterator<Item = &'k str>) -> Value {
    let (mut set, mut unset) = (Map::new(), Map::new());
    for key in keys {
        match key.split('.').try_fold(doc, |at, part| at.get(part)) {
            Some(v) => set.insert(key.to_owned(), v.clone()),
            None => unset.insert(key.to_owned(), json!("")),
        };
    }
    // An empty operator is an error to MongoDB.
    let mut update = Map::new();
    for (op, fields) in [("$set", set), ("$unset", unset)] {
        if !fields.is_empty() {
            update.insert(op.to_owned(), Value::Object(fields));
        }
    }
    Value::Object(update)
}

/// The tenant's users other than `except`, with what their roles need.
pub async fn other_members<H: Http>(
    db: &DataApi<'_, H>,
    tenant: &ObjectId,
    except: &ObjectId,
    full: bool,
) -> Result<Vec<(User, Value)>, Error> {
    let mut q = Find::filter(json!({ "tenantIds": tenant, "_id": { "$ne": except } })).limit(50_000);
    if !full {
        q = q.project(json!({ User::SUBJECT: 1, "role": 1, format!("tenantRoles.{tenant}"): 1 }));
    }
    let docs = db.find(coll::USERS, q).await?;
    Ok(docs.into_iter().map(|d| Ok((decode::<User>(coll::USERS, &d)?, d))).collect::<Result<_, crate::problem::UpstreamError>>()?)
}

/// The stored document as it is after `$set` (dotted keys reach into
/// objects) and the timestamp: what the route answers without reading the
/// document again.
pub fn with_set(doc: &Value, set: &[(String, Value)], now: &DateTime) -> Value {
    let mut doc = doc.clone();
    let stamp = ("updatedAt".to_owned(), now.ejson());
    for (k, v) in set.iter().chain(std::iter::once(&stamp)) {
        let mut at = &mut doc;
        let mut parts = k.split('.').peekable();
        while let Some(p) = parts.next() {
            if !at.is_object() {
                *at = json!({});
            }
            let obj = at.as_object_mut().expect("made an object above");
            if parts.peek().is_none() {
                obj.insert(p.to_owned(), v.clone());
                break;
            }
            at = obj.entry(p.to_owned()).or_insert_with(|| json!({}));
        }
    }
    doc
}

/// Whether the member has a mailbox (anywhere): the seed tests either
/// handle for truthiness, so an empty string is none.
pub fn has_mailbox(user: &User) -> bool {
    let set = |v: &Option<String>| v.as_deref().is_some_and(|s| !s.is_empty());
    set(&user.stalwart_account_id) || set(&user.mailbox_address)
}

/// A filter fragment matching `user` only while their role in `tenant` is
/// stored as it was read: the same entry, or still none and the same
/// legacy `role`. A write with it is a compare-and-set on the role.
pub fn role_as_read(user: &User, tenant: &ObjectId) -> Value {
    let key = format!("tenantRoles.{tenant}");
    match role_entry(user, tenant) {
        Some(r) => json!({ key: r }),
        None => json!({ key: { "$exists": false }, "role": user.role }),
    }
}

/// What a user's role entry in `tenant` was, to put it back exactly: the
/// value, or its absence (the legacy `role` applied).
pub fn role_entry(user: &User, tenant: &ObjectId) -> Option<Stored<Role>> {
    user.tenant_roles.get(&tenant.to_hex()).cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ACME: &str = "65b000000000000000000001";

    #[test]
    fn put_back_restores_the_keys_read_and_nothing_else() {
        let doc = json!({"name": "Mia", "tenantRoles": {ACME: "admin"}, "updatedAt": {"$date": {"$numberLong": "5"}}});
        let keys = ["name", "phone", &format!("tenantRoles.{ACME}") as &str, "updatedAt"];
        assert_eq!(
            put_back(&doc, keys),
            json!({"$set": {"name": "Mia", format!("tenantRoles.{ACME}"): "admin",
                "updatedAt": {"$date": {"$numberLong": "5"}}}, "$unset": {"phone": ""}})
        );
        // No empty operator: MongoDB refuses `{"$unset": {}}`.
        assert_eq!(put_back(&doc, ["name"]), json!({"$set": {"name": "Mia"}}));
        assert_eq!(put_back(&doc, ["tenantRoles.x.y"]), json!({"$unset": {"tenantRoles.x.y": ""}}));
    }

    #[test]
    fn a_mailbox_is_either_handle_when_not_empty() {
        let user = |extra: Value| -> User {
            let mut doc = json!({"_id": {"$oid": "65a000000000000000000042"}, "authentikSubjectId": "s"});
            doc.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
            serde_json::from_value(doc).unwrap()
        };
        assert!(has_mailbox(&user(json!({"stalwartAccountId": "m1"}))));
        assert!(has_mailbox(&user(json!({"mailboxAddress": "a@acme.test"}))));
        assert!(!has_mailbox(&user(json!({}))));
        assert!(!has_mailbox(&user(json!({"stalwartAccountId": "", "mailboxAddress": ""}))));
        assert!(!has_mailbox(&user(json!({"stalwartAccountId": null}))));
    }

    #[test]
    fn the_answer_is_the_document_after_the_set() {
        let doc = json!({"_id": {"$oid": "65a000000000000000000008"}, "name": "Mia", "tenantRoles": {"x": "admin"}, "other": 1});
        let set = vec![("name".to_owned(), json!("Mia M")), ("tenantRoles.65b000000000000000000001".to_owned(), json!("member"))];
        let out = with_set(&doc, &set, &DateTime(0));
        assert_eq!(out["name"], "Mia M");
        assert_eq!(out["tenantRoles"], json!({"x": "admin", "65b000000000000000000001": "member"}));
        assert_eq!(out["other"], 1);
        assert_eq!(out["updatedAt"], DateTime(0).ejson());
    }
}

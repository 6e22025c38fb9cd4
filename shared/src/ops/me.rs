//! Row 1, `GET /users/me`: the caller's own `User`, created or refreshed
//! from the token (the seed's `upsertFromAuthentik` + `meWithPartner`).
//!
//! It runs on every page load, so it takes the fewest sequential round
//! trips the data allows: the upsert and the read of the user with its
//! partner go out together, and the answer is the read with this request's
//! writes applied (see [`compose`]). One trip when the token names no
//! tenant groups; two when it does (the slugs become tenant ids first).
//! The token check costs no call when the JWKS is inline (`oidc_jwks`) or
//! kept from `oidc_jwks_url` (`auth::jwks`); only a fetch of the set (an
//! empty or expired cache, a rotated key) adds one trip before the rest.

use serde_json::{json, Map, Value};

use crate::caller::TokenIdentity;
use crate::ctx::Ctx;
use crate::data_api::{coll, object_id, DataApi, Find, Stage, UpdateResult};
use crate::ejson::{to_api_json, DateTime, ObjectId};
use crate::models::User;
use crate::ports::Http;
use crate::problem::Error;
use crate::request::{ApiRequest, ApiResponse, Route};
use crate::routes;
use crate::types::{Slug, Subject};

use super::prologue::prologue;

pub const ROUTE: Route = routes::route("me");

/// Where the read puts the user's partner (`$lookup` output), removed
/// before answering.
const PARTNER_FIELD: &str = "__partner";

pub async fn run<H: Http>(ctx: &Ctx<H>, req: &ApiRequest) -> Result<ApiResponse, Error> {
    // The caller may have no document yet: this route writes it.
    let (token, ()) = prologue(ctx, req, &ROUTE).token().await?;
    let groups = ctx.groups();
    let db = ctx.db()?;

    // Tenant groups in the token name tenants by slug. Only well-formed
    // slugs reach the filter.
    let slugs: Vec<Slug> =
        token.groups.iter().filter_map(|g| g.strip_prefix(groups.tenant_prefix.as_str())).filter_map(|s| Slug::parse(s).ok()).collect();
    let tenant_ids: Vec<ObjectId> = if slugs.is_empty() {
        vec![]
    } else {
        db.find(coll::TENANTS, Find::filter(json!({ "slug": { "$in": slugs } })).project(json!({ "_id": 1 })))
            .await?
            .iter()
            .filter_map(|t| t.get("_id").and_then(object_id))
            .collect()
    };
    let sign_in = SignIn::new(&token, token.groups.contains(&groups.platform_admin), tenant_ids, ctx.now);

    let (written, read) =
        futures::join!(db.update_one(coll::USERS, sign_in.filter(), sign_in.update(), true), read_with_partner(&db, &sign_in.subject));
    let written = written?;
    let user = match compose(&sign_in, read?, &written) {
        Some(user) => user,
        // Another request wrote this user between the two calls (a
        // concurrent first sign-in): read what the upsert left.
        None => read_with_partner(&db, &sign_in.subject).await?.ok_or_else(|| Error::Internal("user vanished after upsert".into()))?,
    };
    Ok(ApiResponse::ok(answer(user)))
}

/// The user (canonical EJSON) with its partner lookup in [`PARTNER_FIELD`],
/// in one round trip.
async fn read_with_partner<H: Http>(db: &DataApi<'_, H>, subject: &Subject) -> Result<Option<Value>, Error> {
    let pipeline = [
        Stage::Match(User::by_subject(subject)),
        Stage::Limit(1),
        Stage::Lookup { from: coll::PARTNERS, local_field: "partnerId", foreign_field: "_id", as_field: PARTNER_FIELD },
    ];
    Ok(db.aggregate(coll::USERS, &pipeline).await?.pop())
}

/// The stored user as the API shows it: the partner's summary in place of
/// the lookup. A partner deleted under the user is simply omitted (as the
/// seed).
fn answer(mut user: Value) -> Value {
    let partner = user.as_object_mut().and_then(|m| m.remove(PARTNER_FIELD));
    if let Some(p) = partner.as_ref().and_then(|p| p.get(0)) {
        user["partner"] = json!({ "_id": p["_id"], "slug": p["slug"], "name": p["name"], "status": p["status"] });
    }
    to_api_json(user)
}

/// What one sign-in writes, held as the upsert's operators so the same
/// values build the update sent and, applied here, the answer composed.
struct SignIn {
    subject: Subject,
    /// `$set`: written on every sign-in.
    set: Map<String, Value>,
    /// `$setOnInsert`: written only when the upsert creates the user.
    on_insert: Map<String, Value>,
    /// `$addToSet: {tenantIds: {$each}}`: the token's tenants, added, never
    /// removed (the database is the source of truth for memberships).
    add_tenants: Vec<ObjectId>,
}

impl SignIn {
    fn new(token: &TokenIdentity, platform_admin: bool, add_tenants: Vec<ObjectId>, now: DateTime) -> Self {
        let now = now.ejson();
        let mut set = Map::new();
        set.insert("platformAdmin".into(), json!(platform_admin));
        set.insert("lastLoginAt".into(), now.clone());
        set.insert("updatedAt".into(), now.clone());
        let mut on_insert = Map::new();
        on_insert.insert("role".into(), json!("member"));
        on_insert.insert("active".into(), json!(true));
        on_insert.insert("createdAt".into(), now);
        // A claim the token lacks never blanks a stored value; a new user
        // gets an empty one.
        for (field, claim) in [("email", &token.email), ("name", &token.name)] {
            match claim {
                Some(v) => set.insert(field.into(), json!(v)),
                None => on_insert.insert(field.into(), json!("")),
            };
        }
        // `$addToSet` and `$setOnInsert` may not both name `tenantIds`;
        // `$addToSet` on a new document creates the array anyway.
        if add_tenants.is_empty() {
            on_insert.insert("tenantIds".into(), json!([]));
        }
        SignIn { subject: token.subject.clone(), set, on_insert, add_tenants }
    }

    fn filter(&self) -> Value {
        User::by_subject(&self.subject)
    }

    fn update(&self) -> Value {
        let mut update = json!({ "$set": self.set, "$setOnInsert": self.on_insert });
        if !self.add_tenants.is_empty() {
            let each: Vec<Value> = self.add_tenants.iter().map(ObjectId::ejson).collect();
            update["$addToSet"] = json!({ "tenantIds": { "$each": each } });
        }
        update
    }

    /// `doc` after this upsert matched it: `$set` replaces, `$addToSet`
    /// appends each tenant id not yet present, in order (as MongoDB does;
    /// ids already there, duplicates included, stay where they are).
    /// Idempotent, so it is right whether `doc` was read before the update
    /// or after it.
    fn applied_to(&self, mut doc: Value) -> Value {
        let Some(m) = doc.as_object_mut() else { return doc };
        m.extend(self.set.clone());
        if !self.add_tenants.is_empty() {
            let ids = m.entry("tenantIds").or_insert_with(|| json!([]));
            // A non-array `tenantIds` makes the upsert fail, so the answer
            // is that error and this value is never seen.
            if let Some(ids) = ids.as_array_mut() {
                for id in &self.add_tenants {
                    if !ids.iter().any(|e| is_object_id(e, id)) {
                        ids.push(id.ejson());
                    }
                }
            }
        }
        doc
    }

    /// The document this upsert inserted with `_id` `id`: the filter's
    /// equality field, then the operators, `$setOnInsert` included. A new
    /// user has no partner.
    fn inserted(&self, id: Value) -> Value {
        let mut doc = Map::new();
        doc.insert("_id".into(), id);
        doc.insert(User::SUBJECT.into(), json!(self.subject));
        doc.extend(self.on_insert.clone());
        doc.insert(PARTNER_FIELD.into(), json!([]));
        self.applied_to(Value::Object(doc))
    }
}

/// Whether a stored array element equals `id` as MongoDB compares them: an
/// ObjectId with the same bytes (a hex string is another type, never equal).
fn is_object_id(element: &Value, id: &ObjectId) -> bool {
    element.as_object().filter(|m| m.len() == 1).and_then(|m| m.get("$oid")).and_then(Value::as_str).and_then(ObjectId::parse).as_ref()
        == Some(id)
}

/// The user as a sequential upsert-then-read would have returned it, from
/// a read that raced the upsert, or `None` when the two cannot be composed.
///
/// A single-document read sees the user entirely before or entirely after
/// the upsert:
/// - the upsert matched and the read found the user: before or after,
///   applying the writes gives the same document;
/// - the upsert inserted and the read found that very document (its `_id`
///   is the `upsertedId`): the read came after; applying is a no-op;
/// - the upsert inserted and the read found nothing: the read came before;
///   the inserted document is built from the operators and the `_id`;
/// - otherwise someone else inserted or removed the user between the calls
///   (the read found nothing yet the upsert matched: a concurrent first
///   sign-in): `None`, and the caller reads again.
///
/// Exact while no other request writes this user between the two calls;
/// when one does, the answer is as if that write had landed just before
/// this upsert (the same window a sequential read-after-write has).
fn compose(sign_in: &SignIn, read: Option<Value>, written: &UpdateResult) -> Option<Value> {
    match (read, &written.upserted_id) {
        (Some(doc), None) => Some(sign_in.applied_to(doc)),
        // Canonical EJSON from one server: equal ids are equal JSON.
        (Some(doc), Some(id)) if doc.get("_id") == Some(id) => Some(sign_in.applied_to(doc)),
        (None, Some(id)) => Some(sign_in.inserted(id.clone())),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: DateTime = DateTime(1_768_500_000_123);

    fn oid(n: u8) -> ObjectId {
        ObjectId::from_parts(0x65b0_0000, [0, 0, 0, 0, 0, 0, 0, n])
    }

    fn token(email: Option<&str>, name: Option<&str>) -> TokenIdentity {
        TokenIdentity {
            subject: Subject::parse("sub-1").unwrap(),
            email: email.map(Into::into),
            name: name.map(Into::into),
            groups: vec![],
        }
    }

    fn matched() -> UpdateResult {
        UpdateResult { matched: 1, modified: 1, upserted_id: None }
    }

    fn inserted(id: &Value) -> UpdateResult {
        UpdateResult { matched: 0, modified: 0, upserted_id: Some(id.clone()) }
    }

    fn stored() -> Value {
        json!({
            "_id": oid(0xaa).ejson(),
            "authentikSubjectId": "sub-1",
            "email": "old@acme.test",
            "name": "Old",
            "role": "admin",
            "active": false,
            "platformAdmin": true,
            "tenantIds": [oid(2).ejson(), "65b000000000000000000003", oid(2).ejson()],
            "createdAt": DateTime(5).ejson(),
            "updatedAt": DateTime(6).ejson(),
            "custom": {"kept": 1},
            "__partner": [{"_id": oid(0xcc).ejson(), "slug": "p"}],
        })
    }

    #[test]
    fn the_update_sent_is_the_seeds() {
        let s = SignIn::new(&token(Some("a@b.test"), None), false, vec![oid(1)], NOW);
        assert_eq!(
            s.update(),
            json!({
                "$set": {"platformAdmin": false, "lastLoginAt": NOW.ejson(), "updatedAt": NOW.ejson(), "email": "a@b.test"},
                "$setOnInsert": {"role": "member", "active": true, "createdAt": NOW.ejson(), "name": ""},
                "$addToSet": {"tenantIds": {"$each": [oid(1).ejson()]}},
            })
        );
        let s = SignIn::new(&token(None, Some("N")), true, vec![], NOW);
        assert_eq!(s.update()["$setOnInsert"]["tenantIds"], json!([]));
        assert!(s.update().get("$addToSet").is_none());
        assert_eq!(s.filter(), json!({"authentikSubjectId": "sub-1"}));
    }

    #[test]
    fn an_existing_user_gets_the_set_fields_and_new_tenants_appended_in_order() {
        let s = SignIn::new(&token(Some("new@acme.test"), None), false, vec![oid(3), oid(2), oid(1)], NOW);
        let got = compose(&s, Some(stored()), &matched()).unwrap();
        let mut want = stored();
        want["email"] = json!("new@acme.test");
        want["platformAdmin"] = json!(false);
        want["lastLoginAt"] = NOW.ejson();
        want["updatedAt"] = NOW.ejson();
        // The hex string is not the ObjectId 3; 2 is present (twice, kept).
        want["tenantIds"] = json!([oid(2).ejson(), "65b000000000000000000003", oid(2).ejson(), oid(3).ejson(), oid(1).ejson()]);
        assert_eq!(got, want);
        // Read after the update: the same answer.
        assert_eq!(compose(&s, Some(got.clone()), &matched()).unwrap(), got);
    }

    #[test]
    fn a_missing_tenant_ids_field_is_created_by_add_to_set_only() {
        let mut doc = stored();
        doc.as_object_mut().unwrap().remove("tenantIds");
        let none = SignIn::new(&token(None, None), false, vec![], NOW);
        assert!(compose(&none, Some(doc.clone()), &matched()).unwrap().get("tenantIds").is_none());
        let some = SignIn::new(&token(None, None), false, vec![oid(4)], NOW);
        assert_eq!(compose(&some, Some(doc), &matched()).unwrap()["tenantIds"], json!([oid(4).ejson()]));
    }

    #[test]
    fn a_new_user_read_before_or_after_its_insert() {
        let id = oid(0xee).ejson();
        let s = SignIn::new(&token(None, Some("Neu")), true, vec![oid(1), oid(1), oid(2)], NOW);
        let before = compose(&s, None, &inserted(&id)).unwrap();
        assert_eq!(
            before,
            json!({
                "_id": id, "authentikSubjectId": "sub-1", "role": "member", "active": true, "createdAt": NOW.ejson(),
                "email": "", "name": "Neu", "platformAdmin": true, "lastLoginAt": NOW.ejson(), "updatedAt": NOW.ejson(),
                "tenantIds": [oid(1).ejson(), oid(2).ejson()], "__partner": [],
            })
        );
        assert_eq!(compose(&s, Some(before.clone()), &inserted(&id)).unwrap(), before);
    }

    #[test]
    fn a_write_by_someone_else_between_the_calls_is_read_again() {
        let s = SignIn::new(&token(None, None), false, vec![], NOW);
        // Read before a concurrent first sign-in inserted the user.
        assert_eq!(compose(&s, None, &matched()), None);
        // The read found a document the upsert did not insert.
        assert_eq!(compose(&s, Some(stored()), &inserted(&oid(0xef).ejson())), None);
    }

    #[test]
    fn the_answer_shows_the_partner_summary_and_hex_ids() {
        let a = answer(stored());
        assert_eq!(a["partner"], json!({"_id": oid(0xcc).to_hex(), "slug": "p", "name": null, "status": null}));
        assert_eq!(a["_id"], json!(oid(0xaa).to_hex()));
        assert!(a.get(PARTNER_FIELD).is_none());
        assert!(answer(json!({"__partner": []})).get("partner").is_none());
    }
}

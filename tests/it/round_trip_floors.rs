//! Routes whose answer is composed differently to save round trips
//! (issue 12) answer exactly as the sequential version did. Each case
//! states the sequential rule's answer, computed from the database with
//! the query the sequential code sent, and checks the route agrees.

use e2e::*;
use serde_json::{json, Value};

/// Row 18's sequential duplicate check: `findOne({email, tenantIds})`,
/// asked of the emulator's MongoDB semantics directly.
fn sequential_duplicate(env: &Env, email: &str, tenant: &str) -> bool {
    !env.find("users", json!({"email": email, "tenantIds": oid(tenant)})).is_empty()
}

fn user(id: &str, email: &str, tenant_ids: Value) -> Value {
    json!({"_id": oid(id), "authentikSubjectId": format!("sub-{id}"), "email": email, "name": "Existing",
        "role": "member", "active": true, "tenantIds": tenant_ids})
}

/// Row 18 folds the duplicate check into the tenant's aggregate (the
/// users at `<localPart>@<each domain>`); the answer must be the one
/// the separate `findOne` on the chosen domain gave.
#[tokio::test]
async fn members_create_duplicate_check_matches_the_sequential_find_one() {
    let env = Env::start().await;
    let db = env.db();
    let (acme, globex, initech) = (ACME.id, GLOBEX.id, INITECH.id);
    // Adversarial data: users at the same local part on the tenant's other
    // domain, on another tenant's domain, in another tenant only, stored
    // with other case, with a scalar `tenantIds`; a domain stored in mixed
    // case; initech's domains out of creation order (see oldest_domain.rs).
    for doc in [
        user("65c0000000000000000000a1", "other.dom@mail.acme.test", json!([oid(acme)])),
        user("65c0000000000000000000a2", "foreign@globex.test", json!([oid(acme)])),
        user("65c0000000000000000000a3", "elsewhere@acme.test", json!([oid(globex)])),
        user("65c0000000000000000000a4", "Case.Dup@acme.test", json!([oid(acme)])),
        user("65c0000000000000000000a5", "scalar@acme.test", oid(acme)),
        user("65c0000000000000000000a6", "both@acme.test", json!([oid(globex), oid(acme)])),
        user("65c0000000000000000000a7", "mixed@upper.acme.test", json!([oid(acme)])),
        user("65c0000000000000000000a8", "old@initech-legacy.test", json!([oid(initech)])),
        user("65c0000000000000000000a9", "new@initech.test", json!([oid(initech)])),
    ] {
        db.insert("dezky", "users", doc);
    }
    db.insert(
        "dezky",
        "domains",
        json!({"_id": oid("65d0000000000000000000b1"), "tenantId": oid(acme),
        "domain": "Upper.Acme.Test", "isPrimary": false}),
    );

    // (tenant slug, caller, localPart, domain named, the e-mail chosen, sequential answer)
    type Case<'a> = (&'a str, &'a User, &'a str, Option<&'a str>, &'a str, bool);
    let cases: [Case; 11] = [
        ("acme", &ACME_OWNER, "other.dom", None, "other.dom@acme.test", false),
        ("acme", &ACME_OWNER, "other.dom", Some("mail.acme.test"), "other.dom@mail.acme.test", true),
        ("acme", &ACME_OWNER, "foreign", None, "foreign@acme.test", false),
        ("acme", &ACME_OWNER, "elsewhere", None, "elsewhere@acme.test", false),
        // Stored as Case.Dup@…: MongoDB's equality is exact, so not a duplicate.
        ("acme", &ACME_OWNER, "case.dup", None, "case.dup@acme.test", false),
        ("acme", &ACME_OWNER, "scalar", None, "scalar@acme.test", true),
        // The local part is lower-cased before anything is compared.
        ("acme", &ACME_OWNER, "BOTH", None, "both@acme.test", true),
        // The domain is stored as Upper.Acme.Test: the e-mail is lower-case.
        ("acme", &ACME_OWNER, "mixed", Some("upper.acme.test"), "mixed@upper.acme.test", true),
        ("initech", &INITECH_ADMIN, "old", None, "old@initech-legacy.test", true),
        ("initech", &INITECH_ADMIN, "new", None, "new@initech-legacy.test", false),
        ("initech", &INITECH_ADMIN, "new", Some("initech.test"), "new@initech.test", true),
    ];
    for (slug, who, local, domain, email, duplicate) in cases {
        let tenant = if slug == "acme" { acme } else { initech };
        // The expectation is the sequential query's answer, asked before
        // the request (a created member would change it).
        assert_eq!(sequential_duplicate(&env, email, tenant), duplicate, "{email}: the case states the sequential answer");
        let mut body = json!({"name": "New Member", "localPart": local, "role": "member"});
        if let Some(d) = domain {
            body["domain"] = json!(d);
        }
        let r = env.post(&format!("/tenants/{slug}/members/create"), who, body).await;
        if duplicate {
            assert_eq!((r.status, r.detail()), (409, format!("{email} already exists in this workspace.")), "{local} {domain:?}");
        } else {
            assert_eq!((r.status, r.json()["email"].as_str()), (201, Some(email)), "{local} {domain:?}: {}", r.text);
        }
    }
}

/// Row 5 answers the document composed from the one read and the update
/// instead of reading it back: it must be byte for byte what a read
/// (`GET /users/:subject`) returns afterwards — with fields we never
/// write, a role of a tenant the user is not in, a field set for the
/// first time and roles dropped with the tenants left.
#[tokio::test]
async fn users_update_answers_what_a_read_back_returns() {
    let env = Env::start().await;
    let sub = "rt-floor-sub";
    env.db().insert(
        "dezky",
        "users",
        json!({
            "_id": oid("65c0000000000000000000c1"), "authentikSubjectId": sub, "email": "odd@acme.test", "name": "Odd",
            "tenantIds": [oid(GLOBEX.id), oid(ACME.id)],
            "tenantRoles": {ACME.id: "admin", GLOBEX.id: "member", INITECH.id: "owner"},
            "legacy": {"nested": [1, {"$numberLong": "2"}], "when": {"$date": {"$numberLong": "1700000000000"}}},
            "createdAt": {"$date": {"$numberLong": "1700000000000"}},
        }),
    );
    let path = format!("/users/{sub}/update");
    for body in [
        json!({"name": "Odd Two", "platformAdmin": false}),
        json!({"tenantSlugs": ["initech", "acme"], "role": "admin", "email": "odd2@acme.test"}),
        json!({"tenantSlugs": [], "active": false}),
    ] {
        let r = env.post(&path, &OPERATOR, body.clone()).await;
        assert_eq!(r.status, 200, "{body}: {}", r.text);
        let read = env.get(&format!("/users/{sub}"), &OPERATOR).await;
        assert_eq!(read.status, 200, "{}", read.text);
        assert_eq!(r.text, read.text, "{body}: the answer differs from the document read back");
    }
}

/// Row 12 reads the target with its partner's slug and that partner's
/// owners/admins in one aggregate; the last-admin rule must count as the
/// separate query over the caller's partner did (admins of another
/// partner never count), and the event names the partner.
#[tokio::test]
async fn partner_team_remove_counts_the_admins_of_the_callers_partner() {
    let env = Env::start().await;
    let sp = oid(SOUTHPOLE.id);
    let path = |sub: &str| format!("/users/me/partner/users/{sub}/remove");
    // A second southpole admin, and an admin of another partner.
    env.db().insert(
        "dezky",
        "users",
        json!({"_id": oid("65c0000000000000000000d1"), "authentikSubjectId": "sp-second",
        "email": "second@southpole.test", "name": "Second", "role": "admin", "active": true, "partnerId": sp.clone(), "tenantIds": []}),
    );
    let admins = |env: &Env| env.find("users", json!({"partnerId": sp.clone(), "role": {"$in": ["owner", "admin"]}})).len();
    assert_eq!(admins(&env), 2);
    let r = env.post(&path("sp-second"), &SOUTHPOLE_ADMIN, json!({})).await;
    assert_eq!((r.status, r.json()), (200, json!({"removed": true})), "{}", r.text);
    let audit = env.find("auditevents", json!({"action": "partner.user_removed", "resourceId": "sp-second"}));
    assert_eq!((audit.len(), audit[0]["partnerSlug"].as_str()), (1, Some("southpole")));
    // Now the sequential count is one: the last admin stays.
    assert_eq!(admins(&env), 1);
    let r = env.post(&path(SOUTHPOLE_ADMIN.sub), &SOUTHPOLE_ADMIN, json!({})).await;
    assert_eq!((r.status, r.detail()), (409, "Cannot remove the last partner admin".to_owned()));
}

/// Rows 7/10/31 write the audit event beside the password and its expiry
/// marker: when the password fails, the event written beside it goes
/// again with everything else, as if it had never been sent.
#[tokio::test]
async fn an_invite_whose_password_fails_leaves_no_audit_event() {
    let env = Env::start().await;
    let before = env.world();
    // The identity the invite creates gets the next pk.
    let pk = env.authentik().users().iter().map(|u| u.pk).max().unwrap_or(0) + 1;
    env.fail(&env.emu.authentik().controls, FaultRule::new(format!("/api/v3/core/users/{pk}/set_password/"), Fault::Status(500)));
    let r = env.post("/platform/operators/invite", &OPERATOR, json!({"name": "New Op", "email": "pwfail@dezky.test"})).await;
    assert_eq!(r.status, 502, "{}", r.text);
    assert!(
        env.emu.authentik().controls.log.all().iter().any(|c| c.path() == format!("/api/v3/core/users/{pk}/set_password/")),
        "the password was attempted"
    );
    assert_eq!(env.world(), before, "an audit event, a document or an identity was left behind");
}

/// Row 30 answers the documents composed from the ones read and the role
/// updates instead of reading them again: each must equal what a read
/// returns afterwards, the previous owners in the order a read by id
/// gives (the collection's), with fields we never write.
#[tokio::test]
async fn ownership_transfer_answers_what_a_read_back_returns() {
    let env = Env::start().await;
    let acme = oid(ACME.id);
    // A second owner, stored before the demo's, with a lower _id, and
    // fields of its own; the new owner has no tenantRoles at all.
    env.db().insert(
        "dezky",
        "users",
        json!({"_id": oid("65a000000000000000000000"), "authentikSubjectId": "rt-co-owner",
        "email": "co@acme.test", "name": "Co Owner", "role": "member", "active": true, "tenantIds": [acme.clone()],
        "tenantRoles": {ACME.id: "owner", GLOBEX.id: "member"}, "prefs": {"theme": "dark"}}),
    );
    env.db().insert(
        "dezky",
        "users",
        json!({"_id": oid("65c0000000000000000000e1"), "authentikSubjectId": "rt-next-owner",
        "email": "next@acme.test", "name": "Next", "role": "admin", "active": true, "tenantIds": [acme]}),
    );
    let r = env.post("/tenants/acme/ownership/transfer", &ACME_OWNER, json!({"userId": "65c0000000000000000000e1"})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let out = r.json();
    let read = |sub: String| {
        let env = &env;
        async move {
            let g = env.get(&format!("/users/{sub}"), &OPERATOR).await;
            assert_eq!(g.status, 200, "{}", g.text);
            g.json()
        }
    };
    assert_eq!(out["newOwner"], read("rt-next-owner".into()).await);
    let previous = out["previousOwners"].as_array().unwrap();
    assert_eq!(previous.len(), 2, "{out}");
    for doc in previous {
        assert_eq!(doc, &read(doc["authentikSubjectId"].as_str().unwrap().to_owned()).await);
    }
    let ids: Vec<Value> = previous.iter().map(|d| oid(d["_id"].as_str().unwrap())).collect();
    let by_read: Vec<String> =
        env.find("users", json!({"_id": {"$in": ids}})).iter().map(|d| d["authentikSubjectId"].as_str().unwrap().to_owned()).collect();
    let answered: Vec<String> = previous.iter().map(|d| d["authentikSubjectId"].as_str().unwrap().to_owned()).collect();
    assert_eq!(answered, by_read);
}

/// Row 14 reads the partner's and its tenants' events in one pipeline from
/// the partner (two joins merged); the answer must be the sequential query's:
/// events on the partner's slug or on one of its tenants' slugs, newest
/// first, `_id` descending on ties, at most `limit`, older than `before`.
#[tokio::test]
async fn partner_activity_answers_the_sequential_query() {
    let env = Env::start().await;
    let db = env.db();
    let partner = oid(NORTHWIND.id);
    // A northwind tenant without a slug: it must not join the events that
    // have no tenantSlug. Events: ties on createdAt with ids out of
    // insertion order, one naming both the partner and one of its tenants
    // (listed once), others' events, events without any slug.
    db.insert("dezky", "tenants", json!({"_id": oid("65e0000000000000000000c1"), "name": "No Slug", "partnerId": partner}));
    let t0 = CREATED_AT_MS + 200 * 86_400_000;
    let northwind_tenants: Vec<String> =
        env.find("tenants", json!({"partnerId": partner})).iter().filter_map(|t| t["slug"].as_str().map(str::to_owned)).collect();
    assert!(northwind_tenants.len() >= 2, "{northwind_tenants:?}");
    let events = [
        ("65e0000000000000000000f3", json!({"partnerSlug": "northwind"}), t0),
        ("65e0000000000000000000f1", json!({"tenantSlug": northwind_tenants[0]}), t0),
        ("65e0000000000000000000f2", json!({"tenantSlug": northwind_tenants[1], "partnerSlug": "northwind"}), t0 + 5),
        ("65e0000000000000000000f4", json!({}), t0 + 10),
        ("65e0000000000000000000f5", json!({"tenantSlug": null}), t0 + 11),
        ("65e0000000000000000000f6", json!({"tenantSlug": "acme"}), t0 + 12),
        ("65e0000000000000000000f7", json!({"partnerSlug": "southpole"}), t0 + 13),
        ("65e0000000000000000000f8", json!({"tenantSlug": northwind_tenants[0]}), t0 - 5),
    ];
    for (id, extra, at) in events {
        let mut e = json!({"_id": oid(id), "action": "x", "resourceType": "user", "resourceId": "r", "resourceName": "n",
            "createdAt": {"$date": {"$numberLong": at.to_string()}}});
        e.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        db.insert("dezky", "auditevents", e);
    }
    // The sequential rule, asked of the emulator directly.
    let sequential = |slugs: &[String], partner_slug: Option<&str>, limit: u32, before: Option<i64>| -> Vec<String> {
        let mut or = vec![json!({"tenantSlug": {"$in": slugs}})];
        if let Some(p) = partner_slug {
            or.push(json!({"partnerSlug": p}));
        }
        let mut filter = json!({"$or": or});
        if let Some(b) = before {
            filter["createdAt"] = json!({"$lt": {"$date": {"$numberLong": b.to_string()}}});
        }
        let pipeline = json!([{"$match": filter}, {"$sort": {"createdAt": -1, "_id": -1}}, {"$limit": limit}]);
        db.aggregate("dezky", "auditevents", pipeline).iter().map(|e| e["_id"]["$oid"].as_str().unwrap().to_owned()).collect()
    };
    let route = |query: String| {
        let env = &env;
        async move {
            let r = env.get(&format!("/users/me/partner/activity{query}"), &NORTHWIND_OWNER).await;
            assert_eq!(r.status, 200, "{}", r.text);
            r.json().as_array().unwrap().iter().map(|e| e["_id"].as_str().unwrap().to_owned()).collect::<Vec<_>>()
        }
    };
    let before = shared::ejson::DateTime(t0 + 5).to_iso();
    for (query, limit, before_ms) in [
        (String::new(), 50, None),
        ("?limit=1".into(), 1, None),
        ("?limit=2".into(), 2, None),
        ("?limit=3".into(), 3, None),
        (format!("?before={before}"), 50, Some(t0 + 5)),
    ] {
        let expected = sequential(&northwind_tenants, Some("northwind"), limit, before_ms);
        assert!(!expected.is_empty());
        assert_eq!(route(query.clone()).await, expected, "{query}");
    }
    // The partner deleted under its staff: its tenants' events still show.
    db.delete_many("dezky", "partners", json!({"_id": partner}));
    assert_eq!(route(String::new()).await, sequential(&northwind_tenants, None, 50, None));
}

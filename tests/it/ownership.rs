//! Row 30 end to end: ownership moves, previous owners become admins in
//! this workspace only, and a failure part-way leaves every role as it was.

use crate::members_ii::*;
use e2e::*;
use serde_json::{json, Value};

const PATH: &str = "/tenants/acme/ownership/transfer";

/// A second, legacy owner of acme: `role: owner` and no `tenantRoles`
/// entry (the role applies through the fallback).
const LEGACY: &str = "65a0000000000000000000c1";

fn roles(env: &Env) -> Value {
    let mut docs = env.find("users", json!({}));
    docs.sort_by_key(|d| d["_id"]["$oid"].as_str().unwrap().to_owned());
    json!(docs.iter().map(|d| json!([d["_id"], d.get("role"), d.get("tenantRoles")])).collect::<Vec<_>>())
}

fn setup(env: &Env) {
    env.db().insert(
        "dezky",
        "users",
        json!({"_id": oid(LEGACY), "authentikSubjectId": "sub-legacy", "email": "lee@acme.test", "role": "owner",
            "tenantIds": [oid(ACME.id), oid(GLOBEX.id)], "tenantRoles": {GLOBEX.id: "member"}, "mailboxAddress": "lee@acme.test"}),
    );
    // Adam belongs to globex too, where his role must stay.
    env.db().update_one(
        "dezky",
        "users",
        json!({"_id": oid(ACME_ADMIN.id)}),
        json!({"$set": {"tenantIds": [oid(ACME.id), oid(GLOBEX.id)], format!("tenantRoles.{}", GLOBEX.id): "member"}}),
    );
}

#[tokio::test]
async fn every_previous_owner_becomes_an_admin_here() {
    let env = Env::start().await;
    setup(&env);
    let before = env.world();
    let r = env.post(PATH, &NORTHWIND_STAFF, json!({"userId": format!(" {} ", ACME_ADMIN.id)})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let out = r.json();
    assert_eq!(out["newOwner"]["_id"], ACME_ADMIN.id);
    assert_eq!(out["newOwner"]["tenantRoles"], json!({ACME.id: "owner", GLOBEX.id: "member"}));
    assert_eq!(out["newOwner"]["role"], "admin", "the legacy role changed");
    let mut prev: Vec<(String, Value)> = out["previousOwners"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| (d["_id"].as_str().unwrap().to_owned(), d["tenantRoles"].clone()))
        .collect();
    prev.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        prev,
        vec![(ACME_OWNER.id.to_owned(), json!({ACME.id: "admin"})), (LEGACY.to_owned(), json!({GLOBEX.id: "member", ACME.id: "admin"}))]
    );
    // Stored as answered; legacy roles stay.
    assert_eq!(user_doc(&env, ACME_OWNER.id)["role"], "owner");
    assert_eq!(user_doc(&env, LEGACY)["role"], "owner");
    assert_eq!(user_doc(&env, ACME_ADMIN.id)["tenantRoles"][ACME.id], "owner");
    // The other members are untouched, and nothing outside the database changed.
    assert_eq!(user_doc(&env, ACME_MEMBER.id)["tenantRoles"], json!({ACME.id: "member"}));
    let (w, b) = (env.world(), before);
    assert_eq!((&w["authentik"], &w["stalwart"], &w["ocis"]), (&b["authentik"], &b["stalwart"], &b["ocis"]));
    let audit = events(&env, "tenant.ownership_transferred");
    assert_eq!(audit.len(), 1);
    let mut from: Vec<String> = audit[0]["metadata"]["from"].as_array().unwrap().iter().map(|e| e.as_str().unwrap().to_owned()).collect();
    from.sort();
    assert_eq!(from, vec!["alice@acme.test", "lee@acme.test"]);
    assert_eq!(audit[0]["metadata"]["to"], "adam@acme.test");
    assert_eq!((audit[0]["resourceId"].as_str(), audit[0]["tenantSlug"].as_str()), (Some(ACME_ADMIN.sub), Some("acme")));

    // The new owner now holds it: again is a conflict.
    let r = env.post(PATH, &OPERATOR, json!({"userId": ACME_ADMIN.id})).await;
    assert_eq!((r.status, r.detail().as_str()), (409, "This member is already the owner."));
    // And a previous owner (an admin now) can hand it on.
    let r = env.post(PATH, &ACME_OWNER, json!({"userId": ACME_MEMBER.id})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["previousOwners"].as_array().unwrap().len(), 1);
    assert_eq!(user_doc(&env, ACME_ADMIN.id)["tenantRoles"], json!({ACME.id: "admin", GLOBEX.id: "member"}));
}

#[tokio::test]
async fn refusals_change_nothing() {
    let env = Env::start().await;
    let before = everything(&env);
    for (what, body, status) in [
        ("the owner", json!({"userId": ACME_OWNER.id}), 409),
        ("another tenant's user", json!({"userId": GLOBEX_ADMIN.id}), 404),
        ("not 24 hex", json!({"userId": "adam"}), 404),
        ("unknown", json!({"userId": "65a0000000000000000000ff"}), 404),
        ("an operator", json!({"userId": {"$ne": ""}}), 400),
        ("no userId", json!({}), 400),
        ("unknown field", json!({"userId": ACME_ADMIN.id, "role": "owner"}), 400),
    ] {
        let r = env.post(PATH, &ACME_ADMIN, body).await;
        assert_eq!(r.status, status, "{what}: {}", r.text);
    }
    assert_eq!(env.post("/tenants/nope/ownership/transfer", &OPERATOR, json!({"userId": ACME_ADMIN.id})).await.status, 404);
    assert_eq!(everything(&env), before);
}

#[tokio::test]
async fn a_failure_part_way_leaves_every_role_as_it_was() {
    for (what, rule) in [
        ("promotion", FaultRule::new("/action/updateOne", Fault::Status(500))),
        ("demotion", FaultRule::new("/action/updateMany", Fault::Status(500))),
        ("demotion dropped", FaultRule::new("/action/updateMany", Fault::Drop)),
        ("audit", FaultRule::new("/action/insertOne", Fault::Status(500))),
    ] {
        let env = Env::start().await;
        setup(&env);
        let (before, db_before) = (roles(&env), env.snapshot());
        env.fail_data_api(rule);
        let r = env.post(PATH, &OPERATOR, json!({"userId": ACME_ADMIN.id})).await;
        assert_eq!(r.status, 502, "{what}: {}", r.text);
        assert_eq!(roles(&env), before, "{what}: roles changed");
        let owners: Vec<Value> = env.find("users", json!({format!("tenantRoles.{}", ACME.id): "owner"}));
        assert_eq!(owners.len(), 1, "{what}: not one owner");
        assert!(events(&env, "tenant.ownership_transferred").is_empty(), "{what}");
        // Only `updatedAt` may tell that something was tried.
        let strip = |mut v: Value| {
            for d in v["users"].as_array_mut().unwrap() {
                d.as_object_mut().unwrap().remove("updatedAt");
            }
            v
        };
        assert_eq!(strip(env.snapshot()), strip(db_before), "{what}");
    }
}

//! Row 18 without a `domain` and without a primary domain: the member is
//! created on the tenant's oldest domain by `createdAt` (the seed's
//! `.sort({ createdAt: 1 })`), not the one with the lowest `_id`.

use e2e::*;
use serde_json::{json, Value};

const CREATE: &str = "/tenants/initech/members/create";

fn member(local: &str) -> Value {
    json!({"name": "Old Timer", "localPart": local, "role": "member"})
}

fn demo_domain(name: &str) -> &'static Domain {
    DOMAINS.iter().find(|d| d.domain == name).unwrap()
}

/// A date `days` after the demo's epoch, canonical EJSON.
fn day(days: i64) -> Value {
    json!({"$date": {"$numberLong": (CREATED_AT_MS + days * 86_400_000).to_string()}})
}

#[tokio::test]
async fn the_oldest_domain_is_the_earliest_created_not_the_lowest_id() {
    let env = Env::start().await;
    // The demo world disagrees on purpose: initech.test has the lower _id,
    // initech-legacy.test the earlier createdAt; neither is primary.
    let (by_id, by_date) = (demo_domain("initech.test"), demo_domain("initech-legacy.test"));
    assert!(by_id.id < by_date.id && by_date.created_day < by_id.created_day);
    assert!(DOMAINS.iter().filter(|d| d.tenant.slug == "initech").all(|d| !d.is_primary));

    let r = env.post(CREATE, &INITECH_ADMIN, member("old")).await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.json()["email"], "old@initech-legacy.test");
    let mbx = env.stalwart().account_by_email("old@initech-legacy.test").expect("the mailbox is on that domain");
    assert_eq!(mbx.domain_id, by_date.stalwart_id);
    // A domain named explicitly still wins over the oldest.
    let r = env.post(CREATE, &INITECH_ADMIN, json!({"name": "N", "localPart": "named", "role": "member", "domain": "initech.test"})).await;
    assert_eq!((r.status, r.json()["email"].as_str()), (201, Some("named@initech.test")), "{}", r.text);
}

#[tokio::test]
async fn a_domain_without_created_at_sorts_first_and_ties_go_to_the_lower_id() {
    let env = Env::start().await;
    let db = env.db();
    let tenant = oid(INITECH.id);
    // Created on the same day as initech-legacy.test but with a lower _id:
    // the tie goes to the lower _id.
    db.insert(
        "dezky",
        "domains",
        json!({"_id": oid("65d000000000000000000000"), "tenantId": tenant.clone(),
        "domain": "tie.initech.test", "isPrimary": false, "createdAt": day(1)}),
    );
    let r = env.post(CREATE, &INITECH_ADMIN, member("a")).await;
    assert_eq!((r.status, r.json()["email"].as_str()), (201, Some("a@tie.initech.test")), "{}", r.text);
    assert_eq!(r.json()["provisioning"]["stalwart"], "skipped", "a domain without a Stalwart id gets no mailbox");

    // MongoDB sorts a missing createdAt, and a null one, before any date:
    // such domains are "older" than every dated one, then by _id.
    db.insert(
        "dezky",
        "domains",
        json!({"_id": oid("65d0000000000000000000ff"), "tenantId": tenant.clone(),
        "domain": "undated.initech.test", "isPrimary": false}),
    );
    db.insert(
        "dezky",
        "domains",
        json!({"_id": oid("65d0000000000000000000fe"), "tenantId": tenant.clone(),
        "domain": "null.initech.test", "isPrimary": false, "createdAt": null}),
    );
    let r = env.post(CREATE, &INITECH_ADMIN, member("b")).await;
    assert_eq!((r.status, r.json()["email"].as_str()), (201, Some("b@null.initech.test")), "{}", r.text);

    // Another tenant's older domain is never a candidate; a primary always wins.
    db.insert(
        "dezky",
        "domains",
        json!({"_id": oid("65d0000000000000000000a0"), "tenantId": oid(GLOBEX.id),
        "domain": "ancient.globex.test", "isPrimary": false}),
    );
    db.insert(
        "dezky",
        "domains",
        json!({"_id": oid("65d0000000000000000000a1"), "tenantId": tenant,
        "domain": "primary.initech.test", "isPrimary": true, "createdAt": day(9)}),
    );
    let r = env.post(CREATE, &INITECH_ADMIN, member("c")).await;
    assert_eq!((r.status, r.json()["email"].as_str()), (201, Some("c@primary.initech.test")), "{}", r.text);
}

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
    db.insert("dezky", "domains", json!({"_id": oid("65d0000000000000000000b1"), "tenantId": oid(acme),
        "domain": "Upper.Acme.Test", "isPrimary": false}));

    // (tenant slug, caller, localPart, domain named, the e-mail chosen, sequential answer)
    let cases: [(&str, &User, &str, Option<&str>, &str, bool); 11] = [
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

//! `GET /users/me` sends its upsert and its read together and composes the
//! answer (shared/src/ops/me.rs). These hold that answer to what a
//! sequential upsert-then-read returns: the stored user read straight from
//! the emulator after the request, for every order the two calls can run in,
//! and for first sign-ins racing each other.

use std::time::Duration;

use e2e::*;
use emulators::issuer::Signing;
use serde_json::{json, Value};

const UPSERT: &str = "/action/updateOne";
const READ: &str = "/action/aggregate";

/// The order the upsert and the read reach the database in.
#[derive(Clone, Copy, Debug)]
enum Order {
    /// As they come.
    Together,
    /// The upsert is held: the read sees the user before it.
    ReadFirst,
    /// The read is held: it sees the user after the upsert.
    UpsertFirst,
}

const ORDERS: [Order; 3] = [Order::Together, Order::ReadFirst, Order::UpsertFirst];

/// Holds the next call to `action` for `ms`.
fn hold(env: &Env, action: &str, ms: u64) {
    env.fail_data_api(FaultRule::new(action, Fault::DelayMs(ms)).method("POST").times(1));
}

impl Order {
    fn arrange(self, env: &Env) {
        match self {
            Order::Together => {}
            Order::ReadFirst => hold(env, UPSERT, 300),
            Order::UpsertFirst => hold(env, READ, 300),
        }
    }
}

/// The user with this subject as a sequential read returns it now, read on
/// the emulator directly: the stored document, its partner's summary (a
/// missing partner left out), in the API's JSON.
fn stored_answer(env: &Env, subject: &str) -> Value {
    let pipeline = json!([
        {"$match": {"authentikSubjectId": subject}},
        {"$lookup": {"from": "partners", "localField": "partnerId", "foreignField": "_id", "as": "p"}},
    ]);
    let mut docs = env.db().aggregate("dezky", "users", pipeline);
    assert_eq!(docs.len(), 1, "one user with subject {subject}: {docs:?}");
    let mut user = docs.remove(0);
    let partner = user.as_object_mut().unwrap().remove("p").unwrap();
    if let Some(p) = partner.get(0) {
        user["partner"] = json!({"_id": p["_id"], "slug": p["slug"], "name": p["name"], "status": p["status"]});
    }
    shared::ejson::to_api_json(user)
}

/// `answer` with the two fields every sign-in sets to its own instant
/// taken from `other`: what two sign-ins of one user share.
fn with_times_of(answer: &Value, other: &Value) -> Value {
    let mut a = answer.clone();
    assert_eq!(a["lastLoginAt"], a["updatedAt"], "one instant per sign-in: {a}");
    for k in ["lastLoginAt", "updatedAt"] {
        a[k] = other[k].clone();
    }
    a
}

fn hex(ids: &[&str]) -> Value {
    json!(ids)
}

fn tenant_group(slug: &str) -> String {
    format!("{TENANT_GROUP_PREFIX}{slug}")
}

/// A newcomer no demo system knows.
const NEWCOMER: User =
    User { id: "000000000000000000000000", sub: "sub-newcomer", pk: 999, email: "New.Comer@Acme.TEST", name: "New Comer", ..ACME_MEMBER };

/// One case of the matrix: who signs in with which claims changed, what is
/// changed in the database first, and what the stored user must show after.
struct Case {
    what: &'static str,
    who: &'static User,
    claims: Value,
    setup: fn(&Env),
    /// `tenantIds`, `email`, `name`, `platformAdmin` after the sign-in.
    want: Value,
}

fn no_setup(_: &Env) {}

fn cases() -> Vec<Case> {
    let c = |what, who, claims, setup, want| Case { what, who, claims, setup, want };
    vec![
        c(
            "partner staff, no tenant groups",
            &NORTHWIND_OWNER,
            json!({}),
            no_setup,
            json!({"tenantIds": [], "email": NORTHWIND_OWNER.email, "name": NORTHWIND_OWNER.name, "platformAdmin": false}),
        ),
        c(
            "member without partner, no groups at all",
            &ACME_MEMBER,
            json!({"groups": []}),
            no_setup,
            json!({"tenantIds": hex(&[ACME.id]), "email": ACME_MEMBER.email, "name": ACME_MEMBER.name, "platformAdmin": false}),
        ),
        c(
            // Appended in the order the tenants are found (natural order),
            // after what is stored; acme is present and stays first.
            "new tenant groups, one present, and the platform admin group",
            &ACME_MEMBER,
            json!({"groups": [tenant_group("initech"), tenant_group("acme"), tenant_group("globex"), PLATFORM_ADMIN_GROUP]}),
            no_setup,
            json!({"tenantIds": hex(&[ACME.id, GLOBEX.id, INITECH.id]), "email": ACME_MEMBER.email, "name": ACME_MEMBER.name, "platformAdmin": true}),
        ),
        c(
            "every named tenant already present",
            &MULTI_TENANT,
            json!({"groups": [tenant_group("globex"), tenant_group("acme")]}),
            no_setup,
            json!({"tenantIds": hex(&[ACME.id, GLOBEX.id]), "email": MULTI_TENANT.email, "name": MULTI_TENANT.name, "platformAdmin": false}),
        ),
        c(
            "unknown and malformed slugs only",
            &ACME_ADMIN,
            json!({"groups": [tenant_group("nope"), tenant_group("BAD slug")]}),
            no_setup,
            json!({"tenantIds": hex(&[ACME.id]), "email": ACME_ADMIN.email, "name": ACME_ADMIN.name, "platformAdmin": false}),
        ),
        c(
            "a token without e-mail or name keeps the stored ones",
            &ACME_OWNER,
            json!({"email": null, "name": null, "preferred_username": null}),
            no_setup,
            json!({"tenantIds": hex(&[ACME.id]), "email": ACME_OWNER.email, "name": ACME_OWNER.name, "platformAdmin": false}),
        ),
        c(
            // Written by another client: no tenantIds field, attributes we
            // never write, a partner that no longer exists.
            "a stored document we did not write",
            &GLOBEX_ADMIN,
            json!({"groups": [tenant_group("initech"), tenant_group("globex")], "email": "Gina.New@Globex.TEST"}),
            |env| {
                let sub = json!({"authentikSubjectId": GLOBEX_ADMIN.sub});
                let gone = json!({"$oid": "65c0000000000000000000ff"});
                env.db().update_one(
                    "dezky",
                    "users",
                    sub,
                    json!({"$unset": {"tenantIds": ""}, "$set": {"legacy": {"from": "nest", "n": 3}, "partnerId": gone}}),
                );
            },
            json!({"tenantIds": hex(&[GLOBEX.id, INITECH.id]), "email": "gina.new@globex.test", "name": GLOBEX_ADMIN.name, "platformAdmin": false}),
        ),
        c(
            // A hex string is not the ObjectId it spells; a duplicate stays.
            "stored tenant ids of another type and duplicated",
            &INITECH_ADMIN,
            json!({"groups": [tenant_group("acme"), tenant_group("initech")]}),
            |env| {
                let ids = json!([{"$oid": INITECH.id}, ACME.id, {"$oid": INITECH.id}]);
                env.db().update_one(
                    "dezky",
                    "users",
                    json!({"authentikSubjectId": INITECH_ADMIN.sub}),
                    json!({"$set": {"tenantIds": ids}}),
                );
            },
            json!({"tenantIds": hex(&[INITECH.id, ACME.id, INITECH.id, ACME.id]), "email": INITECH_ADMIN.email, "name": INITECH_ADMIN.name, "platformAdmin": false}),
        ),
        c(
            "first sign-in with tenant groups, some unknown",
            &NEWCOMER,
            json!({"groups": [tenant_group("globex"), tenant_group("nope"), tenant_group("acme")]}),
            no_setup,
            json!({"tenantIds": hex(&[ACME.id, GLOBEX.id]), "email": "new.comer@acme.test", "name": NEWCOMER.name, "platformAdmin": false}),
        ),
        c(
            "first sign-in without groups, e-mail or name",
            &NEWCOMER,
            json!({"groups": null, "email": null, "name": null, "preferred_username": null}),
            no_setup,
            json!({"tenantIds": [], "email": "", "name": "", "platformAdmin": false}),
        ),
        c(
            "first sign-in with only preferred_username, as platform admin",
            &NEWCOMER,
            json!({"groups": [PLATFORM_ADMIN_GROUP], "name": null, "preferred_username": "newc"}),
            no_setup,
            json!({"tenantIds": [], "email": "new.comer@acme.test", "name": "newc", "platformAdmin": true}),
        ),
    ]
}

#[tokio::test]
async fn the_composed_answer_is_the_sequential_one_in_every_order() {
    for case in cases() {
        for order in ORDERS {
            let env = Env::start().await;
            (case.setup)(&env);
            let before = env.find("users", json!({"authentikSubjectId": case.who.sub}));
            let token = env.token_with(case.who, case.claims.clone(), Signing::Rs256);
            order.arrange(&env);
            let r = env.call("GET", "/users/me", Some(&token), None).await;
            let label = format!("{} ({order:?})", case.what);
            assert_eq!(r.status, 200, "{label}: {}", r.text);
            let got = r.json();
            assert_eq!(got, stored_answer(&env, case.who.sub), "{label}: the answer is not what a read after the upsert returns");

            // The upsert itself is the seed's.
            for (k, v) in case.want.as_object().unwrap() {
                assert_eq!(&got[k], v, "{label}: {k}");
            }
            assert_eq!(got["lastLoginAt"], got["updatedAt"], "{label}");
            match before.first() {
                Some(old) => {
                    let old = shared::ejson::to_api_json(old.clone());
                    for k in ["_id", "createdAt", "role", "active"] {
                        assert_eq!(got[k], old[k], "{label}: {k} is kept");
                    }
                    assert!(got["updatedAt"].as_str() > old["updatedAt"].as_str(), "{label}");
                }
                None => {
                    assert_eq!((&got["role"], &got["active"]), (&json!("member"), &json!(true)), "{label}");
                    assert_eq!(got["createdAt"], got["updatedAt"], "{label}");
                    assert!(got.get("partner").is_none(), "{label}");
                }
            }
        }
    }
}

#[tokio::test]
async fn many_concurrent_first_sign_ins_answer_one_user() {
    const N: usize = 24;
    let env = Env::start().await;
    let mut claims = env.emu.issuer.claims_for(&NEWCOMER);
    claims["groups"] = json!([tenant_group("initech"), tenant_group("acme")]);
    let token = env.emu.issuer.sign(claims, Signing::Es256);
    // Some reads and some upserts wait, so reads land before, between and
    // after the upserts of the others.
    for (action, ms) in [(READ, 30), (UPSERT, 60), (READ, 90), (UPSERT, 20)] {
        env.fail_data_api(FaultRule::new(action, Fault::DelayMs(ms)).method("POST").times(3));
    }
    let client = reqwest::Client::new();
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..N {
        let req = client.get(format!("{}/users/me", env.base)).bearer_auth(&token);
        set.spawn(async move {
            let r = req.send().await.expect("the host answers");
            (r.status().as_u16(), r.text().await.unwrap_or_default())
        });
    }
    let answers: Vec<Value> = set
        .join_all()
        .await
        .into_iter()
        .map(|(status, text)| {
            assert_eq!(status, 200, "{text}");
            serde_json::from_str(&text).unwrap()
        })
        .collect();

    let last = stored_answer(&env, NEWCOMER.sub);
    assert_eq!(env.find("users", json!({"authentikSubjectId": NEWCOMER.sub})).len(), 1, "one user, however many sign in");
    assert_eq!(last["tenantIds"], hex(&[ACME.id, INITECH.id]));
    for a in &answers {
        // Every answer is the one user, at its own sign-in's instant.
        assert_eq!(with_times_of(a, &last), last);
    }
    // The user was created once, by one of them.
    assert!(answers.iter().any(|a| a["lastLoginAt"] == last["createdAt"]), "the creator's answer is among them");
}

/// Two sign-ins of one new user, the first with one call held so that the
/// second inserts or refreshes the user in between. Both answer the one
/// stored user at their own instant: `(first, second, stored)`, and the
/// data API's log.
async fn two_first_sign_ins(held: &str) -> (Value, Value, Value, Vec<String>) {
    let env = Env::start().await;
    let token = env.token(&NEWCOMER);
    // Well inside the 1.5 s upstream timeout of the tests, and long
    // enough for the second request on a busy machine.
    hold(&env, held, 900);
    let first = env.call("GET", "/users/me", Some(&token), None);
    let second = async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        env.call("GET", "/users/me", Some(&token), None).await
    };
    let (first, second) = tokio::join!(first, second);
    assert_eq!((first.status, second.status), (200, 200), "{} / {}", first.text, second.text);
    let (first, second, last) = (first.json(), second.json(), stored_answer(&env, NEWCOMER.sub));
    for answer in [&first, &second] {
        assert_eq!(with_times_of(answer, &last), last);
    }
    let log = env.emu.data_api().controls.log.all().iter().map(|r| r.path().to_owned()).collect();
    (first, second, last, log)
}

#[tokio::test]
async fn a_read_that_missed_a_concurrent_first_sign_in_reads_again() {
    // The first request's read finds nothing; its upsert, held, then
    // matches the user the second request inserted: it cannot compose.
    let (first, second, last, log) = two_first_sign_ins(UPSERT).await;
    assert_eq!(first, last, "the first upserted last: its answer is the stored user");
    assert_eq!(first["createdAt"], second["lastLoginAt"], "created by the second request");
    assert_eq!(log.iter().filter(|p| *p == READ).count(), 3, "the first request read again");
}

#[tokio::test]
async fn a_held_read_sees_the_user_another_sign_in_refreshed() {
    // The first request inserts; its read, held, sees the user after the
    // second request's upsert: composed with the first one's own writes.
    let (first, second, last, _) = two_first_sign_ins(READ).await;
    assert_eq!(second, last, "the second upserted last: its answer is the stored user");
    assert_eq!(first["createdAt"], first["lastLoginAt"], "created by the first request");
}

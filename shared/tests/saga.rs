//! The members-create saga against in-memory ports: a scripted HTTP fake
//! stands in for the Data API, Authentik, Stalwart and OCIS, so the order
//! of calls, the shared password and every undo step are checked natively.

use std::cell::RefCell;
use std::collections::HashMap;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use serde_json::{json, Value};
use shared::ctx::Ctx;
use shared::ejson::DateTime;
use shared::ports::{Http, InboundResponse, MemoryKeyValue, OutboundRequest, TransportError};
use shared::request::ApiRequest;

const NOW: i64 = 1_780_000_000;
const TENANT: &str = "65b000000000000000000001";

/// Which call fails, and how.
#[derive(Clone, Default)]
struct Faults {
    user_upsert: Option<u16>,
    set_password: Option<u16>,
    stalwart: Option<u16>,
    identity_timeout: bool,
    /// Authentik refuses the username: a concurrent request created it.
    identity_taken: bool,
    /// Stalwart refuses the address: another account holds it.
    mailbox_taken: bool,
    /// After a timed-out create, the identity found is one a concurrent
    /// request created in the same millisecond.
    found_concurrent: bool,
}

struct Fake {
    faults: Faults,
    log: RefCell<Vec<(String, String, Value)>>,
}

impl Fake {
    /// The attributes of the identity this request tried to create.
    fn sent_attributes(&self) -> Value {
        let log = self.log.borrow();
        let mut sent = log
            .iter()
            .find(|(m, p, _)| m == "POST" && p == "/api/v3/core/users/")
            .map(|(_, _, b)| b["attributes"].clone())
            .unwrap_or(Value::Null);
        if self.faults.found_concurrent {
            sent["dezky.invitation"] = json!("another request's");
        }
        sent
    }
}

fn ok(status: u16, body: Value) -> Result<InboundResponse, TransportError> {
    Ok(InboundResponse { status, body: serde_json::to_vec(&body).unwrap(), ..Default::default() })
}

impl Http for Fake {
    async fn send(&self, req: OutboundRequest) -> Result<InboundResponse, TransportError> {
        let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
        let path = req.url.split_once("://").map(|(_, r)| &r[r.find('/').unwrap_or(r.len())..]).unwrap_or("").to_owned();
        self.log.borrow_mut().push((req.method.to_owned(), path.clone(), body.clone()));
        let f = &self.faults;
        match (req.method, path.as_str()) {
            ("POST", "/action/findOne") => match body["filter"].get("authentikSubjectId") {
                Some(_) => ok(
                    200,
                    json!({"document": {"_id": {"$oid": "65a000000000000000000006"}, "authentikSubjectId": "caller",
                    "email": "alice@acme.test", "role": "owner", "active": true,
                    "tenantIds": [{"$oid": TENANT}], "tenantRoles": {TENANT: "owner"}}}),
                ),
                None => ok(200, json!({"document": null})),
            },
            ("POST", "/action/aggregate") => ok(
                200,
                json!({"documents": [{
                    "_id": {"$oid": TENANT}, "slug": "acme", "status": "active", "authentikGroupId": "g-acme",
                    "__domains": [{"_id": {"$oid": "65d000000000000000000001"}, "tenantId": {"$oid": TENANT}, "domain": "acme.test",
                        "isPrimary": true, "stalwartId": "b"}]
                }]}),
            ),
            ("POST", "/action/updateOne") => match f.user_upsert {
                Some(s) => ok(s, json!({"error": "write failed", "error_code": "InternalError"})),
                None => ok(200, json!({"matchedCount": 0, "modifiedCount": 0, "upsertedId": {"$oid": "65a0000000000000000000ff"}})),
            },
            ("POST", "/action/insertOne") => ok(200, json!({"insertedId": body["document"]["_id"]})),
            ("POST", "/action/deleteOne") => ok(200, json!({"deletedCount": 1})),
            ("POST", "/api/v3/core/users/") if f.identity_timeout => Err(TransportError::Timeout),
            ("POST", "/api/v3/core/users/") if f.identity_taken => ok(400, json!({"username": ["This field must be unique."]})),
            ("POST", "/api/v3/core/users/") => ok(
                201,
                json!({"pk": 500, "uid": "new-uid", "username": body["username"], "email": body["email"],
                    "name": body["name"], "attributes": body["attributes"]}),
            ),
            // The timed-out create happened: the identity carries what was sent.
            // By e-mail, or by the invitation nonce (this fake ignores the
            // filter, so the client's own check of the nonce is tested).
            ("GET", p) if p.starts_with("/api/v3/core/users/?email=") || p.starts_with("/api/v3/core/users/?attributes=") => ok(
                200,
                json!({"pagination": {}, "results": [
                {"pk": 500, "uid": "new-uid", "email": "jane@acme.test", "attributes": self.sent_attributes()}]}),
            ),
            ("POST", "/api/v3/core/users/500/set_password/") => match f.set_password {
                Some(s) => ok(s, json!({"detail": "nope"})),
                None => Ok(InboundResponse { status: 204, ..Default::default() }),
            },
            ("DELETE", "/api/v3/core/users/500/") => Ok(InboundResponse { status: 204, ..Default::default() }),
            ("POST", "/jmap/") => match (f.stalwart, body["methodCalls"][0][1].get("destroy")) {
                (_, Some(_)) => ok(200, json!({"methodResponses": [["x:Account/set", {"destroyed": ["m9"]}, "c0"]]})),
                (Some(s), None) => ok(s, json!({"detail": "mail is down"})),
                (None, None) if f.mailbox_taken => ok(
                    200,
                    json!({"methodResponses": [["x:Account/set", {"notCreated": {"n1": {
                    "type": "primaryKeyViolation", "properties": ["email"], "objectId": {"object": "Account", "id": "m1"}}}}, "c0"]]}),
                ),
                (None, None) => ok(200, json!({"methodResponses": [["x:Account/set", {"created": {"n1": {"id": "m9"}}}, "c0"]]})),
            },
            other => panic!("unexpected call {other:?}"),
        }
    }
}

fn b64(v: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(v)
}

/// A signing key, its inline JWKS, and a token for the caller.
fn token_and_jwks() -> (String, String) {
    let key = SigningKey::random(&mut rand_core::OsRng);
    let point = key.verifying_key().to_encoded_point(false);
    let jwks = json!({"keys": [{"kty": "EC", "crv": "P-256", "kid": "k1", "use": "sig", "alg": "ES256",
        "x": b64(point.x().unwrap()), "y": b64(point.y().unwrap())}]});
    let header = b64(&serde_json::to_vec(&json!({"alg": "ES256", "kid": "k1", "typ": "JWT"})).unwrap());
    let claims = b64(&serde_json::to_vec(&json!({"iss": "https://id/", "aud": "app", "sub": "caller", "exp": NOW + 3600})).unwrap());
    let signing_input = format!("{header}.{claims}");
    let sig: Signature = key.sign(signing_input.as_bytes());
    (format!("{signing_input}.{}", b64(&sig.to_bytes())), jwks.to_string())
}

fn run(faults: Faults, stalwart: bool) -> (u16, Value, Vec<(String, String, Value)>) {
    let (token, jwks) = token_and_jwks();
    let mut vars: HashMap<&str, String> = HashMap::from([
        ("data_api_url", "http://db".into()),
        ("data_api_key", "k".into()),
        ("authentik_url", "http://ak".into()),
        ("authentik_token", "t".into()),
        ("oidc_issuer", "https://id/".into()),
        ("oidc_audience", "app".into()),
        ("oidc_jwks", jwks),
    ]);
    if stalwart {
        vars.insert("stalwart_url", "http://mail".into());
        vars.insert("stalwart_token", "s".into());
    }
    let vars: HashMap<String, String> = vars.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
    let fake = Fake { faults, log: RefCell::new(vec![]) };
    let ctx = Ctx::new(fake, Box::new(move |k: &str| vars.get(k).cloned()), Box::<MemoryKeyValue>::default(), DateTime(NOW * 1000));
    let req = ApiRequest {
        method: "POST".into(),
        uri: "/tenants/acme/members/create".into(),
        authorization: Some(format!("Bearer {token}")),
        body: Some(br#"{"name": "Jane Doe", "localPart": " Jane ", "role": "member"}"#.to_vec()),
    };
    let out = futures::executor::block_on(shared::ops::members::create::run(&ctx, &req));
    let log = ctx.http.log.borrow().clone();
    match out {
        Ok(r) => (r.status, r.body.unwrap_or(Value::Null), log),
        Err(e) => (e.status(), json!(e.to_string()), log),
    }
}

fn calls<'a>(log: &'a [(String, String, Value)], method: &str, path: &str) -> Vec<&'a Value> {
    log.iter().filter(|(m, p, _)| m == method && p == path).map(|(_, _, b)| b).collect()
}

#[test]
fn happy_path_shares_one_password_and_takes_five_sequential_steps() {
    let (status, body, log) = run(Faults::default(), true);
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["email"], "jane@acme.test");
    let password = body["tempPassword"].as_str().unwrap();
    assert_eq!(calls(&log, "POST", "/api/v3/core/users/500/set_password/")[0]["password"], password);
    let created = calls(&log, "POST", "/jmap/")[0];
    assert_eq!(created["methodCalls"][0][1]["create"]["n1"]["credentials"]["0"]["secret"], password);
    assert_eq!(body["provisioning"], json!({"authentik": "ok", "stalwart": "ok", "ocis": "skipped"}));
    assert_eq!(body["ocisNote"], "auto-provisions on first sign-in");
    // Nothing written to the database holds the password.
    for (_, p, b) in &log {
        if p.starts_with("/action/") {
            assert!(!b.to_string().contains(password), "password reached {p}");
        }
    }
    let upsert = calls(&log, "POST", "/action/updateOne")[0];
    assert_eq!(upsert["update"]["$set"]["stalwartAccountId"], "m9");
    assert_eq!(upsert["update"]["$set"][format!("tenantRoles.{TENANT}")], "member");
}

#[test]
fn a_failed_user_write_deletes_the_identity_and_the_mailbox() {
    let (status, _, log) = run(Faults { user_upsert: Some(500), ..Faults::default() }, true);
    assert_eq!(status, 502);
    assert_eq!(calls(&log, "DELETE", "/api/v3/core/users/500/").len(), 1, "identity not undone");
    let jmap = calls(&log, "POST", "/jmap/");
    assert_eq!(jmap.len(), 2);
    assert_eq!(jmap[1]["methodCalls"][0][1]["destroy"], json!(["m9"]));
    // The audit event written concurrently is removed again, and the
    // failed user write too (a refused write may still have been stored
    // when its answer was lost): each by what only this request wrote.
    let deletes = calls(&log, "POST", "/action/deleteOne");
    let mut collections: Vec<&str> = deletes.iter().map(|d| d["collection"].as_str().unwrap()).collect();
    collections.sort();
    assert_eq!(collections, ["auditevents", "users"]);
    let user_delete = deletes.iter().find(|d| d["collection"] == "users").unwrap();
    assert!(user_delete["filter"]["authentikSubjectId"].is_string(), "only this request's identity's document: {user_delete}");
}

#[test]
fn a_failed_password_set_undoes_the_identity() {
    let (status, _, log) = run(Faults { set_password: Some(500), ..Faults::default() }, false);
    assert_eq!(status, 502);
    assert_eq!(calls(&log, "DELETE", "/api/v3/core/users/500/").len(), 1);
    assert!(calls(&log, "POST", "/action/updateOne").is_empty(), "no user document after a failed identity");
}

#[test]
fn a_mailbox_failure_is_reported_not_fatal() {
    let (status, body, log) = run(Faults { stalwart: Some(500), ..Faults::default() }, true);
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["provisioning"]["stalwart"], "error");
    assert!(body["stalwartError"].as_str().unwrap().contains("mail is down"));
    assert!(calls(&log, "DELETE", "/api/v3/core/users/500/").is_empty());
}

#[test]
fn an_identity_create_that_timed_out_is_found_and_deleted() {
    let (status, _, log) = run(Faults { identity_timeout: true, ..Faults::default() }, false);
    assert_eq!(status, 504);
    assert_eq!(calls(&log, "DELETE", "/api/v3/core/users/500/").len(), 1, "the identity carrying our invitation nonce goes");
    assert!(calls(&log, "POST", "/action/updateOne").is_empty());
}

#[test]
fn an_identity_create_that_timed_out_never_deletes_a_concurrent_requests_identity() {
    let (status, _, log) = run(Faults { identity_timeout: true, found_concurrent: true, ..Faults::default() }, false);
    assert_eq!(status, 504);
    let found = calls(&log, "POST", "/api/v3/core/users/")[0];
    assert_eq!(found["attributes"]["invitedAt"], DateTime(NOW * 1000).to_iso(), "same millisecond, same invitedAt");
    assert!(calls(&log, "DELETE", "/api/v3/core/users/500/").is_empty(), "the other request's identity stays");
}

#[test]
fn a_create_that_lost_the_race_is_a_conflict_and_undoes_nothing() {
    let (status, body, log) = run(Faults { identity_taken: true, ..Faults::default() }, true);
    assert_eq!(status, 409, "{body}");
    assert_eq!(body, "jane@acme.test already exists in this workspace.");
    assert!(
        log.iter().all(|(m, p, _)| m != "DELETE" && p != "/action/deleteOne" && p != "/jmap/"),
        "nothing written, nothing undone: {log:?}"
    );
}

#[test]
fn a_mailbox_address_held_by_another_account_is_reported_and_never_deleted() {
    let (status, body, log) = run(Faults { mailbox_taken: true, ..Faults::default() }, true);
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["provisioning"]["stalwart"], "error");
    assert!(body["stalwartError"].as_str().unwrap().contains("primaryKeyViolation"));
    assert_eq!(calls(&log, "POST", "/jmap/").len(), 1, "no destroy of the account that holds the address");
}

#[test]
fn a_mailbox_taken_then_a_failed_user_write_deletes_only_this_requests_identity() {
    let (status, _, log) = run(Faults { mailbox_taken: true, user_upsert: Some(500), ..Faults::default() }, true);
    assert_eq!(status, 502);
    assert_eq!(calls(&log, "DELETE", "/api/v3/core/users/500/").len(), 1);
    assert_eq!(calls(&log, "POST", "/jmap/").len(), 1, "the other account's mailbox is not destroyed");
}

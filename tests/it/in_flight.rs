//! Every concurrent join in `shared::ops`, with one branch failing while a
//! sibling call is held in flight (issue 19, point 1).
//!
//! The emulators answer in microseconds, so without a hold no call is ever
//! in flight when its sibling fails, and a join that drops its siblings (or
//! an outbound call whose resources drop parent-first) goes unseen. Here
//! the sibling is delayed, the failing branch answers at once, and each
//! case checks: a problem answer (never a 500 or an empty body), a trap
//! count of 0 in the runtime, both faults really hit, and the compensation
//! complete (nothing half-written anywhere).

use e2e::calls::*;
use e2e::*;
use serde_json::{json, Value};

/// How long the sibling is held: far longer than the failing branch takes.
const HOLD_MS: u64 = 700;
/// Longer than the harness's `upstream_timeout_ms` (1500): a timeout.
const TIMEOUT_MS: u64 = 2500;

/// What must hold once the request has answered.
#[derive(Clone, Copy)]
enum After {
    /// Every system exactly as before (reads, and writes fully undone).
    Unchanged,
    /// Nothing anywhere of the person at this address: no identity,
    /// document, mailbox, file account or audit event.
    NoTraceOf(&'static str),
    /// A route-specific check against the world before.
    Check(fn(&Env, &Value)),
}

struct Case {
    name: &'static str,
    method: &'static str,
    path: String,
    caller: &'static User,
    body: Option<Value>,
    /// The branch that fails, and how.
    fail: (System, FaultRule),
    /// The sibling held in flight meanwhile.
    hold: (System, FaultRule),
    /// The answer's status: a problem, or a success where the failing
    /// branch is best-effort.
    status: u16,
    after: After,
}

fn case(name: &'static str, method: &'static str, path: impl Into<String>, caller: &'static User, body: Option<Value>) -> CaseBuilder {
    CaseBuilder(Case {
        name,
        method,
        path: path.into(),
        caller,
        body,
        fail: (System::DataApi, FaultRule::new("/unset", Fault::Status(500))),
        hold: (System::DataApi, FaultRule::new("/unset", Fault::DelayMs(HOLD_MS))),
        status: 502,
        after: After::Unchanged,
    })
}

struct CaseBuilder(Case);

impl CaseBuilder {
    /// The failing rule fires once, unless it says how often (an undo
    /// step is retried: a lasting failure needs three).
    fn fail(mut self, system: System, rule: FaultRule) -> Self {
        let times = rule.times.unwrap_or(1);
        self.0.fail = (system, rule.times(times));
        self
    }
    fn hold(mut self, system: System, rule: FaultRule) -> Self {
        self.0.hold = (system, rule.times(1));
        self
    }
    fn status(mut self, status: u16) -> Self {
        self.0.status = status;
        self
    }
    fn after(mut self, after: After) -> Case {
        self.0.after = after;
        self.0
    }
}

fn held() -> Fault {
    Fault::DelayMs(HOLD_MS)
}
fn timeout() -> Fault {
    Fault::DelayMs(TIMEOUT_MS)
}

fn invite(email: &str) -> Option<Value> {
    Some(json!({"name": "Held Person", "email": email}))
}

fn member_path(tenant: &Tenant, user: &User, action: &str) -> String {
    format!("/tenants/{}/members/{}/{action}", tenant.slug, user.id)
}

/// The member's document is as it was, and no audit event was added.
fn member_doc_kept(env: &Env, before: &Value, user: &User) {
    let doc = env.find("users", json!({"_id": oid(user.id)}));
    let was: Vec<Value> = before["db"]["users"].as_array().unwrap().iter().filter(|d| d["_id"] == oid(user.id)).cloned().collect();
    assert_eq!(doc, was, "the member's document is as it was");
    assert_eq!(env.snapshot()["auditevents"], before["db"]["auditevents"], "no audit event");
}

/// A removal that failed half-way: the member is still findable, no
/// audit event was left, and the document names none of the accounts
/// already deleted (the mailbox; the identity when `identity_gone`), so a
/// retry finishes the removal.
fn removal_recorded(env: &Env, before: &Value, user: &User, identity_gone: bool) {
    let docs = env.find("users", json!({"_id": oid(user.id)}));
    assert_eq!(docs.len(), 1, "the member is still findable");
    let doc = &docs[0];
    assert_eq!(env.snapshot()["auditevents"], before["db"]["auditevents"], "no audit event");
    assert!(env.stalwart().accounts().iter().all(|a| a.id != user.stalwart_account.unwrap()), "the mailbox was deleted");
    assert!(
        doc.get("stalwartAccountId").is_none() && doc["provisioning"].get("stalwart").is_none(),
        "the document still names the mailbox: {doc}"
    );
    let identity = env.authentik().users().iter().any(|u| u.pk == user.pk);
    assert_eq!(identity, !identity_gone, "the identity");
    assert_eq!(doc.get("authentikUserPk").is_some(), !identity_gone, "the document names the identity as it stands: {doc}");
}

fn cases() -> Vec<Case> {
    use System::*;
    let nw = format!("/partners/{}/users/invite", NORTHWIND.slug);
    let ta = format!("/tenants/{}/admins/invite", ACME.slug);
    vec![
        // ---- invites (rows 7, 10, 31): invite::run -----------------------
        case(
            "row 7: the password fails while its expiry marker is in flight",
            "POST",
            "/platform/operators/invite",
            &OPERATOR,
            invite("held@dezky.test"),
        )
        .fail(Authentik, ak_set_password(status(500)))
        .hold(Authentik, ak_patch_user(held()))
        .after(After::NoTraceOf("held@dezky.test")),
        case(
            "row 7: the expiry marker fails while the password is in flight",
            "POST",
            "/platform/operators/invite",
            &OPERATOR,
            invite("held@dezky.test"),
        )
        .fail(Authentik, ak_patch_user(status(500)))
        .hold(Authentik, ak_set_password(held()))
        .after(After::NoTraceOf("held@dezky.test")),
        case(
            "row 7: the audit write fails while the password is in flight",
            "POST",
            "/platform/operators/invite",
            &OPERATOR,
            invite("held@dezky.test"),
        )
        .fail(DataApi, db("insertOne", "auditevents", status(500)))
        .hold(Authentik, ak_set_password(held()))
        .after(After::NoTraceOf("held@dezky.test")),
        case(
            "row 7: the password's connection drops while the audit write is in flight",
            "POST",
            "/platform/operators/invite",
            &OPERATOR,
            invite("held@dezky.test"),
        )
        .fail(Authentik, ak_set_password(Fault::Drop))
        .hold(DataApi, db("insertOne", "auditevents", held()))
        .after(After::NoTraceOf("held@dezky.test")),
        case(
            "row 7: the recovery link fails while the document is in flight",
            "POST",
            "/platform/operators/invite",
            &OPERATOR,
            invite("held@dezky.test"),
        )
        .fail(Authentik, ak_recovery(status(500)))
        .hold(DataApi, db("updateOne", "users", held()))
        .after(After::NoTraceOf("held@dezky.test")),
        case(
            "row 7: the document times out while the recovery link is in flight",
            "POST",
            "/platform/operators/invite",
            &OPERATOR,
            invite("held@dezky.test"),
        )
        .fail(DataApi, db("updateOne", "users", timeout()))
        .hold(Authentik, ak_recovery(held()))
        .status(504)
        .after(After::NoTraceOf("held@dezky.test")),
        case(
            "row 7: the identity lookup fails while the group read is in flight",
            "POST",
            "/platform/operators/invite",
            &OPERATOR,
            invite("held@dezky.test"),
        )
        .fail(Authentik, ak_find_user(status(500)))
        .hold(Authentik, ak_find_group(held()))
        .after(After::Unchanged),
        case(
            "row 10: the password fails while its expiry marker is in flight",
            "POST",
            nw.clone(),
            &NORTHWIND_OWNER,
            invite("held@northwind.test"),
        )
        .fail(Authentik, ak_set_password(status(500)))
        .hold(Authentik, ak_patch_user(held()))
        .after(After::NoTraceOf("held@northwind.test")),
        case("row 10: the partner read fails while the caller is read", "POST", nw, &NORTHWIND_OWNER, invite("held@northwind.test"))
            .fail(DataApi, db("findOne", "partners", status(500)))
            .hold(DataApi, db_naming("findOne", NORTHWIND_OWNER.sub, held()))
            .after(After::Unchanged),
        case(
            "row 31: the expiry marker fails while the password is in flight",
            "POST",
            ta.clone(),
            &NORTHWIND_OWNER,
            invite("held@acme.test"),
        )
        .fail(Authentik, ak_patch_user(status(500)))
        .hold(Authentik, ak_set_password(held()))
        .after(After::NoTraceOf("held@acme.test")),
        case("row 31: the password fails while its expiry marker is in flight", "POST", ta, &NORTHWIND_OWNER, invite("held@acme.test"))
            .fail(Authentik, ak_set_password(status(503)))
            .hold(Authentik, ak_patch_user(held()))
            .after(After::NoTraceOf("held@acme.test")),
        // ---- row 18: members-create --------------------------------------
        case(
            "row 18: the password fails while the mailbox is created",
            "POST",
            "/tenants/acme/members/create",
            &ACME_OWNER,
            Some(json!({"name": "Held Person", "localPart": "held", "role": "member"})),
        )
        .fail(Authentik, ak_set_password(status(500)))
        .hold(Stalwart, mail_set(held()))
        .after(After::NoTraceOf("held@acme.test")),
        case(
            "row 18: the password fails while the file account is created",
            "POST",
            "/tenants/acme/members/create",
            &ACME_OWNER,
            Some(json!({"name": "Held Person", "localPart": "held", "role": "member"})),
        )
        .fail(Authentik, ak_set_password(Fault::Drop))
        .hold(Ocis, files_create(held()))
        .after(After::NoTraceOf("held@acme.test")),
        case(
            "row 18: the audit write fails while the document is in flight",
            "POST",
            "/tenants/acme/members/create",
            &ACME_OWNER,
            Some(json!({"name": "Held Person", "localPart": "held", "role": "member"})),
        )
        .fail(DataApi, db("insertOne", "auditevents", status(500)))
        .hold(DataApi, db("updateOne", "users", held()))
        .after(After::NoTraceOf("held@acme.test")),
        case(
            "row 18: the document times out while the audit write is in flight",
            "POST",
            "/tenants/acme/members/create",
            &ACME_OWNER,
            Some(json!({"name": "Held Person", "localPart": "held", "role": "member"})),
        )
        .fail(DataApi, db("updateOne", "users", timeout()))
        .hold(DataApi, db("insertOne", "auditevents", held()))
        .status(504)
        .after(After::NoTraceOf("held@acme.test")),
        case(
            "row 18: the caller read fails while the tenant is read",
            "POST",
            "/tenants/acme/members/create",
            &ACME_OWNER,
            Some(json!({"name": "Held Person", "localPart": "held", "role": "member"})),
        )
        .fail(DataApi, db_naming("findOne", ACME_OWNER.sub, status(500)))
        .hold(DataApi, db("aggregate", "tenants", held()))
        .after(After::Unchanged),
        // ---- rows 19–23: a member's lifecycle -----------------------------
        case(
            "row 19: the identity delete fails (every try) while the mailbox is deleted",
            "POST",
            member_path(&ACME, &ACME_MEMBER, "remove"),
            &ACME_OWNER,
            None,
        )
        .fail(Authentik, ak_delete_user(status(500)).times(shared::retry::ATTEMPTS as u32))
        .hold(Stalwart, mail_set(held()))
        .after(After::Check(|env, before| removal_recorded(env, before, &ACME_MEMBER, false))),
        case(
            "row 19: the audit write fails while the document is deleted",
            "POST",
            member_path(&ACME, &ACME_MEMBER, "remove"),
            &ACME_OWNER,
            None,
        )
        .fail(DataApi, db("insertOne", "auditevents", status(500)))
        .hold(DataApi, db("deleteOne", "users", held()))
        .after(After::Check(|env, before| removal_recorded(env, before, &ACME_MEMBER, true))),
        case(
            "row 19: the caller read fails while the member is read",
            "POST",
            member_path(&ACME, &ACME_MEMBER, "remove"),
            &ACME_OWNER,
            None,
        )
        .fail(DataApi, db_naming("findOne", ACME_OWNER.sub, status(500)))
        .hold(DataApi, db_naming("findOne", ACME_MEMBER.id, held()))
        .after(After::Unchanged),
        case(
            "row 20: the identity fails while the mailbox's permissions are read",
            "POST",
            member_path(&ACME, &ACME_MEMBER, "suspend"),
            &ACME_OWNER,
            None,
        )
        .fail(Authentik, ak_patch_user(status(500)))
        .hold(Stalwart, mail_get(held()))
        .after(After::Unchanged),
        case(
            "row 20: the audit write fails while the mailbox is suspended",
            "POST",
            member_path(&ACME, &ACME_MEMBER, "suspend"),
            &ACME_OWNER,
            None,
        )
        .fail(DataApi, db("insertOne", "auditevents", status(500)))
        .hold(Stalwart, mail_set(held()))
        .after(After::Unchanged),
        case(
            "row 23: the password fails while the mailbox's credential is read",
            "POST",
            member_path(&ACME, &ACME_MEMBER, "reset-password"),
            &ACME_OWNER,
            None,
        )
        .fail(Authentik, ak_set_password(status(500)))
        .hold(Stalwart, mail_get(held()))
        .after(After::Unchanged),
        case(
            "row 22: one session's end fails while another's is in flight",
            "POST",
            member_path(&ACME, &ACME_MEMBER, "logout"),
            &ACME_OWNER,
            None,
        )
        .fail(Authentik, FaultRule::new("/api/v3/core/authenticated_sessions/*/$", status(500)).method("DELETE"))
        .hold(Authentik, FaultRule::new("/api/v3/core/authenticated_sessions/*/$", held()).method("DELETE"))
        .after(After::Check(|env, before| member_doc_kept(env, before, &ACME_MEMBER))),
        // ---- rows 24, 25: profile -----------------------------------------
        // Best-effort syncs after the write: a failing one does not fail the
        // update, and nothing traps.
        case(
            "row 24: the identity sync fails while the mailbox name sync is in flight",
            "POST",
            member_path(&ACME, &ACME_MEMBER, "update"),
            &ACME_OWNER,
            Some(json!({"name": "Held Name"})),
        )
        .fail(Authentik, ak_patch_user(status(500)))
        .hold(Stalwart, mail_set(held()))
        .status(200)
        .after(After::Check(|env, _| assert_eq!(env.find("auditevents", json!({"action": "tenant.user_updated"})).len(), 1))),
        case(
            "row 24: the audit write fails while the identity is read",
            "POST",
            member_path(&ACME, &ACME_MEMBER, "update"),
            &ACME_OWNER,
            Some(json!({"name": "Held Name"})),
        )
        .fail(DataApi, db("insertOne", "auditevents", status(500)))
        .hold(Authentik, ak_get_user(ACME_MEMBER.pk, held()))
        .after(After::Unchanged),
        case(
            "row 25: the address lookup fails while the identity is read",
            "POST",
            member_path(&ACME, &ACME_INACTIVE_ADMIN, "change-email"),
            &ACME_OWNER,
            Some(json!({"email": "held.new@acme.test"})),
        )
        .fail(DataApi, db_naming("findOne", "held.new@acme.test", status(500)))
        .hold(Authentik, ak_get_user(ACME_INACTIVE_ADMIN.pk, held()))
        .after(After::Unchanged),
        // ---- row 30: ownership transfer -----------------------------------
        case(
            "row 30: the other members' read fails while the promotion is in flight",
            "POST",
            "/tenants/acme/ownership/transfer",
            &ACME_OWNER,
            Some(json!({"userId": ACME_ADMIN.id})),
        )
        .fail(DataApi, db("find", "users", status(500)))
        .hold(DataApi, db("updateOne", "users", held()))
        .after(After::Check(roles_as_before)),
        case(
            "row 30: the audit write fails while the previous owner is demoted",
            "POST",
            "/tenants/acme/ownership/transfer",
            &ACME_OWNER,
            Some(json!({"userId": ACME_ADMIN.id})),
        )
        .fail(DataApi, db("insertOne", "auditevents", status(500)))
        .hold(DataApi, db("updateMany", "users", held()))
        .after(After::Check(roles_as_before)),
        // ---- row 12: partner-team-remove ----------------------------------
        case(
            "row 12: the target read fails while the staff group is read",
            "POST",
            format!("/users/me/partner/users/{}/remove", NORTHWIND_STAFF.sub),
            &NORTHWIND_OWNER,
            None,
        )
        .fail(DataApi, db("aggregate", "users", status(500)))
        .hold(Authentik, ak_find_group(held()))
        .after(After::Unchanged),
        case(
            "row 12: the audit write fails while the removal is written",
            "POST",
            format!("/users/me/partner/users/{}/remove", NORTHWIND_STAFF.sub),
            &NORTHWIND_OWNER,
            None,
        )
        .fail(DataApi, db("insertOne", "auditevents", status(500)))
        .hold(DataApi, db("updateOne", "users", held()))
        .after(After::Unchanged),
        // ---- reads beside the prologue ------------------------------------
        case("row 1: the read fails while the sign-in is recorded", "GET", "/users/me", &ACME_MEMBER, None)
            .fail(DataApi, db("aggregate", "users", status(500)))
            .hold(DataApi, db("updateOne", "users", held()))
            .after(After::Check(|_, _| {})),
        case("row 3: the named user's read fails while the caller is read", "GET", format!("/users/{}", ACME_MEMBER.sub), &OPERATOR, None)
            .fail(DataApi, db_naming("findOne", ACME_MEMBER.sub, status(500)))
            .hold(DataApi, db_naming("findOne", OPERATOR.sub, held()))
            .after(After::Unchanged),
        case(
            "row 4: the tenants' read fails while the subject is checked",
            "POST",
            "/users/create",
            &OPERATOR,
            Some(json!({"authentikSubjectId": "held-sub", "email": "held@acme.test", "name": "Held", "tenantSlugs": ["acme"]})),
        )
        .fail(DataApi, db("find", "tenants", status(500)))
        .hold(DataApi, db_naming("findOne", "held-sub", held()))
        .after(After::Unchanged),
        case(
            "row 6: the caller read fails while the named user is read",
            "POST",
            format!("/users/{}/deactivate", ACME_MEMBER.sub),
            &OPERATOR,
            None,
        )
        .fail(DataApi, db_naming("findOne", OPERATOR.sub, Fault::Drop))
        .hold(DataApi, db_naming("findOne", ACME_MEMBER.sub, held()))
        .after(After::Unchanged),
        case(
            "row 5: the tenants' read fails while the named user is read",
            "POST",
            format!("/users/{}/update", ACME_MEMBER.sub),
            &OPERATOR,
            Some(json!({"name": "Held", "tenantSlugs": ["acme", "globex"]})),
        )
        .fail(DataApi, db("find", "tenants", status(500)))
        .hold(DataApi, db_naming("findOne", ACME_MEMBER.sub, held()))
        .after(After::Unchanged),
        // A change that fails beside its audit event takes the event back
        // (its delete is a right these routes' keys must hold: rights.rs).
        case(
            "row 5: the user's write fails while its audit event is written",
            "POST",
            format!("/users/{}/update", ACME_MEMBER.sub),
            &OPERATOR,
            Some(json!({"name": "Held"})),
        )
        .fail(DataApi, db("updateOne", "users", status(500)))
        .hold(DataApi, db("insertOne", "auditevents", held()))
        .after(After::Unchanged),
        case(
            "row 6: the deactivation's write fails while its audit event is written",
            "POST",
            format!("/users/{}/deactivate", ACME_MEMBER.sub),
            &OPERATOR,
            None,
        )
        .fail(DataApi, db("updateOne", "users", status(500)))
        .hold(DataApi, db("insertOne", "auditevents", held()))
        .after(After::Unchanged),
        case(
            "row 21: the resumed member's write fails while its audit event is written",
            "POST",
            member_path(&ACME, &ACME_INACTIVE_ADMIN, "resume"),
            &ACME_OWNER,
            None,
        )
        .fail(DataApi, db("updateOne", "users", status(500)))
        .hold(DataApi, db("insertOne", "auditevents", held()))
        .after(After::Unchanged),
        case(
            "row 7: the caller read fails while the identity is looked up",
            "POST",
            "/platform/operators/invite",
            &OPERATOR,
            invite("held@dezky.test"),
        )
        .fail(DataApi, db_naming("findOne", OPERATOR.sub, status(500)))
        .hold(Authentik, ak_find_user(held()))
        .after(After::Unchanged),
        case("row 11: one authenticator count fails while another is in flight", "GET", "/users/me/partner/users", &NORTHWIND_OWNER, None)
            .fail(Authentik, FaultRule::new("/api/v3/authenticators/admin/all/", status(500)).method("GET"))
            .hold(Authentik, FaultRule::new("/api/v3/authenticators/admin/all/", held()).method("GET"))
            .status(200)
            .after(After::Unchanged),
        case("row 8: the subscriptions' read fails while the tenants are read", "GET", "/platform/reports", &OPERATOR, None)
            .fail(DataApi, db("aggregate", "subscriptions", status(500)))
            .hold(DataApi, db("aggregate", "tenants", held()))
            .after(After::Unchanged),
        case("row 9: the partner read fails while the caller is read", "GET", "/partners/northwind/users", &OPERATOR, None)
            .fail(DataApi, db("findOne", "partners", status(500)))
            .hold(DataApi, db_naming("findOne", OPERATOR.sub, held()))
            .after(After::Unchanged),
        case("row 16: the partner read fails while the tenants are aggregated", "GET", "/users/me/partner/reports", &NORTHWIND_OWNER, None)
            .fail(DataApi, db("findOne", "partners", status(500)))
            .hold(DataApi, db("aggregate", "tenants", held()))
            .after(After::Unchanged),
        case("row 17: the tenant read fails while the caller is read", "GET", "/tenants/acme/members", &ACME_OWNER, None)
            .fail(DataApi, db("aggregate", "tenants", status(500)))
            .hold(DataApi, db_naming("findOne", ACME_OWNER.sub, held()))
            .after(After::Unchanged),
    ]
}

/// Every role entry in acme as before (the promotion was put back).
fn roles_as_before(env: &Env, before: &Value) {
    let roles = |users: &Value| -> Vec<(Value, Value)> {
        let mut v: Vec<(Value, Value)> =
            users.as_array().unwrap().iter().map(|u| (u["_id"].clone(), u["tenantRoles"][ACME.id].clone())).collect();
        v.sort_by_key(|(id, _)| id.to_string());
        v
    };
    assert_eq!(roles(&env.snapshot()["users"]), roles(&before["db"]["users"]));
    assert_eq!(env.snapshot()["auditevents"], before["db"]["auditevents"], "no audit event");
}

fn no_trace_of(env: &Env, email: &str) {
    let found = json!({
        "identities": env.authentik().users().iter().filter(|u| u.email == email || u.username == email).count(),
        "documents": env.find("users", json!({"email": email})).len(),
        "mailboxes": env.stalwart().accounts().iter().filter(|a| env.stalwart().email_address_of(&a.id).as_deref() == Some(email)).count(),
        "files": env.ocis().users().iter().filter(|u| u.username == email).count(),
        "audit": env.find("auditevents", json!({"resourceName": email})).len(),
    });
    assert_eq!(found, json!({"identities": 0, "documents": 0, "mailboxes": 0, "files": 0, "audit": 0}));
}

/// Runs one case in a fresh world; returns what went wrong, if anything.
async fn run(c: &Case) -> Result<(), String> {
    let env = Env::start().await;
    let before = env.world();
    env.inject(c.fail.0, c.fail.1.clone());
    env.inject(c.hold.0, c.hold.1.clone());
    let token = env.token(c.caller);
    let body = c.body.as_ref().map(Value::to_string);
    let r = env.call(c.method, &c.path, Some(&token), body.as_deref()).await;
    // The compensation has finished before the answer; but a trap in the
    // guest after the head is logged a moment later: let it show.
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let outcome = std::panic::AssertUnwindSafe(async {
        assert_eq!(env.traps(), 0, "the runtime logged a trap:\n{}", env.trap_log());
        assert_eq!(r.status, c.status, "{}", r.text);
        if c.status >= 400 {
            assert_eq!(r.header("content-type"), Some("application/problem+json"), "{}", r.text);
            assert_eq!(r.json()["status"], c.status, "{}", r.text);
        }
        for (what, (system, rule)) in [("failing", &c.fail), ("held", &c.hold)] {
            let left = env.controls(*system).faults.rules();
            assert!(
                left.iter().all(|l| l.path_prefix != rule.path_prefix || l.body_contains != rule.body_contains),
                "the {what} call was never made: {rule:?}"
            );
        }
        match c.after {
            After::Unchanged => assert_eq!(env.world(), before, "something changed"),
            After::NoTraceOf(email) => no_trace_of(&env, email),
            After::Check(check) => check(&env, &before),
        }
    });
    futures_catch(outcome).await
}

async fn futures_catch(f: impl std::future::Future<Output = ()>) -> Result<(), String> {
    use futures::FutureExt;
    std::panic::AssertUnwindSafe(f)
        .catch_unwind()
        .await
        .map_err(|p| p.downcast_ref::<String>().cloned().or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string())).unwrap_or_default())
}

/// All cases, four at a time; every failure is reported, not just the first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_branch_with_a_sibling_in_flight_answers_a_problem_and_leaves_nothing_half_written() {
    use futures::StreamExt;
    let cases = cases();
    let results: Vec<(&Case, Result<(), String>)> =
        futures::stream::iter(cases.iter()).map(|c| async move { (c, run(c).await) }).buffer_unordered(4).collect().await;
    let failures: Vec<String> = results.iter().filter_map(|(c, r)| r.as_ref().err().map(|e| format!("- {}: {e}", c.name))).collect();
    assert!(failures.is_empty(), "{} of {} cases failed on {:?}:\n{}", failures.len(), cases.len(), runtime(), failures.join("\n"));
}

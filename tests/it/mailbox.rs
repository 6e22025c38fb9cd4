//! Row 29 end to end: a mailbox for a member who has none, with the mail
//! server, the identity, the database and the audit log checked.

use crate::members_ii::*;
use e2e::*;
use serde_json::{json, Value};

async fn create(env: &Env, tenant: &str, id: &str, who: &User, body: Value) -> Resp {
    env.post(&member_path(tenant, id, "mailbox/create"), who, body).await
}

fn mailbox_count(env: &Env) -> usize {
    env.stalwart().accounts().len()
}

#[tokio::test]
async fn a_mailbox_for_the_bootstrap_admin() {
    let env = Env::start().await;
    let before = env.world();
    let doc_before = user_doc(&env, ACME_INACTIVE_ADMIN.id);
    let identity_before = env.authentik().user(ACME_INACTIVE_ADMIN.pk).unwrap();

    let r = create(&env, "acme", ACME_INACTIVE_ADMIN.id, &NORTHWIND_STAFF, json!({"localPart": " Ivan.I "})).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let body = r.json();
    assert_eq!(body["email"], "ivan.i@acme.test", "the primary domain");
    let password = body["tempPassword"].as_str().unwrap().to_owned();
    assert_eq!(password.len(), 16);
    let doc = user_doc(&env, ACME_INACTIVE_ADMIN.id);
    let id = doc["stalwartAccountId"].as_str().expect("handle stored").to_owned();
    assert_eq!(doc["mailboxAddress"], "ivan.i@acme.test");
    assert_eq!(doc["email"], "ivan@acme.test", "the sign-in address changed");
    assert_eq!(doc["provisioning"]["stalwart"], "ok");
    assert_eq!(doc["provisioning"]["authentik"], doc_before["provisioning"]["authentik"], "other provisioning fields kept");
    assert_eq!(body["user"]["stalwartAccountId"], json!(id));
    assert_eq!(body["user"]["_id"], ACME_INACTIVE_ADMIN.id);
    assert_eq!(body["user"]["mailboxAddress"], "ivan.i@acme.test");
    // The mail server has it, with the password of the answer and the member's name.
    assert_eq!(env.stalwart().email_address_of(&id).as_deref(), Some("ivan.i@acme.test"));
    assert_eq!(env.stalwart().password_of(&id), Some(password.clone()));
    assert_eq!(env.stalwart().account(&id).unwrap().description.as_deref(), Some(ACME_INACTIVE_ADMIN.name));
    // Identity and files untouched; the password only went to the mail server.
    assert_eq!(env.authentik().user(ACME_INACTIVE_ADMIN.pk).unwrap(), identity_before);
    assert_eq!(env.world()["ocis"], before["ocis"]);
    assert_eq!(env.carriers_of(&password), vec!["POST /jmap/".to_owned()]);
    assert!(!env.snapshot().to_string().contains(&password));
    let audit = events(&env, "tenant.user_mailbox_created");
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0]["metadata"], json!({"mailbox": "ivan.i@acme.test", "signIn": "ivan@acme.test"}));
    assert_eq!(
        (audit[0]["resourceId"].as_str(), audit[0]["resourceName"].as_str()),
        (Some(ACME_INACTIVE_ADMIN.sub), Some("ivan.i@acme.test"))
    );
    assert_eq!(audit[0]["actor"]["email"], NORTHWIND_STAFF.email);

    // The member now has one: a second is refused.
    let r = create(&env, "acme", ACME_INACTIVE_ADMIN.id, &ACME_OWNER, json!({"localPart": "again"})).await;
    assert_eq!((r.status, r.detail().as_str()), (409, "This member already has a mailbox."));
}

#[tokio::test]
async fn the_domain_is_the_named_one_else_the_primary_else_the_oldest() {
    let env = Env::start().await;
    insert_member(&env, "65a0000000000000000000e1", "a@home.test", ACME.id, "member");
    let r = create(&env, "acme", "65a0000000000000000000e1", &ACME_OWNER, json!({"localPart": "a", "domain": "MAIL.acme.test"})).await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.json()["email"], "a@mail.acme.test");

    // initech has no primary; its oldest domain by createdAt has the higher _id.
    insert_member(&env, "65a0000000000000000000e2", "b@home.test", INITECH.id, "member");
    let r = create(&env, "initech", "65a0000000000000000000e2", &INITECH_ADMIN, json!({"localPart": "b"})).await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.json()["email"], "b@initech-legacy.test");
    assert_eq!(env.stalwart().account_by_email("b@initech-legacy.test").map(|a| a.domain_id), Some("g".to_owned()));
}

#[tokio::test]
async fn refusals_change_nothing() {
    let env = Env::start().await;
    let (ivan, doc_only) = (ACME_INACTIVE_ADMIN.id, "65a0000000000000000000e3");
    insert_member(&env, doc_only, "c@home.test", HOOLI.id, "admin");
    // A domain of acme's that the mail server does not know.
    env.db().insert(
        "dezky",
        "domains",
        json!({"_id": oid("65d0000000000000000000f1"), "tenantId": oid(ACME.id), "domain": "nomail.acme.test", "isPrimary": false}),
    );
    let before = everything(&env);
    for (what, tenant, id, body, status, detail) in [
        ("has a mailbox", "acme", ACME_MEMBER.id, json!({"localPart": "x"}), 409, "This member already has a mailbox."),
        (
            "another workspace's domain",
            "acme",
            ivan,
            json!({"localPart": "x", "domain": "globex.test"}),
            400,
            "globex.test isn’t a provisioned mail domain for this workspace.",
        ),
        (
            "not on the mail server",
            "acme",
            ivan,
            json!({"localPart": "x", "domain": "nomail.acme.test"}),
            400,
            "nomail.acme.test isn’t a provisioned mail domain for this workspace.",
        ),
        (
            "no domain at all",
            "hooli",
            doc_only,
            json!({"localPart": "x"}),
            400,
            "Add a domain to this workspace before creating a mailbox.",
        ),
        (
            "bad prefix",
            "acme",
            ivan,
            json!({"localPart": "iv an"}),
            400,
            "The address prefix may only contain letters, numbers, dots, hyphens and underscores.",
        ),
        ("address in use", "acme", ivan, json!({"localPart": "Alice"}), 409, "alice@acme.test is already in use."),
    ] {
        let r = create(&env, tenant, id, &OPERATOR, body).await;
        assert_eq!((r.status, r.detail().as_str()), (status, detail), "{what}: {}", r.text);
    }
    for body in
        [json!({"localPart": {"$ne": ""}}), json!({}), json!({"localPart": "x", "role": "admin"}), json!({"localPart": "x", "domain": 1})]
    {
        assert_eq!(create(&env, "acme", ivan, &OPERATOR, body.clone()).await.status, 400, "{body}");
    }
    assert_eq!(everything(&env), before, "a refused create changed something");

    let env = Env::start_with(|vars, _| {
        vars.insert("stalwart_token".into(), String::new());
    })
    .await;
    let before = everything(&env);
    let r = create(&env, "acme", ivan, &OPERATOR, json!({"localPart": "x"})).await;
    assert_eq!((r.status, r.detail().as_str()), (400, "Mail provisioning is disabled — can’t create a mailbox right now."));
    assert_eq!(everything(&env), before);
}

#[tokio::test]
async fn failures_leave_no_mailbox_and_no_change() {
    struct Case {
        what: &'static str,
        fault: fn(&Env),
    }
    for case in [
        Case { what: "mail server down", fault: |e| e.fail(&e.emu.stalwart().controls, FaultRule::new("/jmap", Fault::Status(500))) },
        Case { what: "mail server dropped", fault: |e| e.fail(&e.emu.stalwart().controls, FaultRule::new("/jmap", Fault::Drop)) },
        // After the mailbox was created: it must go again.
        Case { what: "document write", fault: |e| e.fail_data_api(FaultRule::new("/action/updateOne", Fault::Status(500))) },
        Case { what: "document write dropped", fault: |e| e.fail_data_api(FaultRule::new("/action/updateOne", Fault::Drop)) },
        Case { what: "audit write", fault: |e| e.fail_data_api(FaultRule::new("/action/insertOne", Fault::Status(500))) },
    ] {
        let env = Env::start().await;
        let before = everything(&env);
        (case.fault)(&env);
        let r = create(&env, "acme", ACME_INACTIVE_ADMIN.id, &ACME_OWNER, json!({"localPart": "ivan.i"})).await;
        assert_eq!(r.status, 502, "{}: {}", case.what, r.text);
        assert!(env.stalwart().account_by_email("ivan.i@acme.test").is_none(), "{}: an orphan mailbox", case.what);
        assert_eq!(everything(&env), before, "{}", case.what);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_creates_make_one_mailbox() {
    let path = member_path("acme", ACME_INACTIVE_ADMIN.id, "mailbox/create");
    // Identical requests: the mail server refuses all but one address.
    let env = Env::start().await;
    let mailboxes = mailbox_count(&env);
    let rs = concurrently(&env, 12, &path, &ACME_OWNER, json!({"localPart": "ivan.i"})).await;
    let won = one_winner(&rs, 201).json();
    assert_eq!(mailbox_count(&env), mailboxes + 1);
    assert_eq!(user_doc(&env, ACME_INACTIVE_ADMIN.id)["stalwartAccountId"], won["user"]["stalwartAccountId"]);
    assert_eq!(events(&env, "tenant.user_mailbox_created").len(), 1);

    // Different addresses for one member: each request creates its own
    // mailbox, one document write wins, the losers delete theirs.
    let env = Env::start().await;
    let mailboxes = mailbox_count(&env);
    let rs = concurrently_each(&env, &path, &ACME_OWNER, (0..10).map(|i| json!({"localPart": format!("ivan{i}")})).collect()).await;
    let won = one_winner(&rs, 201).json();
    for r in rs.iter().filter(|r| r.status == 409) {
        assert_eq!(r.detail(), "This member already has a mailbox.", "{}", r.text);
    }
    assert_eq!(mailbox_count(&env), mailboxes + 1, "a loser's mailbox stayed");
    let doc = user_doc(&env, ACME_INACTIVE_ADMIN.id);
    assert_eq!(doc["mailboxAddress"], won["email"]);
    assert_eq!(env.stalwart().email_address_of(doc["stalwartAccountId"].as_str().unwrap()), won["email"].as_str().map(str::to_owned));
    assert_eq!(events(&env, "tenant.user_mailbox_created").len(), 1);
}

//! Rows 26–28 end to end: a member's mailbox aliases listed, added and
//! removed, with the mail server, the database and the audit log checked.

use crate::members_ii::*;
use e2e::*;
use emulators::stalwart::StAlias;
use serde_json::{json, Value};

fn aliases(id: &str) -> String {
    member_path("acme", id, "aliases")
}

async fn add(env: &Env, id: &str, who: &User, body: Value) -> Resp {
    env.post(&member_path("acme", id, "aliases/add"), who, body).await
}

async fn remove(env: &Env, id: &str, who: &User, body: Value) -> Resp {
    env.post(&member_path("acme", id, "aliases/remove"), who, body).await
}

/// An alias written straight into the mail server (as its own admin UI would).
fn put_alias(env: &Env, account: &str, key: u32, name: &str, domain_id: &str) {
    env.stalwart().update_account(account, |a| {
        a.aliases.insert(key, StAlias { name: name.into(), domain_id: domain_id.into(), enabled: true, description: None });
    });
}

fn jmap_calls(env: &Env) -> Vec<String> {
    env.emu.stalwart().controls.log.all().iter().filter(|r| r.path().starts_with("/jmap")).map(|r| r.body.clone()).collect()
}

#[tokio::test]
async fn add_then_remove_shows_only_this_workspaces_domains() {
    let env = Env::start().await;
    // Mia's mailbox already has an alias on globex's domain ("d") and one on acme's.
    put_alias(&env, "m3", 3, "mia.legacy", "d");
    put_alias(&env, "m3", 1, "hello", "b");
    let before = env.world();

    let r = env.get(&aliases(ACME_MEMBER.id), &NORTHWIND_SCOPED).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json(), json!({"hasMailbox": true, "primary": "mia@acme.test", "aliases": ["hello@acme.test"]}));
    // One account read, never the whole server.
    let calls = jmap_calls(&env);
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert!(calls[0].contains("x:Account/get") && !calls[0].contains("x:Account/query"), "{}", calls[0]);

    let r = add(&env, ACME_MEMBER.id, &ACME_ADMIN, json!({"localPart": " Sales ", "domain": "Mail.Acme.Test"})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json(), json!({"hasMailbox": true, "primary": "mia@acme.test", "aliases": ["hello@acme.test", "sales@mail.acme.test"]}));
    assert_eq!(env.stalwart().aliases_of("m3"), vec!["hello@acme.test", "mia.legacy@globex.test", "sales@mail.acme.test"]);
    let audit = events(&env, "tenant.user_alias_added");
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0]["metadata"], json!({"alias": "sales@mail.acme.test"}));
    assert_eq!((audit[0]["resourceId"].as_str(), audit[0]["resourceName"].as_str()), (Some(ACME_MEMBER.sub), Some("mia@acme.test")));
    assert_eq!(audit[0]["tenantSlug"], "acme");
    assert_eq!(audit[0]["actor"]["email"], ACME_ADMIN.email);
    // Mail only: the database (but for the event), identities and files are as they were.
    assert_eq!(without_audit(env.world()), without_audit(before.clone()));

    let r = remove(&env, ACME_MEMBER.id, &OPERATOR, json!({"address": " SALES@mail.acme.test "})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["aliases"], json!(["hello@acme.test"]));
    assert_eq!(env.stalwart().aliases_of("m3"), vec!["hello@acme.test", "mia.legacy@globex.test"], "another workspace's alias went");
    let audit = events(&env, "tenant.user_alias_removed");
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0]["metadata"], json!({"alias": "sales@mail.acme.test"}));
    assert_eq!(without_audit(env.world()), without_audit(before));
}

#[tokio::test]
async fn members_without_a_mailbox_here() {
    let env = Env::start().await;
    // No mailbox at all (the bootstrap admin).
    let r = env.get(&aliases(ACME_INACTIVE_ADMIN.id), &ACME_OWNER).await;
    assert_eq!(r.json(), json!({"hasMailbox": false, "primary": "ivan@acme.test", "aliases": []}));
    // Max's mailbox is acme's: from globex it is not here.
    let r = env.get(&member_path("globex", MULTI_TENANT.id, "aliases"), &GLOBEX_ADMIN).await;
    assert_eq!(r.json(), json!({"hasMailbox": false, "primary": "max@acme.test", "aliases": []}));
    let r = env
        .post(&member_path("globex", MULTI_TENANT.id, "aliases/add"), &GLOBEX_ADMIN, json!({"localPart": "max", "domain": "globex.test"}))
        .await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert!(jmap_calls(&env).is_empty(), "the mail server was called for a mailbox that is not here");

    // The mail server lost the account: a mailbox, without aliases.
    env.stalwart().remove_account("m3");
    let r = env.get(&aliases(ACME_MEMBER.id), &ACME_OWNER).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json(), json!({"hasMailbox": true, "primary": "mia@acme.test", "aliases": []}));

    // Mail off.
    let env = Env::start_with(|vars, _| {
        vars.insert("stalwart_token".into(), String::new());
    })
    .await;
    let r = env.get(&aliases(ACME_MEMBER.id), &ACME_OWNER).await;
    assert_eq!(r.json(), json!({"hasMailbox": false, "primary": "mia@acme.test", "aliases": []}));
    let r = add(&env, ACME_MEMBER.id, &ACME_OWNER, json!({"localPart": "x", "domain": "acme.test"})).await;
    assert_eq!((r.status, r.detail().as_str()), (400, "This member has no mailbox to attach an alias to."));
}

#[tokio::test]
async fn refused_adds_and_removes_change_nothing() {
    let env = Env::start().await;
    put_alias(&env, "m2", 0, "office", "b"); // Adam's
    put_alias(&env, "m3", 0, "mia.m", "c"); // Mia's own
    let before = everything(&env);
    let m = ACME_MEMBER.id;
    for (what, body, status, detail) in [
        (
            "bad prefix",
            json!({"localPart": "sales team", "domain": "acme.test"}),
            400,
            "The alias prefix may only contain letters, numbers, dots, hyphens and underscores.",
        ),
        (
            "empty prefix",
            json!({"localPart": " ", "domain": "acme.test"}),
            400,
            "The alias prefix may only contain letters, numbers, dots, hyphens and underscores.",
        ),
        (
            "another workspace's domain",
            json!({"localPart": "sales", "domain": "globex.test"}),
            400,
            "globex.test isn’t a provisioned mail domain for this workspace.",
        ),
        (
            "unknown domain",
            json!({"localPart": "sales", "domain": "nowhere.test"}),
            400,
            "nowhere.test isn’t a provisioned mail domain for this workspace.",
        ),
        ("someone's primary address", json!({"localPart": "alice", "domain": "acme.test"}), 409, "alice@acme.test is already in use."),
        ("someone's alias", json!({"localPart": "Office", "domain": "acme.test"}), 409, "office@acme.test is already in use."),
        ("her own alias", json!({"localPart": "mia.m", "domain": "mail.acme.test"}), 409, "mia.m@mail.acme.test is already in use."),
        ("her own address", json!({"localPart": "mia", "domain": "acme.test"}), 409, "mia@acme.test is already in use."),
    ] {
        let r = add(&env, m, &ACME_OWNER, body).await;
        assert_eq!((r.status, r.detail().as_str()), (status, detail), "{what}: {}", r.text);
    }
    assert_eq!(add(&env, ACME_INACTIVE_ADMIN.id, &ACME_OWNER, json!({"localPart": "x", "domain": "acme.test"})).await.status, 400);
    for (what, body, status, detail) in [
        ("no @", json!({"address": "office"}), 400, "Invalid alias address."),
        ("two @", json!({"address": "a@b@acme.test"}), 400, "Invalid alias address."),
        (
            "another workspace's domain",
            json!({"address": "mia.legacy@globex.test"}),
            400,
            "globex.test isn’t a mail domain for this workspace.",
        ),
        ("not her alias", json!({"address": "office@acme.test"}), 404, "office@acme.test isn’t an alias of this member."),
        ("her primary address", json!({"address": "mia@acme.test"}), 404, "mia@acme.test isn’t an alias of this member."),
    ] {
        let r = remove(&env, m, &ACME_OWNER, body).await;
        assert_eq!((r.status, r.detail().as_str()), (status, detail), "{what}: {}", r.text);
    }
    let r = remove(&env, ACME_INACTIVE_ADMIN.id, &ACME_OWNER, json!({"address": "x@acme.test"})).await;
    assert_eq!((r.status, r.detail().as_str()), (400, "This member has no mailbox."));
    // Bodies are strict.
    for body in [
        json!({"localPart": {"$ne": ""}, "domain": "acme.test"}),
        json!({"localPart": "x"}),
        json!({"localPart": "x", "domain": "acme.test", "extra": 1}),
        json!({"localPart": 5, "domain": "acme.test"}),
    ] {
        assert_eq!(add(&env, m, &ACME_OWNER, body.clone()).await.status, 400, "{body}");
    }
    for body in [json!({"address": {"$regex": "."}}), json!({}), json!({"address": "x@acme.test", "domain": "acme.test"})] {
        assert_eq!(remove(&env, m, &ACME_OWNER, body.clone()).await.status, 400, "{body}");
    }
    assert_eq!(everything(&env), before, "a refused call changed something");
}

#[tokio::test]
async fn mail_server_failures_are_502_with_nothing_changed() {
    for (what, rule) in [("down", FaultRule::new("/jmap", Fault::Status(500))), ("dropped", FaultRule::new("/jmap", Fault::Drop))] {
        let env = Env::start().await;
        put_alias(&env, "m3", 0, "keep", "b");
        let before = everything(&env);
        env.fail(&env.emu.stalwart().controls, rule);
        let r = add(&env, ACME_MEMBER.id, &ACME_OWNER, json!({"localPart": "sales", "domain": "acme.test"})).await;
        assert_eq!(r.status, 502, "{what}: {}", r.text);
        let r = remove(&env, ACME_MEMBER.id, &ACME_OWNER, json!({"address": "keep@acme.test"})).await;
        assert_eq!(r.status, 502, "{what}: {}", r.text);
        let r = env.get(&aliases(ACME_MEMBER.id), &ACME_OWNER).await;
        assert_eq!(r.status, 502, "{what}: {}", r.text);
        assert_eq!(everything(&env), before, "{what}");
    }
}

#[tokio::test]
async fn a_failed_audit_write_takes_the_alias_change_back() {
    let env = Env::start().await;
    put_alias(&env, "m3", 0, "keep", "b");
    let before = everything(&env);
    env.fail_data_api(FaultRule::new("/action/insertOne", Fault::Status(500)));
    let r = add(&env, ACME_MEMBER.id, &ACME_OWNER, json!({"localPart": "sales", "domain": "acme.test"})).await;
    assert_eq!(r.status, 502, "{}", r.text);
    let r = remove(&env, ACME_MEMBER.id, &ACME_OWNER, json!({"address": "keep@acme.test"})).await;
    assert_eq!(r.status, 502, "{}", r.text);
    assert_eq!(env.stalwart().aliases_of("m3"), vec!["keep@acme.test"]);
    assert_eq!(everything(&env), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_identical_adds_make_one_alias() {
    let env = Env::start().await;
    let rs = concurrently(
        &env,
        12,
        &member_path("acme", ACME_MEMBER.id, "aliases/add"),
        &ACME_OWNER,
        json!({"localPart": "sales", "domain": "acme.test"}),
    )
    .await;
    let won = one_winner(&rs, 200);
    assert_eq!(won.json()["aliases"], json!(["sales@acme.test"]));
    for r in rs.iter().filter(|r| r.status == 409) {
        assert_eq!(r.detail(), "sales@acme.test is already in use.", "{}", r.text);
    }
    assert_eq!(env.stalwart().aliases_of("m3"), vec!["sales@acme.test"]);
    assert_eq!(events(&env, "tenant.user_alias_added").len(), 1);

    // The same address for two members at once: one of them gets it.
    let env = Env::start().await;
    let (a, b) = tokio::join!(
        add(&env, ACME_MEMBER.id, &ACME_OWNER, json!({"localPart": "desk", "domain": "acme.test"})),
        add(&env, ACME_ADMIN.id, &ACME_OWNER, json!({"localPart": "desk", "domain": "acme.test"}))
    );
    let mut statuses = [a.status, b.status];
    statuses.sort();
    assert_eq!(statuses, [200, 409], "{} / {}", a.text, b.text);
    let holders = ["m2", "m3"].iter().filter(|m| env.stalwart().aliases_of(m).contains(&"desk@acme.test".to_owned())).count();
    assert_eq!(holders, 1);
    assert_eq!(events(&env, "tenant.user_alias_added").len(), 1);
}

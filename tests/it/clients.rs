//! The typed upstream clients of `shared` against the emulators, natively
//! (over reqwest instead of wasi:http): every call the seed makes, its
//! effect on the emulator's state, and how failures map.

use std::time::Duration;

use e2e::*;
use serde_json::json;
use shared::authentik::{Authentik, NewUser, PASSWORD_CHANGE_REQUIRED};
use shared::config::UpstreamConfig;
use shared::ocis::{Ensured, Ocis};
use shared::ports::{Http, InboundResponse, OutboundRequest, TransportError};
use shared::problem::UpstreamFailure;
use shared::stalwart::{NewMailbox, Stalwart};

struct Native(reqwest::Client);

impl Http for Native {
    async fn send(&self, req: OutboundRequest) -> Result<InboundResponse, TransportError> {
        let mut r = self.0.request(req.method.parse().unwrap(), &req.url).timeout(req.timeout).body(req.body);
        for (k, v) in &req.headers {
            r = r.header(k, v);
        }
        let resp =
            r.send()
                .await
                .map_err(|e| if e.is_timeout() { TransportError::Timeout } else { TransportError::Unreachable(e.to_string()) })?;
        let status = resp.status().as_u16();
        let headers = resp.headers().iter().filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned()))).collect();
        let body = resp.bytes().await.map_err(|e| {
            if e.is_timeout() {
                TransportError::Timeout
            } else {
                TransportError::Unreachable(e.to_string())
            }
        })?;
        Ok(InboundResponse { status, headers, body: body.to_vec() })
    }
}

fn cfg(url: &str, token: &str) -> UpstreamConfig {
    UpstreamConfig { url: url.to_owned(), authorization: format!("Bearer {token}"), timeout: Duration::from_millis(1000) }
}

#[tokio::test]
async fn authentik_client_follows_the_contract() {
    let env = Env::start().await;
    let http = Native(reqwest::Client::new());
    let c = cfg(&env.emu.authentik().url, AUTHENTIK_TOKEN);
    let ak = Authentik::new(&http, &c);
    let state = env.authentik();

    let mia = ak.find_user_by_email(ACME_MEMBER.email).await.unwrap().expect("demo user");
    assert_eq!((mia.pk, mia.uid.as_str()), (ACME_MEMBER.pk, ACME_MEMBER.sub));
    assert!(ak.find_user_by_email("nobody@acme.test").await.unwrap().is_none());

    let u = ak
        .create_user(NewUser {
            username: "z@acme.test",
            email: "z@acme.test",
            name: "Z",
            groups: vec![ACME.group_uuid.unwrap().into()],
            attributes: json!({"a": 1}),
        })
        .await
        .unwrap();
    assert_eq!(state.user(u.pk).unwrap().groups, vec![ACME.group_uuid.unwrap().to_owned()]);
    // Attribute updates merge (PATCH replaces them wholesale upstream).
    let u = ak.mark_password_expired(&u).await.unwrap();
    assert_eq!(state.user(u.pk).unwrap().attributes, json!({"a": 1, PASSWORD_CHANGE_REQUIRED: true}));
    ak.set_password(u.pk, "Secret-Pass-123").await.unwrap();
    assert_eq!(state.password_of(u.pk).as_deref(), Some("Secret-Pass-123"));
    ak.set_active(u.pk, false).await.unwrap();
    assert!(!state.user(u.pk).unwrap().is_active);

    assert_eq!(ak.recovery_link(u.pk).await.unwrap(), None, "no recovery flow: None, not an error");
    state.set_recovery_flow(true);
    assert!(ak.recovery_link(u.pk).await.unwrap().unwrap().contains("flow_token="));

    let g1 = ak.ensure_group("dezky-test-group", json!({"role": "x"})).await.unwrap();
    let g2 = ak.ensure_group("dezky-test-group", json!({"role": "x"})).await.unwrap();
    assert_eq!(g1.pk, g2.pk, "ensure is idempotent");
    assert_eq!(ak.ensure_group(PLATFORM_ADMIN_GROUP, json!({})).await.unwrap().pk, PLATFORM_ADMIN_GROUP_UUID);
    ak.add_to_group(&g1.pk, u.pk).await.unwrap();
    assert_eq!(state.members_of(&g1.pk), vec![u.pk]);
    ak.remove_from_group(&g1.pk, u.pk).await.unwrap();
    assert!(state.members_of(&g1.pk).is_empty());

    assert_eq!(ak.list_sessions(&mia).await.unwrap().len(), 2);
    assert_eq!(ak.terminate_sessions(mia.pk).await.unwrap(), 2);
    assert!(ak.list_sessions(&mia).await.unwrap().is_empty());
    assert_eq!(ak.count_authenticators(ACME_OWNER.pk).await.unwrap(), 2, "confirmed TOTP and recovery codes");
    assert_eq!(ak.count_authenticators(ACME_ADMIN.pk).await.unwrap(), 0, "unconfirmed devices do not count");

    ak.delete_user(u.pk).await.unwrap();
    assert!(state.user(u.pk).is_none());
    let e = ak.delete_user(u.pk).await.unwrap_err();
    assert_eq!(e.status(), Some(404));

    // Wrong token: Authentik's 403 with its detail; slow answers time out.
    let bad = cfg(&env.emu.authentik().url, "wrong");
    let e = Authentik::new(&http, &bad).find_user_by_email("x@y.z").await.unwrap_err();
    assert_eq!(e.failure, UpstreamFailure::Status { status: 403, reason: "Token invalid/expired".into() });
    env.emu.authentik().controls.faults.add(FaultRule::new("/api/v3/", Fault::DelayMs(1500)));
    assert!(ak.find_user_by_email("x@y.z").await.unwrap_err().is_timeout());
}

#[tokio::test]
async fn stalwart_client_follows_the_contract() {
    let env = Env::start().await;
    let http = Native(reqwest::Client::new());
    let c = cfg(&env.emu.stalwart().url, STALWART_TOKEN);
    let st = Stalwart::new(&http, &c);
    let state = env.stalwart();

    let id = st
        .create_mailbox(NewMailbox { domain_id: "b", local_part: "zed", full_name: "Zed", password: "Very-Strong-Pass-42" })
        .await
        .unwrap();
    assert_eq!(state.email_address_of(&id).as_deref(), Some("zed@acme.test"));
    assert_eq!(state.password_of(&id).as_deref(), Some("Very-Strong-Pass-42"));
    let dup = st
        .create_mailbox(NewMailbox { domain_id: "b", local_part: "zed", full_name: "Zed", password: "Very-Strong-Pass-42" })
        .await
        .unwrap_err();
    assert!(dup.to_string().contains("primaryKeyViolation"), "{dup}");

    st.set_password(&id, "Another-Strong-Pass-7").await.unwrap();
    assert_eq!(state.password_of(&id).as_deref(), Some("Another-Strong-Pass-7"));
    st.set_display_name(&id, "Zed Z.").await.unwrap();
    assert_eq!(state.account(&id).unwrap().description.as_deref(), Some("Zed Z."));
    st.set_suspended(&id, true).await.unwrap();
    assert_eq!(state.is_suspended(&id), Some(true));
    st.set_suspended(&id, true).await.unwrap();
    st.set_suspended(&id, false).await.unwrap();
    assert_eq!(state.is_suspended(&id), Some(false));

    st.add_alias(&id, "sales", "c").await.unwrap();
    st.add_alias(&id, "info", "b").await.unwrap();
    assert_eq!(state.aliases_of(&id), vec!["sales@mail.acme.test".to_owned(), "info@acme.test".to_owned()]);
    let found = st.find_account_by_email("sales@mail.acme.test").await.unwrap().expect("found by alias");
    assert_eq!(found.id, id);
    assert_eq!(st.find_account_by_email(ACME_OWNER.email).await.unwrap().unwrap().id, ACME_OWNER.stalwart_account.unwrap());
    assert!(st.find_account_by_email("nobody@acme.test").await.unwrap().is_none());

    let all = st.list_accounts_with_aliases().await.unwrap();
    assert_eq!(all.len(), 7, "six demo mailboxes and the new one");
    let me = all.iter().find(|a| a.id == id).unwrap();
    assert_eq!(me.aliases, vec![("sales".to_owned(), "c".to_owned()), ("info".to_owned(), "b".to_owned())]);

    assert!(st.remove_alias(&id, "sales", "c").await.unwrap());
    assert!(!st.remove_alias(&id, "sales", "c").await.unwrap());
    assert_eq!(state.aliases_of(&id), vec!["info@acme.test".to_owned()]);

    st.delete_mailbox(&id).await.unwrap();
    assert!(state.account(&id).is_none());
    st.delete_mailbox(&id).await.unwrap();

    let bad = cfg(&env.emu.stalwart().url, "wrong");
    assert_eq!(Stalwart::new(&http, &bad).delete_mailbox("m1").await.unwrap_err().status(), Some(401));
}

#[tokio::test]
async fn ocis_client_follows_the_contract() {
    let env = Env::start().await;
    let http = Native(reqwest::Client::new());
    let c = cfg(&env.emu.ocis().url, OCIS_TOKEN);
    let oc = Ocis::new(&http, &c);
    let Ensured::Created(id) = oc.ensure_user("zed@acme.test", "Zed", "zed@acme.test").await.unwrap() else { panic!("not created") };
    assert_eq!(env.ocis().user("zed@acme.test").unwrap().id, id);
    assert_eq!(oc.ensure_user("zed@acme.test", "Zed", "zed@acme.test").await.unwrap(), Ensured::Existing(id.clone()), "409 means exists");
    oc.delete_user(&id).await.unwrap();
    assert!(env.ocis().user(&id).is_none());
    oc.delete_user(&id).await.unwrap();
    env.emu.ocis().controls.faults.add(FaultRule::new("/graph", Fault::Status(500)));
    assert_eq!(oc.ensure_user("y@acme.test", "Y", "y@acme.test").await.unwrap_err().status(), Some(500));
}

/// Each system's refusal of a taken name or address is told apart from its
/// other refusals, against the emulators' documented answers.
#[tokio::test]
async fn uniqueness_refusals_are_recognised() {
    let env = Env::start().await;
    let http = Native(reqwest::Client::new());
    let c = cfg(&env.emu.authentik().url, AUTHENTIK_TOKEN);
    let ak = Authentik::new(&http, &c);
    let taken_username = env.authentik().user(ACME_MEMBER.pk).unwrap().username;
    let new = |username| NewUser { username, email: "x@acme.test", name: "X", groups: vec![], attributes: json!({}) };
    let e = ak.create_user(new(&taken_username)).await.unwrap_err();
    assert!(e.is_taken(), "{e:?}");
    let e = ak.create_user(new("")).await.unwrap_err();
    assert!(!e.is_taken() && e.status() == Some(400), "a blank username is another 400: {e:?}");

    let c = cfg(&env.emu.stalwart().url, STALWART_TOKEN);
    let st = Stalwart::new(&http, &c);
    let (local, _) = ACME_MEMBER.email.split_once('@').unwrap();
    let mailbox = |local_part, password| NewMailbox { domain_id: "b", local_part, full_name: "X", password };
    let e = st.create_mailbox(mailbox(local, "Correct-Horse-42")).await.unwrap_err();
    assert!(e.is_taken(), "{e:?}");
    let e = st.create_mailbox(mailbox("fresh", "short")).await.unwrap_err();
    assert!(!e.is_taken(), "a weak password is no conflict: {e:?}");
    let other = ACME_ADMIN.stalwart_account.unwrap();
    let e = st.add_alias(other, local, "b").await.unwrap_err();
    assert!(e.is_taken(), "an alias already some account's address: {e:?}");
    let e = st.add_alias(other, "fresh", "nope").await.unwrap_err();
    assert!(!e.is_taken(), "an unknown domain is no conflict: {e:?}");

    let c = cfg(&env.emu.ocis().url, OCIS_TOKEN);
    let oc = Ocis::new(&http, &c);
    let Ensured::Created(id) = oc.ensure_user("x@acme.test", "X", "x@acme.test").await.unwrap() else { panic!("created") };
    assert_eq!(oc.ensure_user("x@acme.test", "X", "x@acme.test").await.unwrap(), Ensured::Existing(id), "the 409 is the existing account");
}

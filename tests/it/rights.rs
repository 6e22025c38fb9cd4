//! The Data API rights of `shared::needs::TABLE`, proven (issue 22, point 3).
//!
//! Every test's emulator holds each component's key to its row (the
//! gateway's own policy code, `devtool::keys`), so a call outside the table
//! fails the test that makes it; and each test records the rights its
//! components' calls used (`e2e::rights_used`, in `target/e2e-rights/`).
//! After the suite, `dev/test.sh` runs the ignored check below over those
//! records: no right used outside the table, no table entry never used.

use std::collections::BTreeSet;

use e2e::*;
use serde_json::json;

type Right = (String, String, String);

fn table() -> BTreeSet<Right> {
    shared::needs::TABLE
        .iter()
        .flat_map(|n| n.rights().into_iter().map(move |(coll, a)| (n.component.to_owned(), coll.to_owned(), a.to_owned())))
        .collect()
}

/// Run by `dev/test.sh` after the whole suite (`--ignored`): alone it
/// would read a partial record.
#[test]
#[ignore = "reads the records the whole suite leaves: dev/test.sh runs it after the suite"]
fn the_suites_calls_prove_the_rights_table() {
    let dir = rights_dir();
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}; run the suite first", dir.display()));
    let mut used = BTreeSet::new();
    for entry in entries {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        for line in text.lines() {
            let mut f = line.split('\t').map(str::to_owned);
            used.insert((f.next().unwrap(), f.next().expect("collection"), f.next().expect("action")));
        }
    }
    let table = table();
    let outside: Vec<_> = used.difference(&table).collect();
    let unused: Vec<_> = table.difference(&used).collect();
    assert!(outside.is_empty(), "calls outside shared::needs::TABLE (component, collection, action): {outside:#?}");
    assert!(
        unused.is_empty(),
        "entries of shared::needs::TABLE no test used: remove them, or test the path that makes the call: {unused:#?}"
    );
}

/// A component's key may do what its row says and nothing else: the
/// emulator answers anything more with the gateway's `403`.
#[tokio::test]
async fn a_components_key_is_refused_outside_its_row() {
    let env = Env::start().await;
    let url = &env.emu.data_api().url;
    let client = reqwest::Client::new();
    let call = |key: String, action: &str, body: serde_json::Value| {
        let req = client.post(format!("{url}/action/{action}")).header("api-key", key).json(&body);
        async move {
            let r = req.send().await.unwrap();
            (r.status().as_u16(), r.json::<serde_json::Value>().await.unwrap())
        }
    };
    let ns = |coll: &str| json!({"dataSource": "mongodb-atlas", "database": "dezky", "collection": coll});
    let with = |coll: &str, extra: serde_json::Value| {
        let mut b = ns(coll);
        b.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        b
    };
    let reads = devtool::keys::key_of("users-get");
    let (status, _) = call(reads.clone(), "findOne", with("users", json!({"filter": {}}))).await;
    assert_eq!(status, 200, "users-get may read a user");
    let before = env.snapshot();
    for (action, body) in [
        ("deleteMany", with("users", json!({"filter": {}}))),
        ("find", with("tenants", json!({"filter": {}}))),
        ("aggregate", with("users", json!({"pipeline": [{"$match": {}}]}))),
    ] {
        let (status, answer) = call(reads.clone(), action, body).await;
        assert_eq!(status, 403, "users-get's key: {action}: {answer}");
        assert_eq!(answer["error_code"], "NoMatchingRuleFound", "{answer}");
    }
    // A lookup reads its `from`: members-list may aggregate domains and
    // tenants, but not pull users' documents through a tenant pipeline.
    let lookup = with(
        "tenants",
        json!({"pipeline": [{"$lookup": {"from": "auditevents", "localField": "_id", "foreignField": "tenantId", "as": "events"}}]}),
    );
    let (status, answer) = call(devtool::keys::key_of("members-list"), "aggregate", lookup).await;
    assert_eq!(status, 403, "{answer}");
    assert_eq!(env.snapshot(), before, "a refused request changes nothing");
    // These were this test's calls with the components' keys, not the
    // components' own: kept out of the record the table is proven from.
    env.emu.data_api().controls.log.clear();
}

#[test]
fn every_row_is_a_valid_policy_and_every_data_api_caller_has_rights() {
    for needs in devtool::keys::callers() {
        devtool::keys::policy_of(needs).unwrap_or_else(|e| panic!("{e}"));
        assert!(!needs.rights().is_empty(), "{} calls the Data API with no rights", needs.component);
    }
    for needs in shared::needs::TABLE.iter().filter(|n| !n.parts.contains(&shared::config::Part::DataApi)) {
        assert!(needs.rights().is_empty(), "{} has Data API rights but no Data API part", needs.component);
    }
}

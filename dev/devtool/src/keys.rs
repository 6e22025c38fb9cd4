//! One Data API key per component for `make dev` and the tests, each held
//! by the emulator (through the gateway's own policy code) to its row of
//! `shared::needs::TABLE`: a component that strays is refused on the
//! developer's machine first, not in production. The emulator's own demo
//! key keeps every right (the harness reads and seeds with it).

use anyhow::{anyhow, Result};
use emulators::Emulators;
use gateway::{Action, Policy};
use shared::config::Part;
use shared::needs::Needs;

const PREFIX: &str = "dev-data-api-key-";

/// The key `make dev` and the tests give `component`.
pub fn key_of(component: &str) -> String {
    format!("{PREFIX}{component}")
}

/// The component a key of [`key_of`] belongs to.
pub fn component_of(key: &str) -> Option<&'static str> {
    let name = key.strip_prefix(PREFIX)?;
    shared::needs::of(name).map(|n| n.component)
}

/// The application variable holding `component`'s own key (spin.toml:
/// `data_api_own_key = "{{ data_api_key_<component> }}"`).
pub fn variable_of(component: &str) -> String {
    format!("data_api_key_{}", component.replace('-', "_"))
}

/// The components that call the Data API.
pub fn callers() -> impl Iterator<Item = &'static Needs> {
    shared::needs::TABLE.iter().filter(|n| n.parts.contains(&Part::DataApi))
}

/// A row's rights as a gateway policy.
pub fn policy_of(needs: &Needs) -> Result<Policy> {
    let mut rights = vec![];
    for (collection, name) in needs.rights() {
        let action = Action::parse(name).ok_or_else(|| anyhow!("{}: unknown Data API action {name}", needs.component))?;
        rights.push((collection.to_owned(), action));
    }
    Ok(Policy::from_rights(rights))
}

/// The emulator's keys: its demo key with every right, and each
/// component's with its rights.
pub fn install(emu: &Emulators) -> Result<()> {
    let data = emu.data_api();
    let mut keys = vec![(data.key.clone(), Policy::all())];
    for needs in callers() {
        keys.push((key_of(needs.component), policy_of(needs)?));
    }
    data.api.set_keys(keys);
    Ok(())
}

/// The same keys for a gateway (`make dev ARGS=--gateway`): the demo key
/// bare, each component's named for it with its policy.
pub fn gateway_keys(demo_key: &str) -> Result<(Vec<String>, Vec<gateway::PolicyKey>)> {
    let mut named = vec![];
    for needs in callers() {
        named.push(gateway::PolicyKey {
            name: needs.component.to_owned(),
            key: key_of(needs.component),
            policy: std::sync::Arc::new(policy_of(needs)?),
        });
    }
    Ok((vec![demo_key.to_owned()], named))
}

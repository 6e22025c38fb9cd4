//! The fixed-shape answers of the routes, as types: a route builds one and
//! answers it ([`answer`]), and `/openapi.json` publishes the schema derived
//! from the same type (`schemars`), so the two cannot drift. An optional
//! field is left out, never `null` (docs/api.md), so its schema is its
//! value's alone (`#[schemars(with = …)]`), not required. Answers that
//! are stored documents (a user, a workspace's members) are open objects
//! and stay `Value`s.

use schemars::generate::{Contract, SchemaSettings};
use schemars::{JsonSchema, SchemaGenerator};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::models::Provisioned;
use crate::request::ApiResponse;

/// `status` with `body` serialised (the types here cannot fail to).
pub fn answer(status: u16, body: &impl Serialize) -> ApiResponse {
    ApiResponse { status, body: Some(serde_json::to_value(body).expect("an answer type serialises")) }
}

/// Each system's state after members-create.
#[derive(Serialize, JsonSchema)]
pub struct Provisioning {
    pub authentik: Provisioned,
    pub stalwart: Provisioned,
    pub ocis: Provisioned,
}

/// members-create (`201`): the new member's address and temporary
/// password, shown this once.
#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(deny_unknown_fields)]
pub struct MemberCreated {
    pub email: String,
    pub temp_password: String,
    pub provisioning: Provisioning,
    /// Why the mailbox could not be made (when `provisioning.stalwart` is `error`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String")]
    pub stalwart_error: Option<String>,
    /// Why there is no file account yet (OCIS failed, or makes it at first sign-in).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String")]
    pub ocis_note: Option<String>,
}

/// The three invites (`201`): the identity invited or attached. A new
/// identity comes with its handoff, a recovery link or a temporary
/// password; an existing person attached says so.
#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(deny_unknown_fields)]
pub struct Invited {
    /// The identity's subject (`User.authentikSubjectId`).
    pub subject: String,
    /// The identity's Authentik pk, as a string.
    pub user_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String")]
    pub link: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String")]
    pub temp_password: Option<String>,
    /// Present (`true`) when an existing person was attached.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "bool")]
    pub attached: Option<bool>,
}

/// members-reset-password: the new temporary password, shown this once.
#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(deny_unknown_fields)]
pub struct PasswordReset {
    pub email: String,
    pub temp_password: String,
}

/// members-logout: how many sessions were ended.
#[derive(Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct SessionsEnded {
    pub sessions: u64,
}

/// aliases-list, -add, -remove: the member's mailbox and its aliases on
/// this workspace's domains.
#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(deny_unknown_fields)]
pub struct Aliases {
    pub has_mailbox: bool,
    pub primary: String,
    pub aliases: Vec<String>,
}

/// partner-team-remove.
#[derive(Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Removed {
    pub removed: bool,
}

/// mailbox-create (`201`): the mailbox's address and password, shown this
/// once, and the member's document as written.
#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(deny_unknown_fields)]
pub struct MailboxCreated {
    pub email: String,
    pub temp_password: String,
    pub user: Map<String, Value>,
}

/// The schemas of the answers above, and of the types they hold, by type
/// name (the names `routes::TABLE` gives), for `/openapi.json`'s
/// `components.schemas`: JSON Schema 2020-12, as OpenAPI 3.1 takes it,
/// whose references point into `components.schemas`.
pub fn schemas() -> Map<String, Value> {
    let mut settings = SchemaSettings::draft2020_12();
    settings.definitions_path = "/components/schemas".into();
    // What the routes send (`Serialize`), not what they would accept.
    settings.contract = Contract::Serialize;
    let mut g = SchemaGenerator::new(settings);
    let _ = g.subschema_for::<MemberCreated>();
    let _ = g.subschema_for::<Invited>();
    let _ = g.subschema_for::<PasswordReset>();
    let _ = g.subschema_for::<SessionsEnded>();
    let _ = g.subschema_for::<Aliases>();
    let _ = g.subschema_for::<Removed>();
    let _ = g.subschema_for::<MailboxCreated>();
    g.take_definitions(true)
}

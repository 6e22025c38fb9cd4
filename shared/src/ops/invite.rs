//! Rows 7, 10 and 31: inviting an operator, a partner's staff member, or a
//! tenant's admin. They share one saga (this module); each route supplies
//! its group, its attributes, its `User` update and its audit event.
//!
//! Create path: identity → `User` document ∥ recovery link → (else temp
//! password + expired marker) → audit. Any failure after the identity was
//! created undoes everything this request wrote. Attach path (an identity
//! with that e-mail exists): group add → `User` upsert → audit, undoing the
//! group add (if it was new) and the document on failure.
//!
//! Concurrent identical invites: exactly one succeeds, the others get the
//! route's `409`, and none undoes what the winner wrote. A create that
//! loses to a concurrent one (Authentik refuses the taken username) goes
//! the attach way with the identity that won. An attach has nothing to do,
//! and is a `409`, when the identity is already in the group and either its
//! document already records what the invite grants, or it has no document
//! yet although one of our invites created it (that invite is still
//! running). The attach's document write is a compare-and-set on the
//! version read (`updatedAt`), so of concurrent attaches one wins.

use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::audit::AuditEvent;
use crate::authentik::{AkGroup, AkUser, Authentik, NewUser};
use crate::caller::Caller;
use crate::ctx::Ctx;
use crate::data_api::coll;
use crate::models::User;
use crate::ports::Http;
use crate::problem::Error;
use crate::random::temp_password;
use crate::request::{ApiRequest, ApiResponse};
use crate::types::{Email, PersonName};

use super::answers::{answer, Invited};
use super::saga::audited;
use super::undo;
use super::user_doc::{restore_user_doc, undo_user_doc};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InviteBody {
    pub name: PersonName,
    pub email: Email,
}

impl InviteBody {
    /// The person's name: the identity's own, else the one invited with.
    pub fn name_for<'a>(&'a self, identity: &'a AkUser) -> &'a str {
        if identity.name.is_empty() {
            self.name.as_str()
        } else {
            identity.name.as_str()
        }
    }
}

/// The audit events of one invite route: `<invited>` for a created
/// identity (with the handoff kind), `<attached>` for an existing one.
pub struct InviteAudit {
    pub invited: &'static str,
    pub attached: &'static str,
    /// The role named in the event's metadata.
    pub role: &'static str,
    pub tenant_slug: Option<String>,
    pub partner_slug: Option<String>,
}

impl InviteAudit {
    fn event(&self, inv: &Invite<'_>, identity: &AkUser, attached: bool, handoff: Option<&str>) -> AuditEvent {
        let mut e = if attached {
            let name = if identity.name.is_empty() { inv.name.as_str() } else { identity.name.as_str() };
            AuditEvent::user(self.attached, identity.uid.as_str(), identity.email.as_str())
                .metadata(json!({ "name": name, "role": self.role }))
        } else {
            AuditEvent::user(self.invited, identity.uid.as_str(), inv.email.as_str())
                .metadata(json!({ "role": self.role, "name": inv.name, "handoff": handoff }))
        };
        e.tenant_slug = self.tenant_slug.clone();
        e.partner_slug = self.partner_slug.clone();
        e
    }
}

/// Refuses attaching an existing identity (given its local document).
pub type AttachCheck<'a> = dyn Fn(&AkUser, Option<&Value>) -> Result<(), Error> + 'a;

/// What differs between the three invite routes.
pub struct Invite<'a> {
    pub email: &'a Email,
    pub name: &'a PersonName,
    /// The Authentik group uuid the person joins.
    pub group: String,
    /// Attributes of a created identity besides `invitedBy`/`invitedAt`.
    pub attributes: Map<String, Value>,
    /// The `User` upsert (`$set`/`$setOnInsert`/`$addToSet`) for an identity.
    pub user_update: &'a dyn Fn(&AkUser, bool) -> Value,
    /// How the invite is audited.
    pub audit: InviteAudit,
    /// Refuses an attach (an operator invite never attaches; a partner
    /// invite refuses staff of another partner); gets the local doc.
    pub check_attach: &'a AttachCheck<'a>,
    /// Whether the person's `User` document already records what this
    /// invite grants (asked only when the identity is in the group).
    pub granted: &'a dyn Fn(&Value) -> bool,
    /// The `409` of an invite with nothing left to do: already granted, or
    /// an identical invite got there first.
    pub already: &'a dyn Fn(&AkUser) -> Error,
}

/// Undo steps run best-effort, each tried again while its failure may be
/// passing ([`undo::retried`]); the original failure is what the caller sees.
pub(super) async fn undo_identity<H: Http>(ak: &Authentik<'_, H>, pk: i64) {
    let _ = undo::deleted(&format!("undo: deleting identity {pk}"), || ak.delete_user(pk)).await;
}

/// The reads an invite starts with: the identity holding the invited
/// e-mail and (for the routes whose group is Authentik's to name) the
/// group. They change nothing, so a route makes them concurrently with
/// its prologue, from the body as it will parse; a request refused later
/// has only read. Errors are kept for the step that uses the value, so
/// the check order is the sequential one.
pub struct Prefetch {
    /// The e-mail read for, and what was found (`None`: not read).
    identity: Option<(Email, Result<Option<AkUser>, Error>)>,
    group: Option<Result<Option<AkGroup>, Error>>,
}

impl Prefetch {
    pub async fn read<H: Http>(ctx: &Ctx<H>, req: &ApiRequest, group: Option<&str>) -> Prefetch {
        // Without the configuration there is nothing to read; the step
        // that needs it reports that.
        let Ok(ak) = ctx.authentik() else { return Prefetch { identity: None, group: None } };
        let email = req.json::<InviteBody>().ok().map(|b| b.email);
        let (identity, group) = futures::join!(
            async {
                let e = email?;
                let found = ak.find_user_by_email(e.as_str()).await.map_err(Error::from);
                Some((e, found))
            },
            async { Some(ak.find_group(group?).await.map_err(Error::from)) }
        );
        Prefetch { identity, group }
    }

    /// The group `name` as read, else found or created now (after the
    /// caller's permission was checked: creating it is a write).
    pub async fn group<H: Http>(&mut self, ctx: &Ctx<H>, name: &str, attributes: Value) -> Result<AkGroup, Error> {
        if let Some(g) = self.group.take().transpose()?.flatten() {
            return Ok(g);
        }
        Ok(ctx.authentik()?.ensure_group(name, attributes).await?)
    }
}

pub async fn run<H: Http>(ctx: &Ctx<H>, caller: &Caller, inv: Invite<'_>, read: Prefetch) -> Result<ApiResponse, Error> {
    let ak = ctx.authentik()?;
    let found = match read.identity {
        Some((e, found)) if &e == inv.email => found?,
        _ => ak.find_user_by_email(inv.email.as_str()).await?,
    };
    match found {
        Some(existing) => attach(ctx, caller, &ak, &inv, existing).await,
        None => match create(ctx, caller, &ak, &inv).await {
            // The username was taken since the lookup (a concurrent invite,
            // most likely): answer as if that identity had been found.
            Err(Error::Upstream(e)) if e.is_taken() => match ak.find_user_by_email(inv.email.as_str()).await? {
                Some(existing) => attach(ctx, caller, &ak, &inv, existing).await,
                None => Err(Error::conflict(format!("{} is already in use.", inv.email))),
            },
            other => other,
        },
    }
}

/// A filter matching the `User` document only while it is still the
/// version `doc` (every write of it stamps `updatedAt`).
fn unchanged_since(uid: &str, doc: &Value) -> Value {
    let version = doc.get("updatedAt").cloned().unwrap_or(json!({ "$exists": false }));
    json!({ User::SUBJECT: uid, "updatedAt": version })
}

async fn upsert_doc<H: Http>(ctx: &Ctx<H>, user: &AkUser, update: Value) -> Result<(), Error> {
    ctx.db()?.update_one(coll::USERS, User::by_subject(&user.uid), update, true).await?;
    Ok(())
}

async fn attach<H: Http>(
    ctx: &Ctx<H>,
    caller: &Caller,
    ak: &Authentik<'_, H>,
    inv: &Invite<'_>,
    existing: AkUser,
) -> Result<ApiResponse, Error> {
    let db = ctx.db()?;
    let before = db.find_one(coll::USERS, User::by_subject(&existing.uid), None).await?;
    (inv.check_attach)(&existing, before.as_ref())?;
    let granted = before.as_ref().is_some_and(|d| (inv.granted)(d));
    let existing = if granted && !existing.groups.contains(&inv.group) {
        // The identity was read before the document: a concurrent invite
        // may have added the group and then written the document in
        // between. Read it again so that group add is seen.
        ak.get_user(existing.pk).await?
    } else {
        existing
    };
    let newly_added = !existing.groups.contains(&inv.group);
    if !newly_added {
        let in_flight = before.is_none() && existing.attributes.contains_key("invitedAt");
        if in_flight || granted {
            return Err((inv.already)(&existing));
        }
    }
    if newly_added {
        ak.add_to_group(&inv.group, existing.pk).await?;
    }
    // The document and the event are written together (`audited`); the
    // document's undo puts back what was read, only while it still holds
    // this request's write.
    let update = (inv.user_update)(&existing, true);
    let write = async {
        let ours = match &before {
            Some(doc) => db.update_one(coll::USERS, unchanged_since(&existing.uid, doc), update, false).await?.matched > 0,
            // Keyed by the subject: of concurrent attaches of a person
            // without a document, one inserts it; the others match it.
            None => db.update_one(coll::USERS, User::by_subject(&existing.uid), update, true).await?.upserted_id.is_some(),
        };
        // Not ours: another request changed or inserted the document since
        // it was read (an identical invite won): its `409`, nothing of ours
        // to undo, and the event goes again.
        if ours {
            Ok(())
        } else {
            Err((inv.already)(&existing))
        }
    };
    let event = inv.audit.event(inv, &existing, true, None);
    let undo_doc = || restore_user_doc(ctx, &existing.uid, before.as_ref());
    match audited(ctx, caller, event, write, undo_doc).await {
        Ok(()) => {}
        // The identical invite that won added the group too.
        Err(e @ Error::Conflict(_)) => return Err(e),
        Err(e) => {
            if newly_added {
                let what = format!("undo: removing {} from group", existing.pk);
                let _ = undo::deleted(&what, || ak.remove_from_group(&inv.group, existing.pk)).await;
            }
            return Err(e);
        }
    }
    let out = Invited { subject: existing.uid, user_id: existing.pk.to_string(), link: None, temp_password: None, attached: Some(true) };
    Ok(answer(201, &out))
}

async fn create<H: Http>(ctx: &Ctx<H>, caller: &Caller, ak: &Authentik<'_, H>, inv: &Invite<'_>) -> Result<ApiResponse, Error> {
    let invited_at = ctx.now.to_iso();
    let mut attributes = inv.attributes.clone();
    attributes.insert("invitedBy".into(), caller.actor()["email"].clone());
    attributes.insert("invitedAt".into(), json!(invited_at));
    let created = create_identity(
        ak,
        NewUser {
            username: inv.email.as_str(),
            email: inv.email.as_str(),
            name: inv.name.as_str(),
            groups: vec![inv.group.clone()],
            attributes: Value::Object(attributes),
        },
    )
    .await?;

    // Every join below awaits all its branches: a failure is compensated
    // only once nothing of this request is still in flight (a dropped call
    // could land after its undo).
    let result = async {
        let (doc, link) = futures::join!(upsert_doc(ctx, &created, (inv.user_update)(&created, false)), ak.recovery_link(created.pk));
        doc?;
        let link = link?;
        let password = link.is_none().then(temp_password);
        let handoff = if link.is_some() { "recovery-link" } else { "temp-password" };
        // The password, its expiry marker (an attribute: another endpoint)
        // and the audit event are independent of each other (`audited`).
        // The handoff has no undo of its own: on any failure the identity
        // it was made for goes, below.
        let handoff_done = async {
            if let Some(p) = &password {
                let (set, marked) = futures::join!(ak.set_password(created.pk, p), ak.mark_password_expired(&created));
                set?;
                marked?;
            }
            Ok::<_, Error>(())
        };
        let event = inv.audit.event(inv, &created, false, Some(handoff));
        audited(ctx, caller, event, handoff_done, || async { Ok(()) }).await?;
        Ok::<_, Error>((link, password))
    }
    .await;
    match result {
        Ok((link, temp_password)) => {
            let out = Invited { subject: created.uid, user_id: created.pk.to_string(), link, temp_password, attached: None };
            Ok(answer(201, &out))
        }
        Err(e) => {
            undo_user_doc(ctx, &created.uid, None).await;
            undo_identity(ak, created.pk).await;
            Err(e)
        }
    }
}

/// The attribute that tells this request's identity from one a concurrent
/// identical request created in the same millisecond (same `invitedAt`).
pub const INVITATION: &str = "dezky.invitation";

/// Creates the identity. If no answer came (a timeout, a broken
/// connection) the create may still have happened: the identity carrying
/// this request's invitation nonce is looked up and deleted, never one that
/// existed before nor one a concurrent request created. The lookup and the
/// delete are tried again while they fail: giving up would leave an
/// identity without its document. A taken username is the caller's to
/// turn into its `409`.
pub async fn create_identity<H: Http>(ak: &Authentik<'_, H>, mut user: NewUser<'_>) -> Result<AkUser, Error> {
    let mut nonce = [0u8; 12];
    crate::random::fill(&mut nonce);
    let nonce: String = nonce.iter().map(|b| format!("{b:02x}")).collect();
    if let Some(attrs) = user.attributes.as_object_mut() {
        attrs.insert(INVITATION.into(), json!(nonce));
    }
    match ak.create_user(user).await {
        Ok(u) => Ok(u),
        Err(e) if e.outcome_unknown() => {
            let what = format!("undo: deleting the identity of invitation {nonce}");
            let _ = undo::retried(&what, || async {
                for found in ak.find_users_by_attribute(INVITATION, &nonce).await? {
                    undo::gone_is_done(ak.delete_user(found.pk).await)?;
                }
                Ok(())
            })
            .await;
            Err(e.into())
        }
        Err(e) => Err(e.into()),
    }
}

//! `members-create`: POST /tenants/:slug/members/create — create a member
//! with identity, mailbox and files (docs/api.md row 18).

use crate::access::TenantRule;
use crate::audit::AuditEvent;
use crate::authentik::NewUser;
use crate::config::ocis_autoprovision;
use crate::ctx::Ctx;
use crate::data_api::{coll, object_id, Stage};
use crate::ejson::ObjectId;
use crate::models::{Domain, Provisioned, Tenant, User};
use crate::ocis::{Ensured, Ocis};
use crate::ops::answers::{answer, MemberCreated, Provisioning};
use crate::ops::invite::{create_identity, undo_identity};
use crate::ops::prologue::prologue;
use crate::ops::saga::audited;
use crate::ops::tenant::not_provisioned;
use crate::ops::tenant::{pick_domain, TenantScope};
use crate::ops::undo;
use crate::ops::user_doc::stamp;
use crate::ports::Http;
use crate::problem::{Error, UpstreamError};
use crate::random::temp_password;
use crate::request::{ApiRequest, ApiResponse, Route};
use crate::routes;
use crate::stalwart::{NewMailbox, Stalwart};
use crate::types::{DomainName, Email, LocalPart, MemberRole, PersonName, Role};
use futures::TryFutureExt;
use serde::Deserialize;
use serde_json::{json, Value};

pub const CREATE: Route = routes::route("members-create");

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CreateBody {
    name: PersonName,
    /// Kept raw here so its rule's message is the seed's, checked after the domain.
    local_part: String,
    role: MemberRole,
    domain: Option<DomainName>,
}

/// The state of one best-effort side system after provisioning.
struct SideOutcome {
    status: Provisioned,
    id: Option<String>,
    /// Whether this request created it (and so must undo it on failure).
    created: bool,
    note: Option<String>,
}

impl SideOutcome {
    fn skipped(note: Option<String>) -> Self {
        Self { status: Provisioned::Skipped, id: None, created: false, note }
    }
    fn failed(e: UpstreamError) -> Self {
        Self { status: Provisioned::Error, id: None, created: false, note: Some(e.to_string()) }
    }
}

/// The stages joined to each of the tenant's domains for row 18's
/// duplicate check: `__email` is `<local>@<domain as stored>`, and
/// `__users` every `User` with exactly that e-mail (their `tenantIds`
/// only), an equality join on `email`. `None` when the body names no valid
/// local part (the request fails on it later, in the usual order).
fn users_at_each_domain(body: &CreateBody) -> Option<Vec<Stage>> {
    let local = LocalPart::parse(&body.local_part).ok()?;
    Some(vec![
        Stage::AddFields(json!({ "__email": { "$concat": [format!("{local}@"), "$domain"] } })),
        Stage::LookupPipeline {
            from: coll::USERS,
            local_field: "__email",
            foreign_field: "email",
            pipeline: vec![Stage::Project(json!({ "_id": 0, "tenantIds": 1 }))],
            as_field: "__users",
        },
    ])
}

/// Whether a `User` already has `email` in `tenant`, from the chosen
/// domain's joined document: the same answer as
/// `findOne({email, tenantIds: tenant})`. `None` when the join cannot
/// tell: it matched `<local>@<domain as stored>`, which is `email` only
/// when the stored domain is already trimmed and lower-case.
fn duplicate_from_join(joined: &[Value], domain: &Domain, email: &Email, tenant: &ObjectId) -> Option<bool> {
    let doc = joined.iter().find(|d| d.get("_id").and_then(object_id) == Some(domain.id))?;
    if doc.get("__email").and_then(Value::as_str) != Some(email.as_str()) {
        return None;
    }
    let users = doc.get("__users")?.as_array()?;
    // MongoDB's `{tenantIds: id}`: the field equals id, or is an array
    // holding it.
    let holds = |v: &Value| match v {
        Value::Array(ids) => ids.iter().any(|x| object_id(x).as_ref() == Some(tenant)),
        x => object_id(x).as_ref() == Some(tenant),
    };
    Some(users.iter().any(|u| u.get("tenantIds").is_some_and(holds)))
}

/// What the request creates a member as, once its rules passed.
struct NewMember {
    email: Email,
    local: LocalPart,
    domain: Domain,
    role: Role,
    name: PersonName,
    group: String,
}

/// Row 18. Critical path: (caller ∥ tenant+domains+users at each domain)
/// → identity → (password ∥ mailbox ∥ file account) → (User ∥ audit):
/// four sequential round trips (a fifth, the plain duplicate check, only
/// when a stored domain is not in canonical form).
pub async fn run<H: Http>(ctx: &Ctx<H>, req: &ApiRequest) -> Result<ApiResponse, Error> {
    let body = req.json::<CreateBody>();
    let stages = body.as_ref().ok().and_then(users_at_each_domain).unwrap_or_default();
    let (scope, body) = prologue(ctx, req, &CREATE).parsed(body).tenant(TenantRule::AdminsAndPartner).joined(stages).scope().await?;
    let new = check(ctx, &scope, body).await?;
    let TenantScope { caller, tenant, .. } = &scope;

    // 1) The identity (required); the same password signs in everywhere.
    let ak = ctx.authentik()?;
    let invited_at = ctx.now.to_iso();
    let password = temp_password();
    let identity = NewUser {
        username: new.email.as_str(),
        email: new.email.as_str(),
        name: new.name.as_str(),
        groups: vec![new.group.clone()],
        attributes: json!({ "tenantSlug": tenant.slug, "invitedBy": caller.actor()["email"], "invitedAt": invited_at }),
    };
    let created = create_identity(&ak, identity).await.map_err(|e| match e {
        // The username is taken: a concurrent identical request won the
        // race (or the address exists outside this workspace's documents).
        Error::Upstream(u) if u.is_taken() => Error::conflict(format!("{} already exists in this workspace.", new.email)),
        e => e,
    })?;

    // 2) Password, mailbox and file account, concurrently.
    let mail = ctx.stalwart();
    let file_accounts = ctx.ocis().filter(|_| !ocis_autoprovision(ctx.vars()));
    let (pw, mailbox, files) = futures::join!(
        ak.set_password(created.pk, &password),
        create_mailbox(mail.as_ref(), &new, &password),
        create_file_account(file_accounts.as_ref(), &new)
    );

    // 3) The User document and its audit event, concurrently (`audited`:
    // whichever fails, the other is undone).
    let written = match pw {
        Err(e) => Err(Error::from(e)),
        Ok(()) => {
            let db = ctx.db()?;
            let subject = User::by_subject(&created.uid);
            let update = stamp(ctx, user_update(&new, tenant, created.pk, &mailbox, &files));
            let event = AuditEvent::user("tenant.user_created", created.uid.as_str(), new.email.as_str())
                .tenant(&tenant.slug)
                .metadata(json!({ "name": new.name, "role": new.role, "mailbox": mailbox.status, "ocis": files.status }));
            // The document is keyed by the identity this request created:
            // only this request wrote it, so its undo deletes it.
            let doc = async { Ok(db.update_one(coll::USERS, subject.clone(), update, true).await.map(|_| ())?) };
            audited(ctx, caller, event, doc, || db.delete_one(coll::USERS, subject.clone()).map_ok(|_| ())).await
        }
    };
    if let Err(e) = written {
        // No orphans: everything this request created goes again (each
        // delete tried again while its failure may be passing).
        if let (true, Some(id), Some(mail)) = (mailbox.created, &mailbox.id, &mail) {
            let _ = undo::deleted(&format!("undo: deleting mailbox {id}"), || mail.delete_mailbox(id)).await;
        }
        if let (true, Some(id), Some(ocis)) = (files.created, &files.id, &file_accounts) {
            let _ = undo::deleted(&format!("undo: deleting file account {id}"), || ocis.delete_user(id)).await;
        }
        undo_identity(&ak, created.pk).await;
        return Err(e);
    }

    let stalwart_error = if mailbox.status == Provisioned::Error { mailbox.note } else { None };
    let out = MemberCreated {
        email: new.email.to_string(),
        temp_password: password,
        provisioning: Provisioning { authentik: Provisioned::Ok, stalwart: mailbox.status, ocis: files.status },
        stalwart_error,
        ocis_note: files.note,
    };
    Ok(answer(201, &out))
}

/// The rules, in the seed's order: the tenant can take members, the domain
/// (named, else primary, else oldest), the address, and no member of this
/// tenant has it yet (`409`).
async fn check<H: Http>(ctx: &Ctx<H>, scope: &TenantScope, body: CreateBody) -> Result<NewMember, Error> {
    let TenantScope { tenant, domains, joined, .. } = scope;
    let group = tenant.authentik_group_id.clone().ok_or_else(|| not_provisioned(tenant))?;
    let domain = pick_domain(domains, body.domain.as_ref())
        .ok_or_else(|| Error::bad_request("Add a domain to this workspace before creating users."))?
        .clone();
    let local = LocalPart::parse(&body.local_part).map_err(Error::BadRequest)?;
    let email = Email::parse(&format!("{local}@{}", domain.domain)).map_err(Error::BadRequest)?;
    let duplicate = match duplicate_from_join(joined, &domain, &email, &tenant.id) {
        Some(d) => d,
        None => {
            let filter = json!({ "email": email, "tenantIds": tenant.id });
            ctx.db()?.find_one(coll::USERS, filter, Some(json!({ "_id": 1 }))).await?.is_some()
        }
    };
    if duplicate {
        return Err(Error::conflict(format!("{email} already exists in this workspace.")));
    }
    Ok(NewMember { email, local, domain, role: body.role.into(), name: body.name, group })
}

/// The mailbox, best-effort: skipped without mail or a mail domain.
async fn create_mailbox<H: Http>(mail: Option<&Stalwart<'_, H>>, new: &NewMember, password: &str) -> SideOutcome {
    let (Some(mail), Some(domain_id)) = (mail, &new.domain.stalwart_id) else { return SideOutcome::skipped(None) };
    let m = NewMailbox { domain_id, local_part: new.local.as_str(), full_name: new.name.as_str(), password };
    match mail.create_mailbox_at(m, new.email.as_str()).await {
        Ok(id) => SideOutcome { status: Provisioned::Ok, id: Some(id), created: true, note: None },
        Err(e) => SideOutcome::failed(e),
    }
}

/// The file account, best-effort: skipped when OCIS provisions accounts
/// itself on first sign-in; an existing one is used, not created.
async fn create_file_account<H: Http>(ocis: Option<&Ocis<'_, H>>, new: &NewMember) -> SideOutcome {
    let Some(ocis) = ocis else { return SideOutcome::skipped(Some("auto-provisions on first sign-in".into())) };
    match ocis.ensure_user(new.email.as_str(), new.name.as_str(), new.email.as_str()).await {
        Ok(Ensured::Created(id)) => SideOutcome { status: Provisioned::Ok, id: Some(id), created: true, note: None },
        Ok(Ensured::Existing(id)) => SideOutcome { status: Provisioned::Ok, id: Some(id), created: false, note: None },
        Err(e) => SideOutcome::failed(e),
    }
}

/// The `User` document's upsert: keyed by the new identity; an existing
/// person's global fields are only seeded on insert.
fn user_update(new: &NewMember, tenant: &Tenant, pk: i64, mailbox: &SideOutcome, files: &SideOutcome) -> Value {
    let mut provisioning = json!({ "authentik": "ok", "stalwart": mailbox.status, "ocis": files.status });
    if mailbox.status == Provisioned::Error {
        provisioning["stalwartError"] = json!(mailbox.note);
    }
    if let Some(n) = &files.note {
        provisioning["ocisNote"] = json!(n);
    }
    let mut set = json!({
        "email": new.email, "name": new.name, "mailboxAddress": new.email,
        "authentikUserPk": pk, "provisioning": provisioning,
    });
    set[format!("tenantRoles.{}", tenant.id)] = json!(new.role);
    if let Some(id) = &mailbox.id {
        set["stalwartAccountId"] = json!(id);
    }
    if let Some(id) = &files.id {
        set["ocisUserId"] = json!(id);
    }
    json!({
        "$set": set,
        "$setOnInsert": { "role": new.role, "active": true, "platformAdmin": false },
        "$addToSet": { "tenantIds": tenant.id },
    })
}

//! The demo data every emulator is seeded with: one consistent world across
//! the database, Authentik, Stalwart and OCIS, so that a developer (or a test)
//! can sign in as any role and every cross-system reference resolves.
//!
//! - an operator (platform admin);
//! - partners `northwind` (owner, unscoped staff, staff scoped to `acme`) and
//!   `southpole` (an admin);
//! - tenants `acme` (northwind; two domains, DKK), `globex` (northwind; EUR),
//!   `initech` (southpole; USD; two domains, neither primary), `hooli` (southpole; pending: no identity group,
//!   no domain) and `umbrella` (northwind; deleted);
//! - members of each role, one inactive admin and one member of two tenants,
//!   created in an order their `_id`s do not follow (see [`User::created_day`]).

use serde_json::{json, Value};

/// Authentik's OIDC application slug; the issuer is `<authentik>/application/o/<slug>/`.
pub const OIDC_APP_SLUG: &str = "dezky";
/// The `aud` (client id) of the dev tokens.
pub const OIDC_AUDIENCE: &str = "dezky-dev-client";
pub const PLATFORM_ADMIN_GROUP: &str = "dezky-platform-admins";
pub const PARTNER_STAFF_GROUP: &str = "dezky-partner-staff";
pub const TENANT_GROUP_PREFIX: &str = "dezky-tenant-";
pub const PLATFORM_ADMIN_GROUP_UUID: &str = "0b7d3c2a-0000-4000-8000-000000000001";
pub const PARTNER_STAFF_GROUP_UUID: &str = "0b7d3c2a-0000-4000-8000-000000000002";
/// Data API key the emulator accepts (dev only).
pub const DATA_API_KEY: &str = "dev-data-api-key";
pub const AUTHENTIK_TOKEN: &str = "dev-authentik-token";
pub const STALWART_TOKEN: &str = "dev-stalwart-token";
pub const OCIS_TOKEN: &str = "dev-ocis-token";
/// A fixed instant the demo documents were created at (2026-01-15T09:00:00Z).
pub const CREATED_AT_MS: i64 = 1_768_467_600_000;

#[derive(Clone, Copy, Debug)]
pub struct Partner {
    pub id: &'static str,
    pub slug: &'static str,
    pub name: &'static str,
}

pub const NORTHWIND: Partner = Partner { id: "65c000000000000000000001", slug: "northwind", name: "Northwind Partners" };
pub const SOUTHPOLE: Partner = Partner { id: "65c000000000000000000002", slug: "southpole", name: "Southpole Reseller" };
pub const PARTNERS: [Partner; 2] = [NORTHWIND, SOUTHPOLE];

#[derive(Clone, Copy, Debug)]
pub struct Tenant {
    pub id: &'static str,
    pub slug: &'static str,
    pub name: &'static str,
    pub partner: Partner,
    /// `active` | `pending` | `suspended` | `deleted`
    pub status: &'static str,
    /// The tenant's Authentik group (uuid); `None` for a half-provisioned tenant.
    pub group_uuid: Option<&'static str>,
    pub seats: i32,
}

pub const ACME: Tenant = Tenant {
    id: "65b000000000000000000001",
    slug: "acme",
    name: "Acme A/S",
    partner: NORTHWIND,
    status: "active",
    group_uuid: Some("0b7d3c2a-0000-4000-8000-0000000000a1"),
    seats: 10,
};
pub const GLOBEX: Tenant = Tenant {
    id: "65b000000000000000000002",
    slug: "globex",
    name: "Globex GmbH",
    partner: NORTHWIND,
    status: "active",
    group_uuid: Some("0b7d3c2a-0000-4000-8000-0000000000a2"),
    seats: 5,
};
pub const INITECH: Tenant = Tenant {
    id: "65b000000000000000000003",
    slug: "initech",
    name: "Initech Inc.",
    partner: SOUTHPOLE,
    status: "active",
    group_uuid: Some("0b7d3c2a-0000-4000-8000-0000000000a3"),
    seats: 20,
};
pub const HOOLI: Tenant = Tenant {
    id: "65b000000000000000000004",
    slug: "hooli",
    name: "Hooli ApS",
    partner: SOUTHPOLE,
    status: "pending",
    group_uuid: None,
    seats: 3,
};
pub const UMBRELLA: Tenant = Tenant {
    id: "65b000000000000000000005",
    slug: "umbrella",
    name: "Umbrella Corp",
    partner: NORTHWIND,
    status: "deleted",
    group_uuid: Some("0b7d3c2a-0000-4000-8000-0000000000a5"),
    seats: 5,
};
pub const TENANTS: [Tenant; 5] = [ACME, GLOBEX, INITECH, HOOLI, UMBRELLA];

#[derive(Clone, Copy, Debug)]
pub struct Domain {
    pub id: &'static str,
    pub tenant: Tenant,
    pub domain: &'static str,
    pub is_primary: bool,
    /// The Stalwart `x:Domain` id.
    pub stalwart_id: &'static str,
    /// `createdAt`, in days after [`CREATED_AT_MS`].
    pub created_day: i64,
}

/// `initech` has no primary domain, and its oldest domain by `createdAt`
/// (`initech-legacy.test`) has the higher `_id`: "the oldest domain" and
/// "the lowest id" disagree there.
pub const DOMAINS: [Domain; 6] = [
    Domain { id: "65d000000000000000000001", tenant: ACME, domain: "acme.test", is_primary: true, stalwart_id: "b", created_day: 0 },
    Domain { id: "65d000000000000000000002", tenant: ACME, domain: "mail.acme.test", is_primary: false, stalwart_id: "c", created_day: 1 },
    Domain { id: "65d000000000000000000003", tenant: GLOBEX, domain: "globex.test", is_primary: true, stalwart_id: "d", created_day: 2 },
    Domain { id: "65d000000000000000000004", tenant: INITECH, domain: "initech.test", is_primary: false, stalwart_id: "e", created_day: 3 },
    Domain {
        id: "65d000000000000000000005",
        tenant: UMBRELLA,
        domain: "umbrella.test",
        is_primary: true,
        stalwart_id: "f",
        created_day: 4,
    },
    Domain {
        id: "65d000000000000000000006",
        tenant: INITECH,
        domain: "initech-legacy.test",
        is_primary: false,
        stalwart_id: "g",
        created_day: 1,
    },
];

/// A person that exists in Authentik and in the `users` collection.
#[derive(Clone, Copy, Debug)]
pub struct User {
    /// `User._id` (ObjectId hex).
    pub id: &'static str,
    /// Authentik `uid` = OIDC `sub` = `User.authentikSubjectId`.
    pub sub: &'static str,
    /// Authentik `pk` = `User.authentikUserPk`.
    pub pk: i64,
    pub email: &'static str,
    pub name: &'static str,
    /// Global (legacy) role: `owner` | `admin` | `member`.
    pub role: &'static str,
    pub platform_admin: bool,
    pub partner: Option<Partner>,
    /// Tenants scoped partner staff may reach (`partnerTenantAccess`).
    pub partner_tenant_access: &'static [Tenant],
    /// Tenant memberships with the per-tenant role.
    pub tenants: &'static [(Tenant, &'static str)],
    pub active: bool,
    /// The Stalwart `x:Account` id of the member's mailbox, if provisioned.
    pub stalwart_account: Option<&'static str>,
    /// `createdAt`, in days after [`CREATED_AT_MS`]. Deliberately not in
    /// `_id` order, with ties (acme's owner and member; Nate and Max), as in
    /// documents imported from the NestJS service or written by several
    /// clocks: a list sorted by `_id` instead of `createdAt` shows it.
    pub created_day: i64,
}

const NO_TENANTS: &[(Tenant, &str)] = &[];

pub const OPERATOR: User = User {
    id: "65a000000000000000000001",
    sub: "demo-sub-olivia-operator",
    pk: 101,
    email: "olivia@dezky.test",
    name: "Olivia Operator",
    role: "admin",
    platform_admin: true,
    partner: None,
    partner_tenant_access: &[],
    tenants: NO_TENANTS,
    active: true,
    stalwart_account: None,
    created_day: 0,
};
pub const NORTHWIND_OWNER: User = User {
    id: "65a000000000000000000002",
    sub: "demo-sub-nina-owner",
    pk: 102,
    email: "nina@northwind.test",
    name: "Nina Northwind",
    role: "owner",
    platform_admin: false,
    partner: Some(NORTHWIND),
    partner_tenant_access: &[],
    tenants: NO_TENANTS,
    active: true,
    stalwart_account: None,
    created_day: 5,
};
pub const NORTHWIND_STAFF: User = User {
    id: "65a000000000000000000003",
    sub: "demo-sub-nate-staff",
    pk: 103,
    email: "nate@northwind.test",
    name: "Nate Staff",
    role: "member",
    platform_admin: false,
    partner: Some(NORTHWIND),
    partner_tenant_access: &[],
    tenants: NO_TENANTS,
    active: true,
    stalwart_account: None,
    created_day: 2,
};
pub const NORTHWIND_SCOPED: User = User {
    id: "65a000000000000000000004",
    sub: "demo-sub-nora-scoped",
    pk: 104,
    email: "nora@northwind.test",
    name: "Nora Scoped",
    role: "member",
    platform_admin: false,
    partner: Some(NORTHWIND),
    partner_tenant_access: &[ACME],
    tenants: NO_TENANTS,
    active: true,
    stalwart_account: None,
    created_day: 7,
};
pub const SOUTHPOLE_ADMIN: User = User {
    id: "65a000000000000000000005",
    sub: "demo-sub-sam-admin",
    pk: 105,
    email: "sam@southpole.test",
    name: "Sam Southpole",
    role: "admin",
    platform_admin: false,
    partner: Some(SOUTHPOLE),
    partner_tenant_access: &[],
    tenants: NO_TENANTS,
    active: true,
    stalwart_account: None,
    created_day: 1,
};
pub const ACME_OWNER: User = User {
    id: "65a000000000000000000006",
    sub: "demo-sub-alice-owner",
    pk: 106,
    email: "alice@acme.test",
    name: "Alice Acme",
    role: "owner",
    platform_admin: false,
    partner: None,
    partner_tenant_access: &[],
    tenants: &[(ACME, "owner")],
    active: true,
    stalwart_account: Some("m1"),
    created_day: 9,
};
pub const ACME_ADMIN: User = User {
    id: "65a000000000000000000007",
    sub: "demo-sub-adam-admin",
    pk: 107,
    email: "adam@acme.test",
    name: "Adam Admin",
    role: "admin",
    platform_admin: false,
    partner: None,
    partner_tenant_access: &[],
    tenants: &[(ACME, "admin")],
    active: true,
    stalwart_account: Some("m2"),
    created_day: 3,
};
pub const ACME_MEMBER: User = User {
    id: "65a000000000000000000008",
    sub: "demo-sub-mia-member",
    pk: 108,
    email: "mia@acme.test",
    name: "Mia Member",
    role: "member",
    platform_admin: false,
    partner: None,
    partner_tenant_access: &[],
    tenants: &[(ACME, "member")],
    active: true,
    stalwart_account: Some("m3"),
    created_day: 9,
};
pub const ACME_INACTIVE_ADMIN: User = User {
    id: "65a000000000000000000009",
    sub: "demo-sub-ivan-inactive",
    pk: 109,
    email: "ivan@acme.test",
    name: "Ivan Inactive",
    role: "admin",
    platform_admin: false,
    partner: None,
    partner_tenant_access: &[],
    tenants: &[(ACME, "admin")],
    active: false,
    stalwart_account: None,
    created_day: 4,
};
pub const GLOBEX_ADMIN: User = User {
    id: "65a00000000000000000000a",
    sub: "demo-sub-gina-admin",
    pk: 110,
    email: "gina@globex.test",
    name: "Gina Globex",
    role: "admin",
    platform_admin: false,
    partner: None,
    partner_tenant_access: &[],
    tenants: &[(GLOBEX, "admin")],
    active: true,
    stalwart_account: Some("m4"),
    created_day: 8,
};
pub const INITECH_ADMIN: User = User {
    id: "65a00000000000000000000b",
    sub: "demo-sub-ian-admin",
    pk: 111,
    email: "ian@initech.test",
    name: "Ian Initech",
    role: "admin",
    platform_admin: false,
    partner: None,
    partner_tenant_access: &[],
    tenants: &[(INITECH, "admin")],
    active: true,
    stalwart_account: Some("m5"),
    created_day: 6,
};
/// Member of acme (member) and globex (admin): `tenantRoles` differ per tenant.
pub const MULTI_TENANT: User = User {
    id: "65a00000000000000000000c",
    sub: "demo-sub-max-multi",
    pk: 112,
    email: "max@acme.test",
    name: "Max Multi",
    role: "member",
    platform_admin: false,
    partner: None,
    partner_tenant_access: &[],
    tenants: &[(ACME, "member"), (GLOBEX, "admin")],
    active: true,
    stalwart_account: Some("m6"),
    created_day: 2,
};

pub const USERS: [User; 12] = [
    OPERATOR,
    NORTHWIND_OWNER,
    NORTHWIND_STAFF,
    NORTHWIND_SCOPED,
    SOUTHPOLE_ADMIN,
    ACME_OWNER,
    ACME_ADMIN,
    ACME_MEMBER,
    ACME_INACTIVE_ADMIN,
    GLOBEX_ADMIN,
    INITECH_ADMIN,
    MULTI_TENANT,
];

/// A subscription per active tenant, one currency each.
#[derive(Clone, Copy, Debug)]
pub struct Subscription {
    pub id: &'static str,
    pub tenant: Tenant,
    pub plan: &'static str,
    pub cycle: &'static str,
    pub currency: &'static str,
    pub seats: i32,
    /// Per seat, per cycle, in minor units.
    pub per_seat_amount: i64,
    pub status: &'static str,
}

pub const SUBSCRIPTIONS: [Subscription; 4] = [
    Subscription {
        id: "65e000000000000000000001",
        tenant: ACME,
        plan: "pro",
        cycle: "monthly",
        currency: "DKK",
        seats: 10,
        per_seat_amount: 7500,
        status: "active",
    },
    Subscription {
        id: "65e000000000000000000002",
        tenant: GLOBEX,
        plan: "mvp",
        cycle: "yearly",
        currency: "EUR",
        seats: 5,
        per_seat_amount: 12000,
        status: "active",
    },
    Subscription {
        id: "65e000000000000000000003",
        tenant: INITECH,
        plan: "pro",
        cycle: "quarterly",
        currency: "USD",
        seats: 20,
        per_seat_amount: 3000,
        status: "active",
    },
    Subscription {
        id: "65e000000000000000000004",
        tenant: UMBRELLA,
        plan: "mvp",
        cycle: "monthly",
        currency: "EUR",
        seats: 5,
        per_seat_amount: 1000,
        status: "cancelled",
    },
];

fn oid(hex: &str) -> Value {
    json!({ "$oid": hex })
}

/// A date `days` after [`CREATED_AT_MS`], canonical EJSON.
fn date(days: i64) -> Value {
    json!({ "$date": { "$numberLong": (CREATED_AT_MS + days * 86_400_000).to_string() } })
}

fn int(n: i64) -> Value {
    json!({ "$numberInt": n.to_string() })
}

/// The database: collection name → documents, in canonical Extended JSON.
pub fn collections() -> Vec<(&'static str, Vec<Value>)> {
    let partners = PARTNERS
        .iter()
        .map(|p| json!({"_id": oid(p.id), "slug": p.slug, "name": p.name, "status": "active", "createdAt": date(0), "updatedAt": date(0)}))
        .collect();
    let tenants = TENANTS
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let mut doc = json!({
                "_id": oid(t.id), "slug": t.slug, "name": t.name, "status": t.status,
                "partnerId": oid(t.partner.id), "seats": int(t.seats.into()),
                "provisioningStatus": {"authentik": if t.group_uuid.is_some() { "ok" } else { "pending" },
                    "stalwart": "ok", "ocis": "ok"},
                "createdAt": date(i as i64), "updatedAt": date(i as i64),
            });
            if let Some(g) = t.group_uuid {
                doc["authentikGroupId"] = json!(g);
            }
            doc
        })
        .collect();
    let domains = DOMAINS
        .iter()
        .map(|d| {
            json!({"_id": oid(d.id), "tenantId": oid(d.tenant.id), "domain": d.domain,
            "isPrimary": d.is_primary, "stalwartId": d.stalwart_id, "verified": true,
            "createdAt": date(d.created_day), "updatedAt": date(d.created_day)})
        })
        .collect();
    let users = USERS
        .iter()
        .map(|u| {
            let mut doc = json!({
                "_id": oid(u.id), "authentikSubjectId": u.sub, "authentikUserPk": int(u.pk),
                "email": u.email, "name": u.name, "role": u.role, "platformAdmin": u.platform_admin,
                "active": u.active,
                "tenantIds": u.tenants.iter().map(|(t, _)| oid(t.id)).collect::<Vec<_>>(),
                "createdAt": date(u.created_day), "updatedAt": date(u.created_day),
            });
            if !u.tenants.is_empty() {
                doc["tenantRoles"] = u.tenants.iter().map(|(t, r)| (t.id.to_string(), json!(r))).collect();
            }
            if let Some(p) = u.partner {
                doc["partnerId"] = oid(p.id);
            }
            if !u.partner_tenant_access.is_empty() {
                doc["partnerTenantAccess"] = u.partner_tenant_access.iter().map(|t| oid(t.id)).collect();
            }
            if let Some(acc) = u.stalwart_account {
                doc["stalwartAccountId"] = json!(acc);
                doc["mailboxAddress"] = json!(u.email);
                doc["provisioning"] = json!({"authentik": "ok", "stalwart": "ok", "ocis": "skipped",
                    "ocisNote": "auto-provisions on first sign-in"});
            }
            doc
        })
        .collect();
    let subscriptions = SUBSCRIPTIONS
        .iter()
        .enumerate()
        .map(|(i, s)| {
            json!({"_id": oid(s.id), "tenantId": oid(s.tenant.id), "plan": s.plan,
            "cycle": s.cycle, "currency": s.currency, "seats": int(s.seats.into()),
            "perSeatAmount": int(s.per_seat_amount), "status": s.status,
            "createdAt": date(i as i64), "updatedAt": date(i as i64)})
        })
        .collect();
    let mut prices = Vec::new();
    for (i, (plan, amounts)) in [("mvp", [1000, 900, 800]), ("pro", [7500, 3000, 1200])].iter().enumerate() {
        for (j, currency) in ["DKK", "EUR", "USD"].iter().enumerate() {
            prices.push(json!({"_id": oid(&format!("65f0000000000000000000{}{}", i, j)), "plan": plan,
                "cycle": "monthly", "currency": currency, "perSeatAmount": int(amounts[j]),
                "active": true, "createdAt": date(0), "updatedAt": date(0)}));
        }
    }
    let auditevents = vec![
        json!({"_id": oid("65aa00000000000000000001"), "action": "tenant.user_created", "resourceType": "user",
            "resourceId": ACME_MEMBER.sub, "resourceName": ACME_MEMBER.email, "tenantSlug": "acme",
            "metadata": {"name": ACME_MEMBER.name, "role": "member", "mailbox": "ok", "ocis": "skipped"},
            "actor": {"userId": ACME_OWNER.id, "email": ACME_OWNER.email}, "createdAt": date(ACME_MEMBER.created_day)}),
        json!({"_id": oid("65aa00000000000000000002"), "action": "partner.user_invited", "resourceType": "user",
            "resourceId": NORTHWIND_STAFF.sub, "resourceName": NORTHWIND_STAFF.email, "partnerSlug": "northwind",
            "metadata": {"role": "partner-staff", "name": NORTHWIND_STAFF.name, "handoff": "recovery-link"},
            "actor": {"userId": OPERATOR.id, "email": OPERATOR.email}, "createdAt": date(NORTHWIND_STAFF.created_day)}),
    ];
    vec![
        ("partners", partners),
        ("tenants", tenants),
        ("domains", domains),
        ("users", users),
        ("subscriptions", subscriptions),
        ("prices", prices),
        ("auditevents", auditevents),
    ]
}

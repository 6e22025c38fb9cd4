//! Who is calling: the verified token, and the caller's `User` document.
//! Roles come from the database (docs/api.md "Who is calling"); the token only
//! proves identity, plus platform admin by group.

use serde_json::{json, Map, Value};

use crate::auth::jwks;
use crate::auth::jwt::{self, Expectations, Jwks, JwtError};
use crate::ctx::Ctx;
use crate::data_api::{coll, decode};
use crate::models::User;
use crate::ports::Http;
use crate::problem::Error;
use crate::request::ApiRequest;
use crate::types::Subject;

/// Clock skew tolerated on `exp`/`nbf`.
const LEEWAY_SECS: i64 = 60;

/// What a verified token says.
#[derive(Clone, Debug)]
pub struct TokenIdentity {
    /// The token's `sub`, well-formed (never blank).
    pub subject: Subject,
    /// Lower-cased; `None` when the token has no `email` claim.
    pub email: Option<String>,
    /// `name`, else `preferred_username`.
    pub name: Option<String>,
    pub groups: Vec<String>,
}

/// An authenticated caller.
#[derive(Clone, Debug)]
pub struct Caller {
    pub token: TokenIdentity,
    /// The token's groups contain `platform_admin_group`.
    pub token_platform_admin: bool,
    /// The caller's `User`, if one exists.
    pub user: Option<User>,
}

impl Caller {
    /// P: the token says so, or the `User` does. An inactive user is never P.
    pub fn is_platform_admin(&self) -> bool {
        let active = self.user.as_ref().is_none_or(|u| u.active);
        active && self.has_platform_role()
    }

    /// P's role, active or not: what makes every workspace visible, so an
    /// inactive P is refused (`403`) rather than told it does not exist.
    pub fn has_platform_role(&self) -> bool {
        self.token_platform_admin || self.user.as_ref().is_some_and(|u| u.platform_admin)
    }

    pub fn active_user(&self) -> Option<&User> {
        self.user.as_ref().filter(|u| u.active)
    }

    /// The caller's e-mail: their `User`'s, else the token's.
    pub fn email(&self) -> String {
        self.user.as_ref().map(|u| u.email.clone()).or_else(|| self.token.email.clone()).unwrap_or_default()
    }

    /// The audit actor (docs/api.md): `{userId, email}`, `userId` the caller's
    /// `User._id` as 24 hex (what the seed's role guard compares with
    /// `User._id`), never the token's `sub`. A caller with no `User` yet (a
    /// platform admin known only by the token's group) has no `_id` to name:
    /// `userId` is left out rather than filled with an id of another kind,
    /// and the e-mail still says who acted.
    pub fn actor(&self) -> Value {
        let mut actor = json!({ "email": self.email() });
        if let Some(u) = &self.user {
            actor["userId"] = json!(u.id.to_hex());
        }
        actor
    }

    /// `403` unless the caller is P (the fixed check of P-only routes).
    pub fn require_platform_admin(&self) -> Result<(), Error> {
        if self.is_platform_admin() {
            Ok(())
        } else {
            Err(Error::forbidden("Only platform administrators may do this."))
        }
    }
}

/// Verifies the bearer token (`401` on any failure).
pub async fn verify_token<H: Http>(ctx: &Ctx<H>, req: &ApiRequest) -> Result<TokenIdentity, Error> {
    let header = req.authorization.as_deref().ok_or_else(|| Error::Unauthorized("A bearer token is required.".into()))?;
    let token = header
        .split_once(' ')
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim())
        .filter(|t| !t.is_empty())
        .ok_or_else(|| Error::Unauthorized("The Authorization header must be `Bearer <token>`.".into()))?;
    let oidc = ctx.oidc()?;
    let expect = Expectations {
        issuer: &oidc.issuer,
        audience: &oidc.audience,
        now_unix: ctx.now.millis().div_euclid(1000),
        leeway_secs: LEEWAY_SECS,
    };
    let verdict = match &oidc.jwks {
        Some(inline) => {
            let jwks = Jwks::parse(inline).map_err(|e| Error::Internal(format!("oidc_jwks: {e:?}")))?;
            jwt::verify(token, &jwks, &expect)
        }
        None => {
            let url = oidc.jwks_url.as_deref().unwrap_or_default();
            jwks::check_with(ctx, url, oidc.timeout, |set| jwt::verify(token, set, &expect)).await?
        }
    };
    let claims = verdict.map_err(|e| Error::Unauthorized(token_message(&e).into()))?;
    identity(&claims).ok_or_else(|| Error::Unauthorized(token_message(&JwtError::MissingClaim("sub")).into()))
}

fn token_message(e: &JwtError) -> &'static str {
    match e {
        JwtError::Expired => "The token has expired.",
        JwtError::NotYetValid => "The token is not valid yet.",
        JwtError::WrongIssuer | JwtError::WrongAudience => "The token was not issued for this service.",
        _ => "The token is invalid.",
    }
}

/// What the claims say; `None` when `sub` is not a [`Subject`] (blank, or
/// with spaces): such a token names nobody, and must never match, or
/// create, a `User` with that subject.
fn identity(claims: &Map<String, Value>) -> Option<TokenIdentity> {
    let s = |k: &str| claims.get(k).and_then(Value::as_str).map(str::trim).filter(|v| !v.is_empty()).map(str::to_owned);
    let subject = Subject::parse(claims.get("sub").and_then(Value::as_str)?).ok()?;
    Some(TokenIdentity {
        subject,
        email: s("email").map(|e| e.to_lowercase()),
        name: s("name").or_else(|| s("preferred_username")),
        groups: match claims.get("groups") {
            Some(Value::Array(g)) => g.iter().filter_map(Value::as_str).map(str::to_owned).collect(),
            _ => vec![],
        },
    })
}

/// Verifies the token and loads the caller's `User` (one round trip).
pub async fn authenticate<H: Http>(ctx: &Ctx<H>, req: &ApiRequest) -> Result<Caller, Error> {
    let token = verify_token(ctx, req).await?;
    let user = load_user(ctx, &token.subject).await?;
    let token_platform_admin = token.groups.contains(&ctx.groups().platform_admin);
    Ok(Caller { token, token_platform_admin, user })
}

async fn load_user<H: Http>(ctx: &Ctx<H>, subject: &Subject) -> Result<Option<User>, Error> {
    let doc = ctx.db()?.find_one(coll::USERS, User::by_subject(subject), None).await?;
    Ok(match doc {
        Some(d) => Some(decode(coll::USERS, &d)?),
        None => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(user: Option<Value>) -> Caller {
        let token =
            TokenIdentity { subject: Subject::parse("ak-sub-1").unwrap(), email: Some("token@x.dk".into()), name: None, groups: vec![] };
        Caller { token, token_platform_admin: true, user: user.map(|u| serde_json::from_value(u).expect("a User")) }
    }

    #[test]
    fn the_actor_is_the_users_document_id_not_the_token_subject() {
        let c = caller(Some(json!({
            "_id": { "$oid": "65a000000000000000000abc" },
            "authentikSubjectId": "ak-sub-1",
            "email": "doc@x.dk",
        })));
        assert_eq!(c.actor(), json!({ "userId": "65a000000000000000000abc", "email": "doc@x.dk" }));
    }

    #[test]
    fn a_subject_that_is_not_one_names_nobody() {
        let claims = |sub: Value| json!({ "sub": sub }).as_object().unwrap().clone();
        for bad in [json!(""), json!(" "), json!("\t\n"), json!("a b"), json!(42), Value::Null] {
            assert!(identity(&claims(bad.clone())).is_none(), "{bad}");
        }
        assert_eq!(identity(&claims(json!(" ak-sub-1 "))).unwrap().subject.as_str(), "ak-sub-1");
    }

    #[test]
    fn a_caller_without_a_user_document_is_named_by_email_only() {
        assert_eq!(caller(None).actor(), json!({ "email": "token@x.dk" }));
    }
}

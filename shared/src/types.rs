//! Request values, typed at the edge ("parse, don't validate"): once a value
//! is an [`Email`] or a [`Slug`] it is known to be well-formed, and only
//! typed values are ever put into a database filter. Each type deserialises
//! only from a JSON *string*, so `{"email": {"$ne": ""}}` is a 400, not a query.

use std::fmt;

use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize};

/// Defines a string newtype that deserialises through its `parse`.
macro_rules! string_type {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let raw = String::deserialize(d)?;
                $name::parse(&raw).map_err(de::Error::custom)
            }
        }
    };
}

string_type!(
    /// An e-mail address: trimmed, lower-cased, `local@domain`.
    Email, "e-mail address"
);

impl Email {
    pub fn parse(raw: &str) -> Result<Email, String> {
        let s = raw.trim().to_lowercase();
        let valid = s.len() <= 254
            && s.split_once('@').is_some_and(|(local, domain)| {
                !local.is_empty()
                    && local.len() <= 64
                    && !domain.is_empty()
                    && !domain.contains('@')
                    && domain.split('.').all(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
                    && local.bytes().all(|b| b.is_ascii_graphic() && !b"()<>[]\\,;:\"".contains(&b))
            });
        if valid {
            Ok(Email(s))
        } else {
            Err(format!("{:?} is not a valid e-mail address", raw.trim()))
        }
    }

    pub fn domain(&self) -> &str {
        self.0.split_once('@').map(|(_, d)| d).unwrap_or("")
    }

    pub fn local_part(&self) -> &str {
        self.0.split_once('@').map(|(l, _)| l).unwrap_or("")
    }
}

string_type!(
    /// The part of a mailbox address before `@`: trimmed, lower-cased, and
    /// only letters, digits, dots, hyphens and underscores (the seed's rule).
    LocalPart, "address prefix"
);

impl LocalPart {
    pub fn parse(raw: &str) -> Result<LocalPart, String> {
        let s = raw.trim().to_lowercase();
        if !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b)) {
            Ok(LocalPart(s))
        } else {
            Err("The address prefix may only contain letters, numbers, dots, hyphens and underscores.".into())
        }
    }
}

string_type!(
    /// A domain name as a tenant owns it: trimmed and lower-cased.
    DomainName, "domain"
);

impl DomainName {
    pub fn parse(raw: &str) -> Result<DomainName, String> {
        let s = raw.trim().trim_end_matches('.').to_lowercase();
        let ok = !s.is_empty()
            && s.len() <= 253
            && s.split('.').all(|l| !l.is_empty() && l.len() <= 63 && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'));
        if ok {
            Ok(DomainName(s))
        } else {
            Err(format!("{:?} is not a valid domain", raw.trim()))
        }
    }
}

string_type!(
    /// A tenant or partner slug: lower-case letters, digits and hyphens.
    Slug, "slug"
);

impl Slug {
    pub fn parse(raw: &str) -> Result<Slug, String> {
        let ok = !raw.is_empty() && raw.len() <= 63 && raw.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if ok {
            Ok(Slug(raw.to_owned()))
        } else {
            Err(format!("{raw:?} is not a valid slug"))
        }
    }
}

string_type!(
    /// An Authentik subject (`User.authentikSubjectId`, the token's `sub`).
    Subject, "subject"
);

impl Subject {
    pub fn parse(raw: &str) -> Result<Subject, String> {
        let s = raw.trim();
        if !s.is_empty() && s.len() <= 255 && !s.chars().any(|c| c.is_control() || c.is_whitespace()) {
            Ok(Subject(s.to_owned()))
        } else {
            Err("authentikSubjectId must be a non-empty string without spaces".into())
        }
    }
}

string_type!(
    /// A person's display name: trimmed, 1 to 200 characters.
    PersonName, "name"
);

impl PersonName {
    pub fn parse(raw: &str) -> Result<PersonName, String> {
        match short_text(raw) {
            Some(s) if !s.is_empty() => Ok(PersonName(s.to_owned())),
            _ => Err("name must be 1 to 200 characters".into()),
        }
    }
}

/// `raw` trimmed, if it is at most 200 characters without control characters.
fn short_text(raw: &str) -> Option<&str> {
    let s = raw.trim();
    (s.chars().count() <= 200 && !s.chars().any(char::is_control)).then_some(s)
}

string_type!(
    /// Contact text (a first or last name, a phone number): trimmed, at
    /// most 200 characters, no control characters; empty clears the field.
    ContactText, "text"
);

impl ContactText {
    pub fn parse(raw: &str) -> Result<ContactText, String> {
        short_text(raw)
            .map(|s| ContactText(s.to_owned()))
            .ok_or_else(|| "contact fields must be at most 200 characters, without control characters".into())
    }
}

string_type!(
    /// A secondary e-mail address: an [`Email`], or empty to clear it.
    AlternativeEmail, "e-mail address"
);

impl AlternativeEmail {
    pub fn parse(raw: &str) -> Result<AlternativeEmail, String> {
        if raw.trim().is_empty() {
            return Ok(AlternativeEmail(String::new()));
        }
        Email::parse(raw).map(|e| AlternativeEmail(e.0))
    }
}

/// A user's role: globally (`User.role`) or in one tenant (`tenantRoles`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Owner,
    Admin,
    Member,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::Member => "member",
        }
    }
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "owner" => Some(Role::Owner),
            "admin" => Some(Role::Admin),
            "member" => Some(Role::Member),
            _ => None,
        }
    }
    /// Owners and admins administer what they belong to.
    pub fn is_admin(self) -> bool {
        matches!(self, Role::Owner | Role::Admin)
    }
}

/// The role a workspace admin may give a member (never `owner`: ownership
/// moves only through the transfer route).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MemberRole {
    Admin,
    Member,
}

impl From<MemberRole> for Role {
    fn from(r: MemberRole) -> Role {
        match r {
            MemberRole::Admin => Role::Admin,
            MemberRole::Member => Role::Member,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn email_is_trimmed_lowercased_and_checked() {
        assert_eq!(Email::parse("  Jane.Doe@Example.COM ").unwrap().as_str(), "jane.doe@example.com");
        for bad in ["", "jane", "@x.dk", "jane@", "a@b@c.dk", "jane@exa mple.com", "jane@.dk", "ja ne@x.dk"] {
            assert!(Email::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn typed_values_only_come_from_json_strings() {
        #[derive(Deserialize, Debug)]
        #[allow(dead_code)]
        struct Body {
            email: Email,
        }
        assert!(serde_json::from_value::<Body>(json!({"email": {"$ne": ""}})).is_err());
        assert!(serde_json::from_value::<Body>(json!({"email": 5})).is_err());
        assert!(serde_json::from_value::<Body>(json!({"email": ["a@b.dk"]})).is_err());
        assert!(serde_json::from_value::<Body>(json!({"email": "a@b.dk"})).is_ok());
    }

    #[test]
    fn local_part_follows_the_seed_rule() {
        assert_eq!(LocalPart::parse(" Jane.Doe ").unwrap().as_str(), "jane.doe");
        for ok in ["a", "a_b-c.d", "007"] {
            assert!(LocalPart::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["", "jane doe", "jane@x", "ján", "a+b", "$ne"] {
            assert!(LocalPart::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn slugs_subjects_and_names() {
        assert!(Slug::parse("acme-2").is_ok());
        for bad in ["", "Acme", "a b", "a/b", "$where", "a.b"] {
            assert!(Slug::parse(bad).is_err(), "{bad}");
        }
        assert!(Subject::parse("abc123").is_ok());
        assert!(Subject::parse(" ").is_err());
        assert!(Subject::parse("a b").is_err());
        assert_eq!(PersonName::parse("  Jane ").unwrap().as_str(), "Jane");
        assert!(PersonName::parse("   ").is_err());
        assert!(DomainName::parse("Acme.TEST.").is_ok());
        assert!(DomainName::parse("acme test").is_err());
    }

    #[test]
    fn contact_fields_may_be_cleared_but_not_abused() {
        assert_eq!(ContactText::parse("  +45 12 34 ").unwrap().as_str(), "+45 12 34");
        assert_eq!(ContactText::parse("   ").unwrap().as_str(), "");
        assert!(ContactText::parse(&"x".repeat(201)).is_err());
        assert!(ContactText::parse("a\nb").is_err());
        assert_eq!(AlternativeEmail::parse(" Jane@Home.Test ").unwrap().as_str(), "jane@home.test");
        assert_eq!(AlternativeEmail::parse("").unwrap().as_str(), "");
        assert!(AlternativeEmail::parse("jane").is_err());
    }

    #[test]
    fn roles() {
        assert_eq!(serde_json::from_value::<Role>(json!("owner")).unwrap(), Role::Owner);
        assert!(serde_json::from_value::<MemberRole>(json!("owner")).is_err());
        assert!(Role::Admin.is_admin() && Role::Owner.is_admin() && !Role::Member.is_admin());
    }
}

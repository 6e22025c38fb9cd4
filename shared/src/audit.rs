//! Audit events: `{action, resourceType, resourceId, resourceName,
//! tenantSlug?, partnerSlug?, metadata?, actor?, createdAt}` (the actor is
//! [`Caller::actor`]). Written before the operation answers (never
//! fire-and-forget: the instance may be gone as soon as the response is sent),
//! always through `ops::saga`.

use serde_json::{json, Value};

use crate::caller::Caller;

#[derive(Clone, Debug)]
pub struct AuditEvent {
    pub action: &'static str,
    pub resource_type: &'static str,
    pub resource_id: String,
    pub resource_name: String,
    pub tenant_slug: Option<String>,
    pub partner_slug: Option<String>,
    /// Never holds a password or recovery link.
    pub metadata: Option<Value>,
}

impl AuditEvent {
    pub fn user(action: &'static str, resource_id: impl Into<String>, resource_name: impl Into<String>) -> Self {
        Self {
            action,
            resource_type: "user",
            resource_id: resource_id.into(),
            resource_name: resource_name.into(),
            tenant_slug: None,
            partner_slug: None,
            metadata: None,
        }
    }
    pub fn tenant(mut self, slug: &str) -> Self {
        self.tenant_slug = Some(slug.to_owned());
        self
    }
    pub fn partner(mut self, slug: &str) -> Self {
        self.partner_slug = Some(slug.to_owned());
        self
    }
    pub fn metadata(mut self, m: Value) -> Self {
        self.metadata = Some(m);
        self
    }

    pub fn document(&self, caller: &Caller, created_at: &crate::ejson::DateTime) -> Value {
        let mut doc = json!({
            "action": self.action,
            "resourceType": self.resource_type,
            "resourceId": self.resource_id,
            "resourceName": self.resource_name,
            "actor": caller.actor(),
            "createdAt": created_at.ejson(),
        });
        if let Some(t) = &self.tenant_slug {
            doc["tenantSlug"] = json!(t);
        }
        if let Some(p) = &self.partner_slug {
            doc["partnerSlug"] = json!(p);
        }
        if let Some(m) = &self.metadata {
            doc["metadata"] = m.clone();
        }
        doc
    }
}

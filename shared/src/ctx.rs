//! The context an operation runs in: its ports (HTTP, variables), the
//! request's instant, and the configuration parts read on first use —
//! each upstream's client comes from here, its variables read once.

use std::cell::OnceCell;

use crate::authentik::Authentik;
use crate::config::{DataApiConfig, Groups, OidcConfig, UpstreamConfig};
use crate::data_api::DataApi;
use crate::ejson::{DateTime, ObjectId};
use crate::ocis::Ocis;
use crate::ports::{Http, KeyValue, Variables};
use crate::problem::Error;
use crate::stalwart::Stalwart;

pub struct Ctx<H> {
    pub http: H,
    vars: Box<dyn Variables>,
    /// What outlives this instance: the JWKS cache (`auth::jwks`).
    pub store: Box<dyn KeyValue>,
    /// When the request arrived; every timestamp an operation writes uses it.
    pub now: DateTime,
    data_api: OnceCell<DataApiConfig>,
    oidc: OnceCell<OidcConfig>,
    authentik: OnceCell<UpstreamConfig>,
    stalwart: OnceCell<Option<UpstreamConfig>>,
    ocis: OnceCell<Option<UpstreamConfig>>,
    groups: OnceCell<Groups>,
}

impl<H: Http> Ctx<H> {
    pub fn new(http: H, vars: Box<dyn Variables>, store: Box<dyn KeyValue>, now: DateTime) -> Self {
        Self {
            http,
            vars,
            store,
            now,
            data_api: OnceCell::new(),
            oidc: OnceCell::new(),
            authentik: OnceCell::new(),
            stalwart: OnceCell::new(),
            ocis: OnceCell::new(),
            groups: OnceCell::new(),
        }
    }

    pub fn vars(&self) -> &dyn Variables {
        self.vars.as_ref()
    }

    /// The Data API client (its variables are read once per request).
    pub fn db(&self) -> Result<DataApi<'_, H>, Error> {
        Ok(DataApi::new(&self.http, loaded(&self.data_api, || DataApiConfig::load(self.vars()))?))
    }

    pub fn oidc(&self) -> Result<&OidcConfig, Error> {
        loaded(&self.oidc, || OidcConfig::load(self.vars()))
    }

    /// The Authentik client (required: an error when not configured).
    pub fn authentik(&self) -> Result<Authentik<'_, H>, Error> {
        Ok(Authentik::new(&self.http, loaded(&self.authentik, || UpstreamConfig::authentik(self.vars()))?))
    }

    /// The Stalwart client, when mail provisioning is configured.
    pub fn stalwart(&self) -> Option<Stalwart<'_, H>> {
        let cfg = self.stalwart.get_or_init(|| UpstreamConfig::stalwart(self.vars())).as_ref()?;
        Some(Stalwart::new(&self.http, cfg))
    }

    /// The OCIS client, when file accounts are configured.
    pub fn ocis(&self) -> Option<Ocis<'_, H>> {
        let cfg = self.ocis.get_or_init(|| UpstreamConfig::ocis(self.vars())).as_ref()?;
        Some(Ocis::new(&self.http, cfg))
    }

    pub fn groups(&self) -> &Groups {
        self.groups.get_or_init(|| Groups::load(self.vars()))
    }

    /// A fresh ObjectId: the request's second and 8 CSPRNG bytes.
    pub fn new_object_id(&self) -> ObjectId {
        let mut r = [0u8; 8];
        crate::random::fill(&mut r);
        ObjectId::from_parts((self.now.millis() / 1000) as u32, r)
    }
}

/// The value in `cell`, loaded on first use; a failed load is returned and
/// tried again next time (a missing variable stays an error).
fn loaded<T>(cell: &OnceCell<T>, load: impl FnOnce() -> Result<T, Error>) -> Result<&T, Error> {
    match cell.get() {
        Some(v) => Ok(v),
        None => {
            let v = load()?;
            Ok(cell.get_or_init(|| v))
        }
    }
}

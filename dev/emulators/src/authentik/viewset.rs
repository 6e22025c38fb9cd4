//! Authentik's model endpoints are Django REST framework `ModelViewSet`s:
//! per model a collection (`GET` list, `POST` create) and an item (`GET`,
//! `PUT`, `PATCH`, `DELETE`), with the same method checks, lookup and body
//! handling in the same order. One pair of handlers serves every model
//! through [`Model`]; a model says only what differs.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, Method};
use axum::response::Response;
use serde_json::{Map, Value};

use super::support::parse_query;
use super::{as_object, body_json, handle, method_not_allowed, no_content, AuthentikState, Inner, Mode, Reply};

/// What differs between the users and groups viewsets.
pub(super) trait Model {
    /// What an item's path id resolves to.
    type Key;
    fn list(inner: &Inner, q: &[(String, String)]) -> Reply;
    fn create(inner: &mut Inner, data: &Value) -> Reply;
    /// The item named by a path id, else the model's `404`.
    fn find(inner: &Inner, id: &str) -> Result<Self::Key, Response>;
    fn read(inner: &Inner, key: &Self::Key, q: &[(String, String)]) -> Reply;
    fn delete(inner: &mut Inner, key: Self::Key);
    /// A `PUT` (`Mode::Put`) or `PATCH` (`Mode::Patch`) of the item.
    fn update(inner: &mut Inner, key: Self::Key, data: &Map<String, Value>, mode: Mode) -> Reply;
}

/// `…/<model>/`: list or create.
pub(super) async fn collection<M: Model>(
    State(s): State<AuthentikState>,
    method: Method,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> Response {
    handle(&s, &headers, |inner| match method {
        Method::GET | Method::HEAD => M::list(inner, &parse_query(q.as_deref())),
        Method::POST => {
            let data = body_json(&headers, &body)?;
            M::create(inner, &data)
        }
        _ => Err(method_not_allowed(&method, "GET, POST, HEAD, OPTIONS")),
    })
}

/// `…/<model>/<id>/`: read, replace, patch or delete; the method is
/// checked before the lookup, the lookup before the body.
pub(super) async fn item<M: Model>(
    State(s): State<AuthentikState>,
    Path(id): Path<String>,
    method: Method,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> Response {
    handle(&s, &headers, |inner| {
        if ![Method::GET, Method::HEAD, Method::PUT, Method::PATCH, Method::DELETE].contains(&method) {
            return Err(method_not_allowed(&method, "GET, PUT, PATCH, DELETE, HEAD, OPTIONS"));
        }
        let key = M::find(inner, &id)?;
        match method {
            Method::GET | Method::HEAD => M::read(inner, &key, &parse_query(q.as_deref())),
            Method::DELETE => {
                M::delete(inner, key);
                Ok(no_content())
            }
            _ => {
                let data = body_json(&headers, &body)?;
                let mode = if method == Method::PUT { Mode::Put } else { Mode::Patch };
                M::update(inner, key, as_object(&data)?, mode)
            }
        }
    })
}

/// A `POST` action on one item (DRF's `@action(detail=True)`, e.g.
/// `…/users/<id>/set_password/`): what it does with the item and its body.
pub(super) trait Action {
    type On: Model;
    fn run(inner: &mut Inner, key: <Self::On as Model>::Key, data: &Map<String, Value>, headers: &HeaderMap) -> Reply;
}

/// `…/<model>/<id>/<action>/`: `POST` only; the item is looked up before
/// the body is read, as for [`item`].
pub(super) async fn action<A: Action>(
    State(s): State<AuthentikState>,
    Path(id): Path<String>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    handle(&s, &headers, |inner| {
        if method != Method::POST {
            return Err(method_not_allowed(&method, "POST, OPTIONS"));
        }
        let key = A::On::find(inner, &id)?;
        let data = body_json(&headers, &body)?;
        A::run(inner, key, as_object(&data)?, &headers)
    })
}

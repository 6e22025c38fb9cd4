//! How a mutation is written with its audit event, and undone: the one
//! saga helper every operation uses. A change that can be undone is
//! written beside its event ([`audited`]); one that cannot is audited
//! first ([`audited_first`]); a best-effort step only logs its failure
//! ([`best_effort`]). Undo steps are retried by [`super::undo`].

use std::future::Future;

use crate::audit::AuditEvent;
use crate::caller::Caller;
use crate::ctx::Ctx;
use crate::data_api::coll;
use crate::ejson::ObjectId;
use crate::ports::Http;
use crate::problem::{Error, UpstreamError};

use serde_json::json;

use super::undo;

/// A best-effort step (mail, group membership): a failure is logged — the
/// reason only, never a body — and the operation goes on.
pub async fn best_effort(what: &str, who: &str, step: impl Future<Output = Result<(), UpstreamError>>) {
    if let Err(e) = step.await {
        eprintln!("{what} failed for {who}: {e}");
    }
}

/// Runs `change` and writes `event` concurrently. Whichever half fails,
/// the other is undone (`undo` reverses `change`; the event is deleted) and
/// that failure is the answer: a change is never answered without its
/// event, and no event stays for a change that did not happen. A half whose
/// answer was lost (a timeout, a broken connection) or that a server failed
/// (`5xx`) may still have been stored, so it is undone too. `undo` makes
/// the undo step, which is tried again while its failure may be passing
/// ([`undo::retried`]), as is the event's delete.
pub async fn audited<H: Http, T, U: Future<Output = Result<(), UpstreamError>>>(
    ctx: &Ctx<H>,
    caller: &Caller,
    event: AuditEvent,
    change: impl Future<Output = Result<T, Error>>,
    undo: impl FnMut() -> U,
) -> Result<T, Error> {
    let db = ctx.db()?;
    let id = ctx.new_object_id();
    // The undo's log line names the change it reverses.
    let what = format!("undo of {} (its change, without its audit event)", event.action);
    let mut doc = event.document(caller, &ctx.now);
    doc["_id"] = id.ejson();
    let (failure, undo_change) = match futures::join!(change, db.insert_one(coll::AUDIT_EVENTS, doc)) {
        (Ok(out), Ok(_)) => return Ok(out),
        // The change went through; its event did not.
        (Ok(_), Err(e)) => (Error::from(e), true),
        // The change failed; if its answer was lost, or a server failed
        // (a gateway's 502/504 says nothing of the write behind it), it may
        // have happened. Only a refusal (4xx) or a failure before any call
        // says it did not.
        (Err(e), _) => {
            let maybe = matches!(&e, Error::Upstream(u) if crate::retry::passing(u));
            (e, maybe)
        }
    };
    // Both undos are keyed by what this request wrote (the event's id, the
    // document's stamp), so one that finds nothing to undo is harmless.
    let change_back = async {
        if undo_change {
            let _ = undo::retried(&what, undo).await;
        }
    };
    futures::join!(change_back, undo_audit(ctx, id));
    Err(failure)
}

/// Audit first, for a step that cannot be undone (a password set, sessions
/// ended): the event is written, then the step is taken, and the event is
/// deleted again if the step fails. A failed audit write means the step is
/// never taken. So a step is never done without its event — which
/// [`audited`] cannot promise when there is no `undo` — at the price of
/// one round trip more than running the two side by side.
pub async fn audited_first<H: Http, T>(
    ctx: &Ctx<H>,
    caller: &Caller,
    event: AuditEvent,
    step: impl Future<Output = Result<T, Error>>,
) -> Result<T, Error> {
    let id = ctx.new_object_id();
    if let Err(e) = audit_with_id(ctx, caller, event, id).await {
        // A write whose answer was lost (a timeout) may still be stored.
        undo_audit(ctx, id).await;
        return Err(e);
    }
    let done = step.await;
    if done.is_err() {
        undo_audit(ctx, id).await;
    }
    done
}

/// Records `event` under `id` (see [`undo_audit`]).
async fn audit_with_id<H: Http>(ctx: &Ctx<H>, caller: &Caller, event: AuditEvent, id: ObjectId) -> Result<(), Error> {
    let mut doc = event.document(caller, &ctx.now);
    doc["_id"] = id.ejson();
    ctx.db()?.insert_one(coll::AUDIT_EVENTS, doc).await?;
    Ok(())
}

async fn undo_audit<H: Http>(ctx: &Ctx<H>, id: ObjectId) {
    let Ok(db) = ctx.db() else { return };
    let what = format!("undo: deleting audit event {}", id.to_hex());
    let _ = undo::retried(&what, || async { db.delete_one(coll::AUDIT_EVENTS, json!({ "_id": id })).await.map(|_| ()) }).await;
}

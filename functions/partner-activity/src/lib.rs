//! GET /users/me/partner/activity — the caller's partner's audit events (docs/api.md row 14).

use spin_sdk::http::{IncomingRequest, ResponseOutparam};

#[spin_sdk::http_component]
async fn handle(req: IncomingRequest, out: ResponseOutparam) {
    shared::spin::serve(req, out, |ctx, req| async move { shared::ops::partner::activity::run(&ctx, &req).await }).await
}

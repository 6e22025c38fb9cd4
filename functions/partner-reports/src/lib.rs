//! GET /users/me/partner/reports — the caller's partner's analytics (docs/api.md row 16).

use spin_sdk::http::{IncomingRequest, ResponseOutparam};

#[spin_sdk::http_component]
async fn handle(req: IncomingRequest, out: ResponseOutparam) {
    shared::spin::serve(req, out, |ctx, req| async move { shared::ops::partner::reports::run(&ctx, &req).await }).await
}

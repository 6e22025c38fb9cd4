//! GET /users/me/partner/mrr — the caller's partner's monthly recurring revenue (docs/api.md row 15).

use spin_sdk::http::{IncomingRequest, ResponseOutparam};

#[spin_sdk::http_component]
async fn handle(req: IncomingRequest, out: ResponseOutparam) {
    shared::spin::serve(req, out, |ctx, req| async move { shared::ops::partner::mrr::run(&ctx, &req).await }).await
}

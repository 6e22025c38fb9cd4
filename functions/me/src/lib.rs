//! GET /users/me — the caller's own user (docs/api.md row 1).

use spin_sdk::http::{IncomingRequest, ResponseOutparam};

#[spin_sdk::http_component]
async fn handle(req: IncomingRequest, out: ResponseOutparam) {
    shared::spin::serve(req, out, |ctx, req| async move { shared::ops::me::run(&ctx, &req).await }).await
}

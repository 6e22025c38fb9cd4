//! GET /users/:subject — one user (docs/api.md row 3).

use spin_sdk::http::{IncomingRequest, ResponseOutparam};

#[spin_sdk::http_component]
async fn handle(req: IncomingRequest, out: ResponseOutparam) {
    shared::spin::serve(req, out, |ctx, req| async move { shared::ops::users::get::run(&ctx, &req).await }).await
}

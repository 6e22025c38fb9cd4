//! GET /openapi.json — the OpenAPI document of every route (docs/api.md row 32).

use spin_sdk::http::{IncomingRequest, ResponseOutparam};

#[spin_sdk::http_component]
async fn handle(req: IncomingRequest, out: ResponseOutparam) {
    shared::spin::serve(req, out, |ctx, req| async move { shared::ops::openapi::run(&ctx, &req).await }).await
}

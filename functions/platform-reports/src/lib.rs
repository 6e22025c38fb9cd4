//! GET /platform/reports — the platform's analytics (docs/api.md row 8).

use spin_sdk::http::{IncomingRequest, ResponseOutparam};

#[spin_sdk::http_component]
async fn handle(req: IncomingRequest, out: ResponseOutparam) {
    shared::spin::serve(req, out, |ctx, req| async move { shared::ops::platform_reports::run(&ctx, &req).await }).await
}

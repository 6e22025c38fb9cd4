//! POST /tenants/:slug/members/:user_id/resume — resume a suspended member's sign-in (docs/api.md row 21).

use spin_sdk::http::{IncomingRequest, ResponseOutparam};

#[spin_sdk::http_component]
async fn handle(req: IncomingRequest, out: ResponseOutparam) {
    shared::spin::serve(req, out, |ctx, req| async move { shared::ops::members::resume::run(&ctx, &req).await }).await
}

//! GET /users/me/partner/tenants — the caller's partner's workspaces with health (docs/api.md row 13).

use spin_sdk::http::{IncomingRequest, ResponseOutparam};

#[spin_sdk::http_component]
async fn handle(req: IncomingRequest, out: ResponseOutparam) {
    shared::spin::serve(req, out, |ctx, req| async move { shared::ops::partner::tenants::run(&ctx, &req).await }).await
}

//! POST /tenants/:slug/members/:user_id/suspend — suspend a member's sign-in (docs/api.md row 20).

use spin_sdk::http::{IncomingRequest, ResponseOutparam};

#[spin_sdk::http_component]
async fn handle(req: IncomingRequest, out: ResponseOutparam) {
    shared::spin::serve(req, out, |ctx, req| async move { shared::ops::members::suspend::run(&ctx, &req).await }).await
}

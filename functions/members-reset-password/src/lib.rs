//! POST /tenants/:slug/members/:user_id/reset-password — a fresh temporary password for a member (docs/api.md row 23).

use spin_sdk::http::{IncomingRequest, ResponseOutparam};

#[spin_sdk::http_component]
async fn handle(req: IncomingRequest, out: ResponseOutparam) {
    shared::spin::serve(req, out, |ctx, req| async move { shared::ops::members::reset_password::run(&ctx, &req).await }).await
}

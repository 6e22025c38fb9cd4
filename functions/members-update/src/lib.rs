//! POST /tenants/:slug/members/:user_id/update — change a member's profile and role in a workspace (docs/api.md row 24).

use spin_sdk::http::{IncomingRequest, ResponseOutparam};

#[spin_sdk::http_component]
async fn handle(req: IncomingRequest, out: ResponseOutparam) {
    shared::spin::serve(req, out, |ctx, req| async move { shared::ops::members::update::run(&ctx, &req).await }).await
}

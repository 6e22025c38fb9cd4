//! POST /tenants/:slug/members/:user_id/remove — remove a member from a workspace (docs/api.md row 19).

use spin_sdk::http::{IncomingRequest, ResponseOutparam};

#[spin_sdk::http_component]
async fn handle(req: IncomingRequest, out: ResponseOutparam) {
    shared::spin::serve(req, out, |ctx, req| async move { shared::ops::members::remove::run(&ctx, &req).await }).await
}

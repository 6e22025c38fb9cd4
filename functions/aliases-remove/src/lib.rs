//! POST /tenants/:slug/members/:user_id/aliases/remove — remove an alias from a member's mailbox (docs/api.md row 28).

use spin_sdk::http::{IncomingRequest, ResponseOutparam};

#[spin_sdk::http_component]
async fn handle(req: IncomingRequest, out: ResponseOutparam) {
    shared::spin::serve(req, out, |ctx, req| async move { shared::ops::aliases::remove::run(&ctx, &req).await }).await
}

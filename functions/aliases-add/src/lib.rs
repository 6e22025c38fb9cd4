//! POST /tenants/:slug/members/:user_id/aliases/add — add an alias to a member's mailbox (docs/api.md row 27).

use spin_sdk::http::{IncomingRequest, ResponseOutparam};

#[spin_sdk::http_component]
async fn handle(req: IncomingRequest, out: ResponseOutparam) {
    shared::spin::serve(req, out, |ctx, req| async move { shared::ops::aliases::add::run(&ctx, &req).await }).await
}

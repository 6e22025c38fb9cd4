//! GET /tenants/:slug/members/:user_id/aliases — a member's mailbox aliases (docs/api.md row 26).

use spin_sdk::http::{IncomingRequest, ResponseOutparam};

#[spin_sdk::http_component]
async fn handle(req: IncomingRequest, out: ResponseOutparam) {
    shared::spin::serve(req, out, |ctx, req| async move { shared::ops::aliases::list::run(&ctx, &req).await }).await
}

//! POST /tenants/:slug/members/create — create a member with identity, mailbox and files (docs/api.md row 18).

use spin_sdk::http::{IncomingRequest, ResponseOutparam};

#[spin_sdk::http_component]
async fn handle(req: IncomingRequest, out: ResponseOutparam) {
    shared::spin::serve(req, out, |ctx, req| async move { shared::ops::members::create::run(&ctx, &req).await }).await
}

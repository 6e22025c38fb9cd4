//! POST /tenants/:slug/members/:user_id/mailbox/create — create a mailbox for a member who has none (docs/api.md row 29).

use spin_sdk::http::{IncomingRequest, ResponseOutparam};

#[spin_sdk::http_component]
async fn handle(req: IncomingRequest, out: ResponseOutparam) {
    shared::spin::serve(req, out, |ctx, req| async move { shared::ops::mailbox_create::run(&ctx, &req).await }).await
}

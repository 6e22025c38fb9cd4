//! POST /tenants/:slug/members/:user_id/change-email — change the primary e-mail of a member without a mailbox (docs/api.md row 25).

use spin_sdk::http::{IncomingRequest, ResponseOutparam};

#[spin_sdk::http_component]
async fn handle(req: IncomingRequest, out: ResponseOutparam) {
    shared::spin::serve(req, out, |ctx, req| async move { shared::ops::members::change_email::run(&ctx, &req).await }).await
}

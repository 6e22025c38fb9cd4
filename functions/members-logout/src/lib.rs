//! POST /tenants/:slug/members/:user_id/logout — end every session of a member (docs/api.md row 22).

use spin_sdk::http::{IncomingRequest, ResponseOutparam};

#[spin_sdk::http_component]
async fn handle(req: IncomingRequest, out: ResponseOutparam) {
    shared::spin::serve(req, out, |ctx, req| async move { shared::ops::members::logout::run(&ctx, &req).await }).await
}

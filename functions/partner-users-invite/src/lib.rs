//! POST /partners/:slug/users/invite — invite or attach partner staff (docs/api.md row 10).

use spin_sdk::http::{IncomingRequest, ResponseOutparam};

#[spin_sdk::http_component]
async fn handle(req: IncomingRequest, out: ResponseOutparam) {
    shared::spin::serve(req, out, |ctx, req| async move { shared::ops::partner::users_invite::run(&ctx, &req).await }).await
}

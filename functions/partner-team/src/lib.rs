//! GET /users/me/partner/users — the caller's partner team with access and MFA (docs/api.md row 11).

use spin_sdk::http::{IncomingRequest, ResponseOutparam};

#[spin_sdk::http_component]
async fn handle(req: IncomingRequest, out: ResponseOutparam) {
    shared::spin::serve(req, out, |ctx, req| async move { shared::ops::partner::team::run(&ctx, &req).await }).await
}

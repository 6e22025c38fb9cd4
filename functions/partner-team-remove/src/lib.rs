//! POST /users/me/partner/users/:subject/remove — detach a user from the caller's partner (docs/api.md row 12).

use spin_sdk::http::{IncomingRequest, ResponseOutparam};

#[spin_sdk::http_component]
async fn handle(req: IncomingRequest, out: ResponseOutparam) {
    shared::spin::serve(req, out, |ctx, req| async move { shared::ops::partner::team_remove::run(&ctx, &req).await }).await
}

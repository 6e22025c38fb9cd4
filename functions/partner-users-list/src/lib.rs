//! GET /partners/:slug/users — a partner's users, for platform admins (docs/api.md row 9).

use spin_sdk::http::{IncomingRequest, ResponseOutparam};

#[spin_sdk::http_component]
async fn handle(req: IncomingRequest, out: ResponseOutparam) {
    shared::spin::serve(req, out, |ctx, req| async move { shared::ops::partner::users_list::run(&ctx, &req).await }).await
}

//! POST /users/:subject/deactivate — deactivate a user (docs/api.md row 6).

use spin_sdk::http::{IncomingRequest, ResponseOutparam};

#[spin_sdk::http_component]
async fn handle(req: IncomingRequest, out: ResponseOutparam) {
    shared::spin::serve(req, out, |ctx, req| async move { shared::ops::users::deactivate::run(&ctx, &req).await }).await
}

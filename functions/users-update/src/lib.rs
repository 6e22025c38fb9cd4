//! POST /users/:subject/update — change a user (docs/api.md row 5).

use spin_sdk::http::{IncomingRequest, ResponseOutparam};

#[spin_sdk::http_component]
async fn handle(req: IncomingRequest, out: ResponseOutparam) {
    shared::spin::serve(req, out, |ctx, req| async move { shared::ops::users::update::run(&ctx, &req).await }).await
}

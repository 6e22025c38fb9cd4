//! POST /users/create — create a user document (docs/api.md row 4).

use spin_sdk::http::{IncomingRequest, ResponseOutparam};

#[spin_sdk::http_component]
async fn handle(req: IncomingRequest, out: ResponseOutparam) {
    shared::spin::serve(req, out, |ctx, req| async move { shared::ops::users::create::run(&ctx, &req).await }).await
}

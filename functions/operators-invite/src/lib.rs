//! POST /platform/operators/invite — invite a platform admin (docs/api.md row 7).

use spin_sdk::http::{IncomingRequest, ResponseOutparam};

#[spin_sdk::http_component]
async fn handle(req: IncomingRequest, out: ResponseOutparam) {
    shared::spin::serve(req, out, |ctx, req| async move { shared::ops::operators_invite::run(&ctx, &req).await }).await
}

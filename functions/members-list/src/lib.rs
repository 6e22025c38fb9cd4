//! GET /tenants/:slug/members — a workspace's members (docs/api.md row 17).

use spin_sdk::http::{IncomingRequest, ResponseOutparam};

#[spin_sdk::http_component]
async fn handle(req: IncomingRequest, out: ResponseOutparam) {
    shared::spin::serve(req, out, |ctx, req| async move { shared::ops::members::list::run(&ctx, &req).await }).await
}

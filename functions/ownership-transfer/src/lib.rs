//! POST /tenants/:slug/ownership/transfer — move a workspace's ownership to another member (docs/api.md row 30).

use spin_sdk::http::{IncomingRequest, ResponseOutparam};

#[spin_sdk::http_component]
async fn handle(req: IncomingRequest, out: ResponseOutparam) {
    shared::spin::serve(req, out, |ctx, req| async move { shared::ops::ownership_transfer::run(&ctx, &req).await }).await
}

//! POST /tenants/:slug/admins/invite — invite or attach a workspace admin (docs/api.md row 31).

use spin_sdk::http::{IncomingRequest, ResponseOutparam};

#[spin_sdk::http_component]
async fn handle(req: IncomingRequest, out: ResponseOutparam) {
    shared::spin::serve(req, out, |ctx, req| async move { shared::ops::tenant_admins_invite::run(&ctx, &req).await }).await
}

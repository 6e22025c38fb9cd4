use spin_sdk::http::{IntoResponse, Request, Response};
use spin_sdk::http_component;

#[http_component]
async fn handle(req: Request) -> anyhow::Result<impl IntoResponse> {
    let v = spin_sdk::variables::get("data_api_url").unwrap_or_default();
    let _ = req;
    Ok(Response::new(200, format!("{} {}", shared::hello(), v)))
}

//! The web UI of SPEC §10 and §18: plain HTML, CSS and JavaScript modules from `ui/`, embedded in the
//! binary and served at `/` and `/ui/{file}` under a strict Content-Security-Policy.
//!
//! Nothing here knows the API beyond its URLs: the pages call `/api/workspace/…` like any other
//! client, with the bearer token the user pasted. Architecture invariant: no asset loads
//! anything from another origin, and no page runs inline script (the CSP forbids both).

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::error::ApiError;

/// Content-Security-Policy of every UI response: same-origin scripts, styles and API calls only;
/// images and media from this server (signed links), `blob:` and `data:`; no frames, no plugins,
/// no forms posting elsewhere, no `<base>` tricks.
pub const UI_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; \
     media-src 'self' blob:; connect-src 'self'; font-src 'self'; manifest-src 'self'; base-uri 'none'; \
     form-action 'none'; frame-ancestors 'none'; object-src 'none'";

/// One embedded file.
#[derive(Debug, Clone, Copy)]
pub struct Asset {
    /// Name under `/ui/` (`index.html` is also served at `/`).
    pub name: &'static str,
    /// The `Content-Type` it is served with.
    pub content_type: &'static str,
    /// The bytes, embedded at compile time.
    pub body: &'static [u8],
}

macro_rules! asset {
    ($name:literal, $content_type:literal) => {
        Asset { name: $name, content_type: $content_type, body: include_bytes!(concat!("../ui/", $name)) }
    };
}

/// Every embedded asset. Tests walk this list, so a new file belongs here and nowhere else.
pub const ASSETS: &[Asset] = &[
    asset!("index.html", "text/html; charset=utf-8"),
    asset!("app.css", "text/css; charset=utf-8"),
    asset!("app.js", "text/javascript; charset=utf-8"),
    asset!("api.js", "text/javascript; charset=utf-8"),
    asset!("files.js", "text/javascript; charset=utf-8"),
    asset!("trash.js", "text/javascript; charset=utf-8"),
    asset!("events.js", "text/javascript; charset=utf-8"),
    asset!("chat.js", "text/javascript; charset=utf-8"),
    asset!("markdown.js", "text/javascript; charset=utf-8"),
    asset!("dom.js", "text/javascript; charset=utf-8"),
];

/// Looks an asset up by its name under `/ui/`.
pub fn asset(name: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|asset| asset.name == name)
}

fn serve(asset: &Asset) -> Response {
    let mut response = (StatusCode::OK, asset.body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(asset.content_type));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(UI_CSP));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    // Assets change with the binary; revalidating is cheap and never serves a stale mix.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

async fn index() -> Response {
    match asset("index.html") {
        Some(page) => serve(page),
        None => ApiError::NotFound("no UI page".into()).into_response(),
    }
}

async fn ui_asset(Path(name): Path<String>) -> Response {
    match asset(&name) {
        Some(found) => serve(found),
        None => ApiError::NotFound("no such UI asset".into()).into_response(),
    }
}

/// The UI routes, to merge into the application router. They need no state and no auth: the
/// pages hold no data until the browser signs in with a token.
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new().route("/", get(index)).route("/ui/{name}", get(ui_asset))
}

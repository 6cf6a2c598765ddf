//! The pages: an HTML shell, ES modules and a stylesheet compiled into the binary.
//!
//! The Content-Security-Policy lets a page run scripts, load styles and images, and fetch,
//! from its own origin only; there is no inline script or style anywhere, so nothing from the
//! store can run even if it reached the DOM as markup (it does not: the modules only ever set
//! `textContent`).

use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

/// The pages' policy.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; \
                       frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/// Every embedded file: name, content type, bytes.
pub const FILES: [(&str, &str, &str); 7] = [
    ("index.html", "text/html; charset=utf-8", include_str!("../assets/index.html")),
    ("app.js", "text/javascript; charset=utf-8", include_str!("../assets/app.js")),
    ("pages.js", "text/javascript; charset=utf-8", include_str!("../assets/pages.js")),
    ("chart.js", "text/javascript; charset=utf-8", include_str!("../assets/chart.js")),
    ("flame.js", "text/javascript; charset=utf-8", include_str!("../assets/flame.js")),
    ("app.css", "text/css; charset=utf-8", include_str!("../assets/app.css")),
    ("icon.svg", "image/svg+xml", include_str!("../assets/icon.svg")),
];

fn file(name: &str) -> Response {
    match FILES.iter().find(|f| f.0 == name) {
        Some((_, kind, body)) => (
            [
                (header::CONTENT_TYPE, *kind),
                (header::CONTENT_SECURITY_POLICY, CSP),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            *body,
        )
            .into_response(),
        None => perfweb::guard::text(StatusCode::NOT_FOUND, "no such asset\n"),
    }
}

/// `/` and `/assets/NAME`.
pub fn routes() -> axum::Router {
    axum::Router::new()
        .route("/", get(|| async { file("index.html") }))
        .route("/assets/{name}", get(|Path(name): Path<String>| async move { file(&name) }))
}

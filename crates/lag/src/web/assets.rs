//! Dashboard files compiled into the binary: ours from `dashboard/`, uPlot copied to
//! OUT_DIR by build.rs from `dashboard/node_modules` (never committed).

use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

const INDEX: &str = include_str!("../../dashboard/index.html");
const APP_JS: &str = include_str!("../../dashboard/app.js");
const APP_CSS: &str = include_str!("../../dashboard/app.css");
const UPLOT_JS: &str = include_str!(concat!(env!("OUT_DIR"), "/uPlot.iife.min.js"));
const UPLOT_CSS: &str = include_str!(concat!(env!("OUT_DIR"), "/uPlot.min.css"));

pub(super) async fn index() -> Response {
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], INDEX).into_response()
}

pub(super) async fn asset(Path(file): Path<String>) -> Response {
    let (body, kind) = match file.as_str() {
        "app.js" => (APP_JS, "text/javascript; charset=utf-8"),
        "app.css" => (APP_CSS, "text/css; charset=utf-8"),
        "uplot.js" => (UPLOT_JS, "text/javascript; charset=utf-8"),
        "uplot.css" => (UPLOT_CSS, "text/css; charset=utf-8"),
        _ => return (StatusCode::NOT_FOUND, "no such asset\n").into_response(),
    };
    (
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "max-age=300"),
        ],
        body,
    )
        .into_response()
}

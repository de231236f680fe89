//! Dashboard files compiled into the binary: ours from `dashboard/`, uPlot copied to
//! OUT_DIR by build.rs from `dashboard/vendor/` when scripts/build-dashboard.sh has
//! filled it (never committed). Without uPlot the two chart files are placeholders and
//! the page says that its chart library is missing; everything else works.

use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

const INDEX: &str = include_str!("../../dashboard/index.html");
const APP_JS: &str = include_str!("../../dashboard/app.js");
const APP_CSS: &str = include_str!("../../dashboard/app.css");
#[cfg(uplot)]
const UPLOT_JS: &str = include_str!(concat!(env!("OUT_DIR"), "/uPlot.iife.min.js"));
#[cfg(uplot)]
const UPLOT_CSS: &str = include_str!(concat!(env!("OUT_DIR"), "/uPlot.min.css"));
// app.js sees that `uPlot` is undefined and shows CHARTS_MISSING in place of the charts.
#[cfg(not(uplot))]
const UPLOT_JS: &str = "// The chart library (uPlot) was not built into this binary: run scripts/build-dashboard.sh, then rebuild.\n";
#[cfg(not(uplot))]
const UPLOT_CSS: &str = "/* The chart library (uPlot) was not built into this binary. */\n";

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

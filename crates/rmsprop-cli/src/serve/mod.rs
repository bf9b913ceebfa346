//! `rmsprop serve`: the playground, a page where a learner moves rho, lr and eps and watches
//! RMSProp (and its family) run, every number computed by the library through the same code as
//! `rmsprop compare`.
//!
//! Routes:
//! - `GET /`: the page (its files are embedded in the binary: it works offline);
//! - `GET /api/objectives`, `GET /api/optimizers`, `POST /api/run` ([`api`]);
//! - `GET /api/openapi.json`: the API described as OpenAPI 3.
//!
//! Bad input gets `400` with a JSON body naming the field and what it allows ([`api::ApiError`]);
//! bodies over [`api::MAX_BODY`] bytes, more than [`api::MAX_STEPS`] steps or
//! [`api::MAX_OPTIMIZERS`] optimizers, and runs longer than [`api::MAX_COMPUTE`] are refused.

pub mod api;

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context, Result};
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::Value;
use tokio::sync::Semaphore;

use api::{ApiError, RunRequest};

/// The page and its scripts, embedded at build time.
const ASSETS: &[(&str, &str, &[u8])] = &[
    (
        "/",
        "text/html; charset=utf-8",
        include_bytes!("assets/index.html"),
    ),
    (
        "/app.js",
        "text/javascript; charset=utf-8",
        include_bytes!("assets/app.js"),
    ),
    (
        "/style.css",
        "text/css; charset=utf-8",
        include_bytes!("assets/style.css"),
    ),
    (
        "/vendor/plotly.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("assets/vendor/plotly-cartesian.min.js"),
    ),
    (
        "/api/openapi.json",
        "application/json",
        include_bytes!("assets/openapi.json"),
    ),
];

/// What the handlers share: the answers that never change, and a bound on concurrent runs.
struct Shared {
    objectives: Bytes,
    optimizers: Bytes,
    runs: Semaphore,
}

/// The playground's routes, ready to serve.
///
/// # Examples
/// ```
/// let app = rmsprop_cli::serve::router();
/// # drop(app);
/// ```
pub fn router() -> Router {
    let shared = Arc::new(Shared {
        objectives: Bytes::from(
            serde_json::to_vec(&api::objectives()).expect("objectives serialize"),
        ),
        optimizers: Bytes::from(
            serde_json::to_vec(&api::optimizers()).expect("the registry serializes"),
        ),
        runs: Semaphore::new(std::thread::available_parallelism().map_or(2, |n| n.get()) * 2),
    });
    let mut app = Router::new()
        .route(
            "/api/objectives",
            get(|State(s): State<Arc<Shared>>| async move { json_bytes(s.objectives.clone()) }),
        )
        .route(
            "/api/optimizers",
            get(|State(s): State<Arc<Shared>>| async move { json_bytes(s.optimizers.clone()) }),
        )
        .route("/api/run", post(run));
    for &(path, mime, bytes) in ASSETS {
        app = app.route(
            path,
            get(move || async move { ([(header::CONTENT_TYPE, mime)], bytes) }),
        );
    }
    app.fallback(|| async {
        bad(
            StatusCode::NOT_FOUND,
            ApiError {
                error: "no such route".into(),
                field: None,
                allowed: None,
            },
        )
    })
    .with_state(shared)
}

fn json_bytes(b: Bytes) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], b).into_response()
}

fn bad(status: StatusCode, e: ApiError) -> Response {
    let body = serde_json::to_vec(&e).expect("an error serializes");
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// Parses a run request, naming the field a type error is in.
///
/// # Errors
/// Malformed JSON, a missing field, an unknown field, or a value of the wrong type.
pub fn parse(body: &[u8]) -> Result<RunRequest, ApiError> {
    let de = &mut serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let field = (path != ".").then_some(path);
        ApiError {
            error: format!("invalid request body: {inner}"),
            allowed: field
                .as_ref()
                .map(|_| "see GET /api/openapi.json and GET /api/optimizers".to_string()),
            field,
        }
    })
}

async fn run(State(s): State<Arc<Shared>>, body: Body) -> Response {
    let bytes = match axum::body::to_bytes(body, api::MAX_BODY).await {
        Ok(b) => b,
        Err(_) => {
            return bad(
                StatusCode::BAD_REQUEST,
                ApiError::field(
                    "body",
                    format!("the request body is larger than {} bytes", api::MAX_BODY),
                    format!("at most {} bytes", api::MAX_BODY),
                ),
            )
        }
    };
    let experiment = match parse(&bytes).and_then(|req| api::check(&req)) {
        Ok(e) => e,
        Err(e) => return bad(StatusCode::BAD_REQUEST, e),
    };
    let Ok(_permit) = s.runs.acquire().await else {
        return bad(
            StatusCode::SERVICE_UNAVAILABLE,
            ApiError {
                error: "shutting down".into(),
                field: None,
                allowed: None,
            },
        );
    };
    match tokio::task::spawn_blocking(move || api::run(experiment)).await {
        Ok(Ok(response)) => {
            let body: Value = serde_json::to_value(&response).expect("a run serializes");
            (
                [(header::CONTENT_TYPE, "application/json")],
                body.to_string(),
            )
                .into_response()
        }
        Ok(Err(e)) => bad(StatusCode::BAD_REQUEST, e),
        Err(e) => bad(
            StatusCode::INTERNAL_SERVER_ERROR,
            ApiError {
                error: format!("the run failed: {e}"),
                field: None,
                allowed: None,
            },
        ),
    }
}

/// Serves the playground on `host:port` (port 0: a free one) until Ctrl-C, printing its URL
/// first.
///
/// # Errors
/// When the address cannot be bound.
pub fn serve(host: &str, port: u16) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the server's runtime")?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind((host, port))
            .await
            .with_context(|| format!("cannot listen on {host}:{port}"))?;
        let addr: SocketAddr = listener.local_addr()?;
        let shown = if addr.is_ipv6() { format!("[{}]", addr.ip()) } else { addr.ip().to_string() };
        println!("rmsprop playground: http://{shown}:{}/", addr.port());
        if !addr.ip().is_loopback() {
            println!("listening beyond this machine ({host}): anyone who can reach it can run optimizers here");
        }
        axum::serve(listener, router())
            .with_graceful_shutdown(async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await
            .context("serving")
    })
}

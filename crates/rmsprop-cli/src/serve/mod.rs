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
//! [`api::MAX_OPTIMIZERS`] optimizers or [`api::MAX_VALUES`] values, runs longer than
//! [`api::MAX_COMPUTE`] (or `--max-compute-ms`), bodies that are not JSON, and (on loopback)
//! hosts other than loopback names are refused.

pub mod api;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
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

/// What the handlers share: the answers that never change, a bound on concurrent runs, the
/// compute limit, and the host names requests must carry (DNS rebinding).
struct Shared {
    objectives: Bytes,
    optimizers: Bytes,
    runs: Arc<Semaphore>,
    compute: Duration,
    hosts: Option<Vec<String>>,
}

/// How the server is set up.
#[derive(Clone, Debug)]
pub struct Settings {
    /// The longest one run may compute.
    pub max_compute: Duration,
    /// Host names (without port) a request's `Host` header may carry; `None` accepts any. A
    /// server on loopback accepts only loopback names, so a web page elsewhere cannot reach it
    /// through DNS rebinding.
    pub hosts: Option<Vec<String>>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            max_compute: api::MAX_COMPUTE,
            hosts: Some(loopback_names()),
        }
    }
}

fn loopback_names() -> Vec<String> {
    ["localhost", "127.0.0.1", "[::1]"]
        .map(String::from)
        .to_vec()
}

/// The playground's routes, ready to serve, with the default [`Settings`].
///
/// # Examples
/// ```
/// let app = rmsprop_cli::serve::router();
/// # drop(app);
/// ```
pub fn router() -> Router {
    router_with(Settings::default())
}

/// The playground's routes with `settings`.
pub fn router_with(settings: Settings) -> Router {
    let shared = Arc::new(Shared {
        objectives: Bytes::from(
            serde_json::to_vec(&api::objectives()).expect("objectives serialize"),
        ),
        optimizers: Bytes::from(
            serde_json::to_vec(&api::optimizers()).expect("the registry serializes"),
        ),
        runs: Arc::new(Semaphore::new(
            std::thread::available_parallelism().map_or(2, |n| n.get()) * 2,
        )),
        compute: settings.max_compute,
        hosts: settings.hosts,
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
    .layer(axum::middleware::from_fn_with_state(
        shared.clone(),
        check_host,
    ))
    .with_state(shared)
}

/// Refuses requests whose `Host` is not one the server answers to.
async fn check_host(
    State(s): State<Arc<Shared>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if let Some(hosts) = &s.hosts {
        let host = request
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("");
        let name = match host.rfind(':') {
            Some(i) if !host[i..].contains(']') => &host[..i],
            _ => host,
        };
        if !hosts.iter().any(|h| h == name) {
            return bad(
                StatusCode::BAD_REQUEST,
                ApiError::field(
                    "Host",
                    format!("this server does not answer to host `{host}`"),
                    hosts.join(", "),
                ),
            );
        }
    }
    next.run(request).await
}

fn json_bytes(b: Bytes) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], b).into_response()
}

fn bad(status: StatusCode, e: ApiError) -> Response {
    let body = serde_json::to_vec(&e).expect("an error serializes");
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// What a field of a run request allows, for messages about malformed values.
fn allowed_at(path: &str) -> String {
    let option = path.rsplit('.').next().unwrap_or(path);
    if path.starts_with("optimizers[") {
        if option == "name" {
            return format!("one of {}", crate::registry::NAMES.join(", "));
        }
        if let Some(def) = crate::registry::option(option) {
            return def.kind.describe();
        }
        if option == "label" {
            return "a string".to_string();
        }
        if option == "batch" {
            return "an integer >= 1 (least_squares only)".to_string();
        }
    }
    match path {
        "objective" => format!("one of {}", rmsprop_testfns::names().join(", ")),
        "steps" => format!("an integer in [1, {}]", api::MAX_STEPS),
        "seed" => "an integer in [0, 2^64)".to_string(),
        "noise" => format!("a finite number in [0, {}]", api::MAX_NOISE),
        "tolerance" => "a finite number > 0".to_string(),
        "optimizers" => format!("a list of 1 to {} optimizers", api::MAX_OPTIMIZERS),
        p if p.starts_with("start") => "a list of finite numbers, one per coordinate".to_string(),
        _ => "the fields objective, start, optimizers, steps, noise, seed, tolerance (see GET /api/openapi.json)".to_string(),
    }
}

/// Parses a run request, naming the field a type error is in and what it allows.
///
/// # Errors
/// Malformed JSON, a missing field, an unknown field, or a value of the wrong type.
///
/// # Examples
/// ```
/// let err = rmsprop_cli::serve::parse(br#"{"objective": "sphere", "optimizers": [{"name": "rmsprop", "rho": "high"}]}"#).unwrap_err();
/// assert_eq!(err.field.as_deref(), Some("optimizers[0].rho"));
/// assert_eq!(err.allowed.as_deref(), Some("a finite number in [0, 1)"));
/// ```
pub fn parse(body: &[u8]) -> Result<RunRequest, ApiError> {
    let de = &mut serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let field = (path != ".").then_some(path);
        ApiError {
            error: format!("invalid request body: {inner}"),
            allowed: Some(allowed_at(field.as_deref().unwrap_or(""))),
            field,
        }
    })
}

/// Bytes of an oversized request body read and dropped before answering `400`.
const DRAIN_LIMIT: usize = 16 * api::MAX_BODY;

async fn run(State(s): State<Arc<Shared>>, headers: HeaderMap, body: Body) -> Response {
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .eq_ignore_ascii_case("application/json")
        });
    if !json {
        return bad(
            StatusCode::BAD_REQUEST,
            ApiError::field(
                "Content-Type",
                "a run request must be JSON",
                "application/json",
            ),
        );
    }
    // A body a little over the limit is read to its end and dropped before the answer, so the
    // client, still writing it, is not cut off and reads its 400 (closing with unread data
    // resets the connection). Past DRAIN_LIMIT the connection is closed instead.
    let bytes = match axum::body::to_bytes(body, DRAIN_LIMIT).await {
        Ok(b) if b.len() <= api::MAX_BODY => b,
        _ => {
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
    // The permit moves into the blocking task: a client that hangs up does not free it while
    // its run still computes.
    let Ok(permit) = s.runs.clone().acquire_owned().await else {
        return bad(
            StatusCode::SERVICE_UNAVAILABLE,
            ApiError {
                error: "shutting down".into(),
                field: None,
                allowed: None,
            },
        );
    };
    let limit = s.compute;
    let answer = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        api::run(experiment, limit).map(|r| serde_json::to_vec(&r).expect("a run serializes"))
    })
    .await;
    match answer {
        Ok(Ok(body)) => ([(header::CONTENT_TYPE, "application/json")], body).into_response(),
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
/// first. Runs stop after `max_compute`. On a loopback address only loopback host names are
/// answered.
///
/// # Errors
/// When the address cannot be bound.
pub fn serve(host: &str, port: u16, max_compute: Duration) -> Result<()> {
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
        let hosts = if addr.ip().is_loopback() {
            Some(loopback_names())
        } else {
            println!("listening beyond this machine ({host}): anyone who can reach it can run optimizers here");
            None
        };
        let app = router_with(Settings { max_compute, hosts });
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await
            .context("serving")
    })
}

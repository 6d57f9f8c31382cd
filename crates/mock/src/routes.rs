//! Which API a request path names: a completion family's route (OpenAI's `/v1/…` and
//! Anthropic's `/v1/messages`, Azure's
//! deployment and `/openai/responses` paths, which need `?api-version=`), the Files and Batches
//! routes (`batch_api`), `/v1/models`, or none.

use hyper::Method;

use super::batch_api::{self, BatchRoute, Dialect};
use super::family::Endpoint;

pub(crate) enum Route {
    Completion(Endpoint),
    /// Files and Batches: answered by `batch_api`.
    Batch(BatchRoute),
    Models,
    WrongMethod,
    NotFound,
    /// An Azure deployment path without `?api-version=`: Azure answers 404.
    NoApiVersion,
}

/// Whether a path belongs to the API (OpenAI's `/v1/…` or Azure's `/openai/…`) rather than to
/// the mock's own control endpoints.
pub(crate) fn is_api(path: &str) -> bool {
    path.starts_with("/v1/") || path.starts_with("/openai/")
}

pub(crate) fn route(method: &Method, path: &str, query: Option<&str>) -> Route {
    match batch_api::route(method, path) {
        None => {}
        Some(Ok(_)) if Dialect::of(path) == Dialect::Azure && !has_api_version(query) => {
            return Route::NoApiVersion
        }
        Some(Ok(route)) => return Route::Batch(route),
        Some(Err(batch_api::WrongMethod)) => return Route::WrongMethod,
    }
    let (wanted, route) = match path {
        "/v1/chat/completions" => (Method::POST, Route::Completion(Endpoint::Chat)),
        "/v1/completions" => (Method::POST, Route::Completion(Endpoint::Completions)),
        "/v1/responses" => (Method::POST, Route::Completion(Endpoint::Responses)),
        "/v1/embeddings" => (Method::POST, Route::Completion(Endpoint::Embeddings)),
        "/v1/messages" => (Method::POST, Route::Completion(Endpoint::Messages)),
        "/v1/models" => (Method::GET, Route::Models),
        "/openai/responses" if !has_api_version(query) => return Route::NoApiVersion,
        "/openai/responses" => (Method::POST, Route::Completion(Endpoint::Responses)),
        _ => match azure_endpoint(path) {
            None => return Route::NotFound,
            Some(_) if !has_api_version(query) => return Route::NoApiVersion,
            Some(endpoint) => (Method::POST, Route::Completion(endpoint)),
        },
    };
    if *method == wanted {
        route
    } else {
        Route::WrongMethod
    }
}

/// Azure OpenAI's deployment paths: `/openai/deployments/{name}/chat/completions`,
/// `…/completions` and `…/embeddings`.
fn azure_endpoint(path: &str) -> Option<Endpoint> {
    let (deployment, rest) = path.strip_prefix("/openai/deployments/")?.split_once('/')?;
    if deployment.is_empty() {
        return None;
    }
    match rest {
        "chat/completions" => Some(Endpoint::Chat),
        "completions" => Some(Endpoint::Completions),
        "embeddings" => Some(Endpoint::Embeddings),
        _ => None,
    }
}

fn has_api_version(query: Option<&str>) -> bool {
    query.is_some_and(|q| {
        q.split('&')
            .any(|pair| pair.strip_prefix("api-version=").is_some_and(|v| !v.is_empty()))
    })
}

//! The endpoints that are not model calls: `GET /_tapeloop/status`, `POST /_tapeloop/reset`
//! (every session, or `?session=NAME`), `GET /_tapeloop/requests` (the request log as JSON
//! lines), and the model listings some clients fetch first: `GET /v1/models` in the OpenAI
//! shape, or the Anthropic one when the request carries `anthropic-version`, and
//! `GET /v1beta/models` in the Gemini shape, listing the models of the cassettes served.

use hyper::{Method, Response, StatusCode};
use serde_json::{json, Value};

use super::answer::{error, json_response, with_type, Shape};
use super::{Body, State};
use crate::provider::Api;

/// The answer of a control endpoint, or `None` when `path` is not one.
pub(super) fn answer(
    state: &State,
    method: &Method,
    path: &str,
    query: Option<&str>,
    headers: &hyper::HeaderMap,
) -> Option<Response<Body>> {
    let get = method == Method::GET;
    Some(match path {
        "/_tapeloop/status" if get => json_response(
            StatusCode::OK,
            &serde_json::to_value(state.summary()).unwrap_or(Value::Null),
        ),
        "/_tapeloop/requests" if get => {
            with_type(StatusCode::OK, state.log.text(), "application/x-ndjson")
        }
        "/_tapeloop/reset" if method == Method::POST => reset(state, query),
        "/_tapeloop/status" | "/_tapeloop/requests" | "/_tapeloop/reset" => error(
            Shape::OpenAiAnthropic,
            StatusCode::METHOD_NOT_ALLOWED,
            "invalid_request_error",
            &format!(
                "{path} takes {}",
                if path == "/_tapeloop/reset" {
                    "POST"
                } else {
                    "GET"
                }
            ),
            None,
        ),
        "/v1/models" | "/v1beta/models" if get => models(state, path, headers),
        _ => return None,
    })
}

fn reset(state: &State, query: Option<&str>) -> Response<Body> {
    let session = query.and_then(|q| {
        url::form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == "session")
            .map(|(_, v)| v.into_owned())
    });
    let n = state.sessions().reset(session.as_deref());
    match session {
        Some(s) if n == 0 => error(
            Shape::OpenAiAnthropic,
            StatusCode::NOT_FOUND,
            "not_found",
            &format!("no session `{s}`: GET /_tapeloop/status lists the sessions"),
            None,
        ),
        _ => json_response(StatusCode::OK, &json!({"reset": n})),
    }
}

/// The served models of `apis`, each once, in cassette order.
fn served_models(state: &State, apis: &[Api]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for c in &state.catalog.cassettes {
        if !apis.contains(&c.header.api) {
            continue;
        }
        if let Some(m) = &c.header.model {
            if !out.iter().any(|(x, _)| x == m) {
                let owner = c
                    .header
                    .provider
                    .clone()
                    .unwrap_or_else(|| "tapeloop".into());
                out.push((m.clone(), owner));
            }
        }
    }
    out
}

fn models(state: &State, path: &str, headers: &hyper::HeaderMap) -> Response<Body> {
    let body = if path == "/v1beta/models" {
        let models: Vec<Value> = served_models(state, &[Api::Gemini])
            .into_iter()
            .map(|(m, _)| {
                json!({
                    "name": format!("models/{m}"),
                    "displayName": m,
                    "supportedGenerationMethods": ["generateContent", "streamGenerateContent"],
                })
            })
            .collect();
        json!({ "models": models })
    } else if headers.contains_key("anthropic-version") {
        let data: Vec<Value> = served_models(state, &[Api::Anthropic])
            .into_iter()
            .map(|(m, _)| {
                json!({"type": "model", "id": m, "display_name": m, "created_at": "1970-01-01T00:00:00Z"})
            })
            .collect();
        let first = data.first().map(|d| d["id"].clone()).unwrap_or(Value::Null);
        let last = data.last().map(|d| d["id"].clone()).unwrap_or(Value::Null);
        json!({"data": data, "has_more": false, "first_id": first, "last_id": last})
    } else {
        let data: Vec<Value> = served_models(state, &[Api::OpenAiChat, Api::OpenAiResponses])
            .into_iter()
            .map(|(m, owner)| json!({"id": m, "object": "model", "created": 0, "owned_by": owner}))
            .collect();
        json!({"object": "list", "data": data})
    };
    json_response(StatusCode::OK, &body)
}

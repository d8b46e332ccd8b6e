//! Per-API wire facts, in one table: the request path, the auth header, the default base
//! URL and key variables, the default provider name, and the rules that go the other way
//! (which API a request path addresses, which provider a host belongs to, which API a body's
//! content looks like).
//!
//! Everything that records, serves, proxies or imports traffic asks this module, so the
//! recorder, the replay server and the importer agree about every provider.

use std::sync::OnceLock;

use regex::Regex;

use super::Api;
use crate::http::Headers;

/// The static facts of one wire API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Facts {
    pub api: Api,
    /// Request path below the base URL; `{model}` stands for the model.
    pub path: &'static str,
    /// The same, for a streaming request.
    pub stream_path: &'static str,
    /// Header that carries the API key.
    pub auth_header: &'static str,
    /// Text written before the key in `auth_header` (`"Bearer "` or nothing).
    pub auth_prefix: &'static str,
    /// Headers every request carries besides `content-type` and the key.
    pub fixed_headers: &'static [(&'static str, &'static str)],
    /// Base URL when none is configured.
    pub default_base_url: &'static str,
    /// Environment variables an API key is read from, in order (see [`key_variables`] for the
    /// OpenRouter exception).
    pub key_variables: &'static [&'static str],
    /// Provider name when none is configured.
    pub default_provider: &'static str,
}

/// OpenAI Chat Completions; the Responses API differs only in its path.
const OPENAI_CHAT: Facts = Facts {
    api: Api::OpenAiChat,
    path: "/v1/chat/completions",
    stream_path: "/v1/chat/completions",
    auth_header: "authorization",
    auth_prefix: "Bearer ",
    fixed_headers: &[],
    default_base_url: "https://api.openai.com",
    key_variables: &["OPENAI_API_KEY"],
    default_provider: "openai",
};

/// The table: one row per [`Api`], in [`Api::ALL`] order.
const TABLE: [Facts; 4] = [
    OPENAI_CHAT,
    Facts {
        api: Api::OpenAiResponses,
        path: "/v1/responses",
        stream_path: "/v1/responses",
        ..OPENAI_CHAT
    },
    Facts {
        api: Api::Anthropic,
        path: "/v1/messages",
        stream_path: "/v1/messages",
        auth_header: "x-api-key",
        auth_prefix: "",
        fixed_headers: &[("anthropic-version", "2023-06-01")],
        default_base_url: "https://api.anthropic.com",
        key_variables: &["ANTHROPIC_API_KEY"],
        default_provider: "anthropic",
    },
    Facts {
        api: Api::Gemini,
        path: "/v1beta/models/{model}:generateContent",
        stream_path: "/v1beta/models/{model}:streamGenerateContent?alt=sse",
        auth_header: "x-goog-api-key",
        auth_prefix: "",
        fixed_headers: &[],
        default_base_url: "https://generativelanguage.googleapis.com",
        key_variables: &["GEMINI_API_KEY", "GOOGLE_API_KEY"],
        default_provider: "google",
    },
];

/// The facts of `api`.
pub fn facts(api: Api) -> &'static Facts {
    TABLE
        .iter()
        .find(|f| f.api == api)
        .expect("every Api has a row in the wire table")
}

/// The request path below the base URL (`/v1/chat/completions`, ...).
pub fn endpoint_path(api: Api, model: &str, stream: bool) -> String {
    let f = facts(api);
    let template = if stream { f.stream_path } else { f.path };
    template.replace("{model}", model)
}

/// Which API a request path addresses, and for Gemini the model named in the path.
///
/// The query and fragment are ignored. The rule, first match wins:
/// - `…/models/{model}:generateContent` or `…:streamGenerateContent` is Gemini (the Gemini
///   API and Vertex AI both use it; the model is everything between `/models/` and `:`);
/// - a path ending in `/chat/completions` is OpenAI Chat Completions;
/// - a path ending in `/responses`, or with a `/responses/` segment (fetching a stored
///   response, `GET /v1/responses/{id}?stream=true`, streams the same wire format), is the
///   OpenAI Responses API;
/// - a path ending in `/messages` is Anthropic;
/// - anything else (`/v1/embeddings`, model listings) is no API tapeloop speaks.
pub fn route(path: &str) -> Option<(Api, Option<String>)> {
    let path = path.split(['?', '#']).next().unwrap_or(path);
    if let Some(i) = path.find("/models/") {
        let rest = &path[i + "/models/".len()..];
        if let Some((model, method)) = rest.split_once(':') {
            if method == "streamGenerateContent" || method == "generateContent" {
                return Some((Api::Gemini, Some(model.to_string())));
            }
        }
    }
    if path.ends_with("/chat/completions") {
        Some((Api::OpenAiChat, None))
    } else if path.ends_with("/responses") || path.contains("/responses/") {
        Some((Api::OpenAiResponses, None))
    } else if path.ends_with("/messages") {
        Some((Api::Anthropic, None))
    } else {
        None
    }
}

/// The API a full request URI (or a bare path) addresses, by [`route`] on its path.
pub fn api_from_uri(uri: &str) -> Option<Api> {
    match url::Url::parse(uri) {
        Ok(u) => route(u.path()),
        Err(_) => route(uri),
    }
    .map(|(api, _)| api)
}

/// The headers of a request to `api`: content type, fixed headers, and the key if any.
pub fn request_headers(api: Api, key: Option<&str>) -> Headers {
    let f = facts(api);
    let mut h = Headers::new();
    h.insert("content-type", "application/json");
    for (name, value) in f.fixed_headers {
        h.insert(*name, *value);
    }
    if let Some(k) = key {
        h.insert(f.auth_header, format!("{}{k}", f.auth_prefix));
    }
    h
}

/// The default base URL of `api`.
pub fn default_base_url(api: Api) -> &'static str {
    facts(api).default_base_url
}

/// The environment variables an API key is read from, in order. OpenRouter serves every API
/// under its own key, so provider `openrouter` reads `OPENROUTER_API_KEY` whatever the API.
pub fn key_variables(api: Api, provider: &str) -> Vec<&'static str> {
    if provider == "openrouter" {
        vec!["OPENROUTER_API_KEY"]
    } else {
        facts(api).key_variables.to_vec()
    }
}

/// The provider name used when none is configured (`openai`, `anthropic`, `google`).
pub fn default_provider(api: Api) -> &'static str {
    facts(api).default_provider
}

/// Known provider hosts: a host equal to, or a subdomain of, the first names the second.
const KNOWN_HOSTS: [(&str, &str); 12] = [
    ("api.openai.com", "openai"),
    ("api.anthropic.com", "anthropic"),
    ("generativelanguage.googleapis.com", "google"),
    ("aiplatform.googleapis.com", "google-vertex"),
    ("openrouter.ai", "openrouter"),
    ("api.groq.com", "groq"),
    ("api.deepseek.com", "deepseek"),
    ("api.mistral.ai", "mistral"),
    ("huggingface.co", "huggingface"),
    ("api.x.ai", "xai"),
    ("api.z.ai", "zai"),
    ("openai.azure.com", "azure"),
];

/// The provider name for a request host: a known host's name, otherwise the
/// registrable-looking label (`api.crusoe.ai` -> `crusoe`), an IP address as it is (a local
/// server), `unknown` for an empty host.
pub fn provider_from_host(host: &str) -> String {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if bare.parse::<std::net::IpAddr>().is_ok() {
        return bare.to_string();
    }
    for (suffix, name) in KNOWN_HOSTS {
        if host == suffix || host.ends_with(&format!(".{suffix}")) {
            return name.to_string();
        }
    }
    let labels: Vec<&str> = host.split('.').filter(|l| !l.is_empty()).collect();
    match labels.len() {
        0 => "unknown".into(),
        1 => labels[0].to_string(),
        n => labels[n - 2].to_string(),
    }
}

/// Content rules for [`sniff`], first match wins; a rule matches when all its patterns do.
const SNIFF_RULES: [(&[&str], Api); 6] = [
    (
        &[r#"event: message_start|"type"\s*:\s*"message_start""#],
        Api::Anthropic,
    ),
    (&[r#""type"\s*:\s*"response\."#], Api::OpenAiResponses),
    (&[r"chat\.completion\.chunk"], Api::OpenAiChat),
    (&[r#""candidates"\s*:"#], Api::Gemini),
    // Anthropic error body: {"type":"error","error":{"type":"..."}}
    (
        &[r#""type"\s*:\s*"error"\s*,\s*"error"\s*:"#],
        Api::Anthropic,
    ),
    // Google RPC error body: {"error":{"code":404,"status":"NOT_FOUND"}}
    (
        &[r#""status"\s*:\s*"[A-Z_]+""#, r#""error"\s*:"#],
        Api::Gemini,
    ),
];

/// Guess the wire API from a body's content (its first 256 KiB).
pub fn sniff(bytes: &[u8]) -> Option<Api> {
    static RULES: OnceLock<Vec<(Vec<Regex>, Api)>> = OnceLock::new();
    let rules = RULES.get_or_init(|| {
        SNIFF_RULES
            .iter()
            .map(|(pats, api)| {
                let res = pats
                    .iter()
                    .map(|p| Regex::new(p).expect("valid detection regex"))
                    .collect();
                (res, *api)
            })
            .collect()
    });
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(256 * 1024)]);
    rules
        .iter()
        .find(|(res, _)| res.iter().all(|re| re.is_match(&text)))
        .map(|(_, api)| *api)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_has_one_row_per_api_in_order() {
        let apis: Vec<Api> = TABLE.iter().map(|f| f.api).collect();
        assert_eq!(apis, Api::ALL.to_vec());
    }

    #[test]
    fn endpoint_paths() {
        let cases = [
            (Api::OpenAiChat, "m", true, "/v1/chat/completions"),
            (Api::OpenAiResponses, "m", false, "/v1/responses"),
            (Api::Anthropic, "m", true, "/v1/messages"),
            (
                Api::Gemini,
                "gemini-2.5-flash",
                true,
                "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse",
            ),
            (
                Api::Gemini,
                "gemini-2.5-flash",
                false,
                "/v1beta/models/gemini-2.5-flash:generateContent",
            ),
        ];
        for (api, model, stream, path) in cases {
            assert_eq!(
                endpoint_path(api, model, stream),
                path,
                "{api} stream={stream}"
            );
        }
    }

    #[test]
    fn every_endpoint_path_routes_back_to_its_api() {
        for api in Api::ALL {
            for stream in [false, true] {
                let (got, model) = route(&endpoint_path(api, "m-1", stream)).unwrap();
                assert_eq!(got, api);
                assert_eq!(model.is_some(), api == Api::Gemini);
            }
        }
    }

    #[test]
    fn routes() {
        assert_eq!(route("/v1/chat/completions"), Some((Api::OpenAiChat, None)));
        assert_eq!(route("/chat/completions"), Some((Api::OpenAiChat, None)));
        assert_eq!(route("/v1/responses"), Some((Api::OpenAiResponses, None)));
        assert_eq!(
            route("/v1/responses/resp_1?stream=true"),
            Some((Api::OpenAiResponses, None))
        );
        assert_eq!(route("/v1/messages"), Some((Api::Anthropic, None)));
        assert_eq!(
            route("/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"),
            Some((Api::Gemini, Some("gemini-2.5-flash".into())))
        );
        assert_eq!(
            route("/v1beta1/projects/p/locations/global/publishers/google/models/g-3:streamGenerateContent"),
            Some((Api::Gemini, Some("g-3".into())))
        );
        assert_eq!(route("/v1/embeddings"), None);
        assert_eq!(route("/v1/models/gpt-4o"), None);
    }

    #[test]
    fn apis_from_uris() {
        assert_eq!(
            api_from_uri("https://api.openai.com/v1/chat/completions"),
            Some(Api::OpenAiChat)
        );
        assert_eq!(
            api_from_uri("https://api.mistral.ai/v1/chat/completions#stream"),
            Some(Api::OpenAiChat)
        );
        assert_eq!(
            api_from_uri("https://api.openai.com/v1/responses/resp_1?stream=true"),
            Some(Api::OpenAiResponses)
        );
        assert_eq!(
            api_from_uri("https://api.anthropic.com/v1/messages?beta=true"),
            Some(Api::Anthropic)
        );
        assert_eq!(
            api_from_uri("https://generativelanguage.googleapis.com/v1beta/models/m:streamGenerateContent?alt=sse"),
            Some(Api::Gemini)
        );
        assert_eq!(api_from_uri("https://huggingface.co/api/models/x"), None);
        assert_eq!(api_from_uri("/v1/messages"), Some(Api::Anthropic));
    }

    #[test]
    fn headers_per_api() {
        let h = request_headers(Api::OpenAiChat, Some("k"));
        assert_eq!(h.get("content-type"), Some("application/json"));
        assert_eq!(h.get("authorization"), Some("Bearer k"));
        let h = request_headers(Api::Anthropic, Some("k"));
        assert_eq!(h.get("anthropic-version"), Some("2023-06-01"));
        assert_eq!(h.get("x-api-key"), Some("k"));
        let names: Vec<&str> = h.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["content-type", "anthropic-version", "x-api-key"]);
        let h = request_headers(Api::Gemini, Some("k"));
        assert_eq!(h.get("x-goog-api-key"), Some("k"));
        let h = request_headers(Api::Anthropic, None);
        assert_eq!(h.len(), 2);
        assert_eq!(request_headers(Api::Gemini, None).len(), 1);
    }

    #[test]
    fn defaults_and_keys() {
        assert_eq!(
            default_base_url(Api::OpenAiResponses),
            "https://api.openai.com"
        );
        assert_eq!(
            default_base_url(Api::Gemini),
            "https://generativelanguage.googleapis.com"
        );
        assert_eq!(
            key_variables(Api::Gemini, "google"),
            ["GEMINI_API_KEY", "GOOGLE_API_KEY"]
        );
        assert_eq!(
            key_variables(Api::Anthropic, "openrouter"),
            ["OPENROUTER_API_KEY"]
        );
        assert_eq!(key_variables(Api::OpenAiChat, "groq"), ["OPENAI_API_KEY"]);
        assert_eq!(default_provider(Api::OpenAiChat), "openai");
        assert_eq!(default_provider(Api::Gemini), "google");
    }

    #[test]
    fn default_providers_match_their_default_hosts() {
        for api in Api::ALL {
            let host = url::Url::parse(default_base_url(api)).unwrap();
            assert_eq!(
                provider_from_host(host.host_str().unwrap()),
                default_provider(api)
            );
        }
    }

    #[test]
    fn providers_from_hosts() {
        assert_eq!(provider_from_host("api.anthropic.com"), "anthropic");
        assert_eq!(provider_from_host("router.huggingface.co"), "huggingface");
        assert_eq!(provider_from_host("api.crusoe.ai"), "crusoe");
        assert_eq!(provider_from_host("localhost"), "localhost");
        assert_eq!(provider_from_host("127.0.0.1"), "127.0.0.1");
        assert_eq!(provider_from_host("[::1]"), "::1");
        assert_eq!(provider_from_host(""), "unknown");
    }

    #[test]
    fn sniffs_apis_from_content() {
        let cases: [(&[u8], Option<Api>); 8] = [
            (b"event: message_start\ndata: {}", Some(Api::Anthropic)),
            (
                br#"{"type": "message_start","message":{}}"#,
                Some(Api::Anthropic),
            ),
            (
                br#"data: {"object":"chat.completion.chunk"}"#,
                Some(Api::OpenAiChat),
            ),
            (
                br#"data: {"type":"response.created"}"#,
                Some(Api::OpenAiResponses),
            ),
            (b"[{\n  \"candidates\": []}]", Some(Api::Gemini)),
            (
                br#"{"type":"error","error":{"type":"overloaded_error"}}"#,
                Some(Api::Anthropic),
            ),
            (
                br#"{"error":{"code":404,"status":"NOT_FOUND"}}"#,
                Some(Api::Gemini),
            ),
            (br#"{"error":{"message":"x"}}"#, None),
        ];
        for (body, want) in cases {
            assert_eq!(sniff(body), want, "{}", String::from_utf8_lossy(body));
        }
    }
}

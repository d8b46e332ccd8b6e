//! Live recording: run a scenario against a real provider through the processor, writing
//! every attempt into a cassette as its bytes arrive.
//!
//! Nothing is buffered: each body read goes to the decoder and to the cassette (one flushed
//! line) the moment it arrives, so a crash or Ctrl-C leaves a readable, truncated cassette
//! whose complete interactions replay. Retry waits sleep for real here; the scenario's mock
//! tools answer tool calls, and every answer is written as a `tool` line so replay can reuse
//! it. Secrets never reach disk: the writer redacts headers, query keys and key-shaped strings,
//! and the API key in use is registered as an explicit secret.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::Value;

use crate::cassette::{
    CassetteWriter, End, Header, Redactor, Request as CassetteRequest, ResponseHead, ToolRecord,
};
use crate::event::{EndOutcome, StreamEvent};
use crate::http::Headers;
use crate::processor::{Action, Outcome, Processor, ToolInvocation};
use crate::provider::{Api, ResponseDecoder};
use crate::scenario::{MatchMode, Scenario, ToolScripts};
use crate::transport::CassetteReplay;

/// How an existing output file is treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RecordMode {
    /// Refuse to overwrite an existing cassette (the default).
    #[default]
    Once,
    /// Re-record from scratch, replacing the file.
    All,
    /// Replay the existing cassette's interactions in order while each recorded request equals
    /// the one the loop sends now (strict match), and record live from the first request the
    /// cassette cannot answer (exhausted or diverged) on. Old and new go into the file.
    New,
}

impl std::str::FromStr for RecordMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "once" => Ok(RecordMode::Once),
            "all" => Ok(RecordMode::All),
            "new" => Ok(RecordMode::New),
            _ => Err(format!(
                "unknown record mode `{s}`: expected once, all or new"
            )),
        }
    }
}

/// Where and how to record.
#[derive(Debug, Clone)]
pub struct LiveOptions {
    pub api: Api,
    pub model: String,
    /// Provider name written into the cassette header (`openai`, `anthropic`, `ollama`, ...).
    pub provider: String,
    /// Base URL without the endpoint path (`https://api.openai.com`).
    pub base_url: String,
    pub api_key: Option<String>,
    pub connect_timeout: Duration,
    /// Longest silence between two body reads before the attempt counts as timed out.
    pub read_timeout: Duration,
}

impl LiveOptions {
    /// The usual base URL of an API's first-party provider.
    pub fn default_base_url(api: Api) -> &'static str {
        match api {
            Api::OpenAiChat | Api::OpenAiResponses => "https://api.openai.com",
            Api::Anthropic => "https://api.anthropic.com",
            Api::Gemini => "https://generativelanguage.googleapis.com",
        }
    }

    /// The environment variables an API key is read from, in order.
    pub fn key_variables(api: Api, provider: &str) -> Vec<&'static str> {
        match (api, provider) {
            (_, "openrouter") => vec!["OPENROUTER_API_KEY"],
            (Api::OpenAiChat | Api::OpenAiResponses, _) => vec!["OPENAI_API_KEY"],
            (Api::Anthropic, _) => vec!["ANTHROPIC_API_KEY"],
            (Api::Gemini, _) => vec!["GEMINI_API_KEY", "GOOGLE_API_KEY"],
        }
    }
}

/// Errors that stop a recording before it could run.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("{0}: the cassette exists; use --mode all to re-record or --mode new to append")]
    Exists(PathBuf),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Cassette(#[from] crate::cassette::CassetteError),
    #[error("building the HTTP client: {0}")]
    Client(reqwest::Error),
    #[error("{path}: recorded with api {found}, but this recording uses {wanted}; use --mode all to re-record")]
    ApiMismatch {
        path: PathBuf,
        found: Api,
        wanted: Api,
    },
}

/// The request headers for an API (content type and authentication).
pub fn request_headers(api: Api, key: Option<&str>) -> Headers {
    let mut h = Headers::new();
    h.insert("content-type", "application/json");
    match api {
        Api::OpenAiChat | Api::OpenAiResponses => {
            if let Some(k) = key {
                h.insert("authorization", format!("Bearer {k}"));
            }
        }
        Api::Anthropic => {
            h.insert("anthropic-version", "2023-06-01");
            if let Some(k) = key {
                h.insert("x-api-key", k);
            }
        }
        Api::Gemini => {
            if let Some(k) = key {
                h.insert("x-goog-api-key", k);
            }
        }
    }
    h
}

/// Progress of a live recording, for the terminal.
#[derive(Debug, Clone)]
pub enum Progress {
    Request { step: u32, attempt: u32 },
    Response { status: u16, ms: u64 },
    StepDone { step: u32, tokens: u64 },
    Retry { ms: u64 },
}

/// Record a scenario live. Returns the processor's outcome; the cassette at `out` is complete
/// (footer written) when this returns `Ok`.
pub async fn record_scenario(
    sc: &Scenario,
    cfg: crate::processor::ProcessorConfig,
    opts: &LiveOptions,
    out: &Path,
    mode: RecordMode,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<Outcome, RecordError> {
    let existing = match mode {
        RecordMode::Once if out.exists() => return Err(RecordError::Exists(out.to_path_buf())),
        RecordMode::New if out.exists() => Some(crate::cassette::Cassette::load(out)?),
        _ => None,
    };
    if let Some(c) = &existing {
        if c.header.api != opts.api {
            return Err(RecordError::ApiMismatch {
                path: out.to_path_buf(),
                found: c.header.api,
                wanted: opts.api,
            });
        }
    }
    let mut redactor = Redactor::new();
    if let Some(k) = &opts.api_key {
        redactor = redactor.secret(k.clone());
    }
    let mut header = Header::new(opts.api);
    header.provider = Some(opts.provider.clone());
    header.model = Some(opts.model.clone());
    header.scenario = Some(sc.name.clone());
    header.recorded_at = Some(now_rfc3339());
    header.recorder = Some(format!("tapeloop {}", crate::VERSION));
    // Write next to the target and rename at the end in `new` mode, so the old cassette
    // survives a failed run.
    let tmp = out.with_extension("jsonl.partial");
    let write_path = if existing.is_some() {
        tmp.as_path()
    } else {
        out
    };
    if let Some(dir) = write_path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| RecordError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
    }
    // Old requests are on disk redacted: compare the new ones in the same form.
    let mut match_redactor = redactor.clone();
    let mut writer =
        CassetteWriter::create(write_path, header, redactor).map_err(|source| RecordError::Io {
            path: write_path.to_path_buf(),
            source,
        })?;
    let client = reqwest::Client::builder()
        .connect_timeout(opts.connect_timeout)
        .build()
        .map_err(RecordError::Client)?;

    let mut processor = Processor::new(cfg, crate::runner::initial_conversation(sc));
    let mut scripts = ToolScripts::from_scenario(sc);
    let clock = Instant::now();
    let now = |c: &Instant| c.elapsed().as_millis() as u64;
    let mut next_id: u64 = 1;
    // `new` mode: the old cassette answers while its requests match; the first miss switches
    // to live recording for the rest of the run.
    let mut old = existing
        .as_ref()
        .map(|c| CassetteReplay::new(c, MatchMode::Strict));
    // Whether the last attempt came from the old cassette: its retry wait is not slept.
    let mut last_replayed = false;
    let mut pending: Vec<Action> = Vec::new();
    let mut events: Vec<StreamEvent> = Vec::new();
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| RecordError::Io { path, source }
    };

    let mut action = processor.start(now(&clock));
    'run: loop {
        match action {
            Action::Stop(_) => break,
            Action::Wait { ms } => {
                if last_replayed {
                    action = processor.on_wait_elapsed(now(&clock));
                    continue;
                }
                progress(Progress::Retry { ms });
                tokio::time::sleep(Duration::from_millis(ms)).await;
                action = processor.on_wait_elapsed(now(&clock));
            }
            Action::ExecuteTool(inv) => {
                let (output, is_error) = answer(&mut scripts, &inv);
                write_tool(&mut writer, &inv, &output, is_error).map_err(io(write_path))?;
                processor.on_tool_result(&inv.call_id, output, is_error, now(&clock));
                action = processor.on_attempt_end(now(&clock));
            }
            Action::Send(req) => {
                let id = next_id;
                next_id += 1;
                progress(Progress::Request {
                    step: req.step,
                    attempt: req.attempt,
                });
                let body = opts.api.request_body(&req.conversation, &req.options);
                // `new` mode: answer from the old cassette while it matches.
                let recorded = match old
                    .as_mut()
                    .map(|r| r.next_response(|| match_redactor.value(&body)))
                {
                    Some(Ok(i)) => Some(i),
                    Some(Err(_)) => {
                        old = None;
                        None
                    }
                    None => None,
                };
                last_replayed = recorded.is_some();
                if let Some(recorded) = recorded {
                    let mut copy = recorded.into_owned();
                    copy.id = id;
                    writer.write_interaction(&copy).map_err(io(write_path))?;
                    let start = now(&clock);
                    for ev in copy.decode(opts.api) {
                        processor.on_event(&ev, start, &mut pending);
                        if drain(
                            &mut processor,
                            &mut pending,
                            &mut scripts,
                            &mut writer,
                            start,
                        )
                        .map_err(io(write_path))?
                        {
                            break 'run;
                        }
                    }
                    action = processor.on_attempt_end(now(&clock));
                    continue;
                }
                let url = format!(
                    "{}{}",
                    opts.base_url.trim_end_matches('/'),
                    opts.api.endpoint_path(&opts.model, true)
                );
                let headers = request_headers(opts.api, opts.api_key.as_deref());
                writer
                    .write_request(
                        id,
                        req.step,
                        req.attempt,
                        &CassetteRequest {
                            method: "POST".into(),
                            url: url.clone(),
                            headers: headers.clone(),
                            body: body.clone().into(),
                        },
                    )
                    .map_err(io(write_path))?;
                let sent = Instant::now();
                let ms = |s: &Instant| s.elapsed().as_millis() as u64;
                let mut rb = client.post(&url).json(&body);
                for (k, v) in headers.iter() {
                    if !k.eq_ignore_ascii_case("content-type") {
                        rb = rb.header(k.as_str(), v.as_str());
                    }
                }
                // The read timeout also bounds the wait for the response head.
                let response = match tokio::time::timeout(opts.read_timeout, rb.send()).await {
                    Ok(r) => r.map_err(|e| {
                        let outcome = if e.is_timeout() {
                            EndOutcome::Timeout
                        } else {
                            EndOutcome::Reset
                        };
                        (outcome, format!("request failed: {e}"))
                    }),
                    Err(_) => Err((
                        EndOutcome::Timeout,
                        format!(
                            "no response head within the read timeout ({} ms)",
                            opts.read_timeout.as_millis()
                        ),
                    )),
                };
                let resp = match response {
                    Ok(r) => r,
                    Err((outcome, message)) => {
                        // No response head: the attempt failed at the network level.
                        writer
                            .write_end(
                                id,
                                End {
                                    ms: ms(&sent),
                                    outcome,
                                },
                            )
                            .map_err(io(write_path))?;
                        let ev = StreamEvent::Error(crate::event::ProviderError {
                            class: crate::event::ErrorClass::Network,
                            status: None,
                            message,
                            retryable: true,
                            retry_after_ms: None,
                            code: None,
                        });
                        let t = now(&clock);
                        processor.on_event(&ev, t, &mut pending);
                        if drain(&mut processor, &mut pending, &mut scripts, &mut writer, t)
                            .map_err(io(write_path))?
                        {
                            break 'run;
                        }
                        action = processor.on_attempt_end(now(&clock));
                        continue;
                    }
                };
                let status = resp.status().as_u16();
                let head = ResponseHead {
                    status,
                    headers: resp
                        .headers()
                        .iter()
                        .map(|(k, v)| {
                            (
                                k.as_str().to_string(),
                                String::from_utf8_lossy(v.as_bytes()).into_owned(),
                            )
                        })
                        .collect(),
                    ms: ms(&sent),
                };
                progress(Progress::Response {
                    status,
                    ms: head.ms,
                });
                writer.write_response(id, &head).map_err(io(write_path))?;
                let ok = (200..300).contains(&status);
                let mut decoder = ResponseDecoder::new(opts.api);
                let mut error_body = Vec::new();
                let mut stream = resp.bytes_stream();
                let outcome = loop {
                    match tokio::time::timeout(opts.read_timeout, stream.next()).await {
                        Err(_) => break EndOutcome::Timeout,
                        Ok(None) => break EndOutcome::Complete,
                        Ok(Some(Err(_))) => break EndOutcome::Reset,
                        Ok(Some(Ok(bytes))) => {
                            writer
                                .write_chunk(id, ms(&sent), &bytes)
                                .map_err(io(write_path))?;
                            if ok {
                                decoder.feed(&bytes, &mut events);
                                let t = now(&clock);
                                for ev in events.drain(..) {
                                    processor.on_event(&ev, t, &mut pending);
                                    if drain(
                                        &mut processor,
                                        &mut pending,
                                        &mut scripts,
                                        &mut writer,
                                        t,
                                    )
                                    .map_err(io(write_path))?
                                    {
                                        writer
                                            .write_end(
                                                id,
                                                End {
                                                    ms: ms(&sent),
                                                    outcome: EndOutcome::Aborted,
                                                },
                                            )
                                            .map_err(io(write_path))?;
                                        break 'run;
                                    }
                                }
                            } else {
                                error_body.extend_from_slice(&bytes);
                            }
                        }
                    }
                };
                writer
                    .write_end(
                        id,
                        End {
                            ms: ms(&sent),
                            outcome,
                        },
                    )
                    .map_err(io(write_path))?;
                if ok {
                    decoder.finish(outcome, &mut events);
                } else {
                    events.push(StreamEvent::Error(opts.api.classify_error(
                        status,
                        &head.headers,
                        &error_body,
                    )));
                }
                let t = now(&clock);
                for ev in events.drain(..) {
                    if let StreamEvent::FinishStep { usage, .. } = &ev {
                        progress(Progress::StepDone {
                            step: req.step,
                            tokens: usage.total(),
                        });
                    }
                    processor.on_event(&ev, t, &mut pending);
                    if drain(&mut processor, &mut pending, &mut scripts, &mut writer, t)
                        .map_err(io(write_path))?
                    {
                        break 'run;
                    }
                }
                action = processor.on_attempt_end(now(&clock));
            }
        }
    }
    writer.finish().map_err(io(write_path))?;
    if existing.is_some() {
        std::fs::rename(&tmp, out).map_err(io(out))?;
    }
    Ok(processor.into_outcome())
}

fn answer(scripts: &mut ToolScripts, inv: &ToolInvocation) -> (String, bool) {
    match scripts.answer(&inv.tool, &inv.input) {
        Some(Ok(a)) => (a.output, a.is_error),
        Some(Err(no_match)) => {
            let a = no_match.to_answer();
            (a.output, a.is_error)
        }
        None => (
            format!(
                "tapeloop: the scenario scripts no results for `{}`",
                inv.tool
            ),
            true,
        ),
    }
}

fn write_tool<W: std::io::Write>(
    writer: &mut CassetteWriter<W>,
    inv: &ToolInvocation,
    output: &str,
    is_error: bool,
) -> std::io::Result<()> {
    writer.write_tool(&ToolRecord {
        step: inv.step,
        call_id: inv.call_id.clone(),
        tool: inv.tool.clone(),
        input: inv.input.clone(),
        output: Value::String(output.to_string()),
        error: is_error,
    })
}

/// Carry out the processor's pending actions; true when it stopped the run.
fn drain<W: std::io::Write>(
    processor: &mut Processor,
    pending: &mut Vec<Action>,
    scripts: &mut ToolScripts,
    writer: &mut CassetteWriter<W>,
    now: u64,
) -> std::io::Result<bool> {
    let mut stopped = false;
    while !pending.is_empty() {
        for a in std::mem::take(pending) {
            match a {
                Action::ExecuteTool(inv) => {
                    let (output, is_error) = answer(scripts, &inv);
                    write_tool(writer, &inv, &output, is_error)?;
                    processor.on_tool_result(&inv.call_id, output, is_error, now);
                }
                Action::Stop(_) => stopped = true,
                Action::Send(_) | Action::Wait { .. } => {}
            }
        }
    }
    Ok(stopped)
}

/// RFC 3339 UTC timestamp with second precision.
pub fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| "1970-01-01T00:00:00Z".to_string())
}

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

use bytes::Bytes;
use serde_json::Value;

use crate::cassette::{
    CassetteWriter, End, Header, Redactor, Request as CassetteRequest, ResponseHead, ToolRecord,
};
use crate::event::{EndOutcome, StreamEvent};
use crate::net::upstream::{BodyRead, SendError, Tee, Upstream};
use crate::processor::{Action, Outcome, Processor, ToolInvocation};
use crate::provider::{wire, Api, ResponseDecoder};
use crate::replay::CassetteReplay;
use crate::scenario::{MatchMode, Scenario, ToolScripts};
use crate::session::{SessionDriver, ToolHost};

crate::string_enum! {
    /// How an existing output file is treated.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
    pub enum RecordMode: "record mode" {
        /// Refuse to overwrite an existing cassette (the default).
        #[default]
        Once = "once",
        /// Re-record from scratch, replacing the file.
        All = "all",
        /// Replay the existing cassette's interactions in order while each recorded request
        /// equals the one the loop sends now (strict match), and record live from the first
        /// request the cassette cannot answer (exhausted or diverged) on. Old and new go into
        /// the file.
        New = "new",
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
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| RecordError::Io { path, source }
    };
    if let Some(dir) = write_path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
    }
    // Old requests are on disk redacted: compare the new ones in the same form.
    let mut match_redactor = redactor.clone();
    let writer = CassetteWriter::create(write_path, header, redactor).map_err(io(write_path))?;
    let upstream =
        Upstream::new(opts.connect_timeout, opts.read_timeout).map_err(RecordError::Client)?;
    let mut rec = Recording {
        writer,
        // `new` mode: the old cassette answers while its requests match; the first miss
        // switches to live recording for the rest of the run.
        old: existing
            .as_ref()
            .map(|c| CassetteReplay::new(c, MatchMode::Strict)),
    };
    let mut session = SessionDriver::new(
        Processor::new(cfg, crate::runner::initial_conversation(sc)),
        ToolScripts::from_scenario(sc),
    );
    let clock = Instant::now();
    let now = |c: &Instant| c.elapsed().as_millis() as u64;
    let mut next_id: u64 = 1;
    // Whether the last attempt came from the old cassette: its retry wait is not slept.
    let mut last_replayed = false;
    let mut events: Vec<StreamEvent> = Vec::new();
    // Feed a batch of events, reporting finished steps; true when the processor stopped.
    let feed = |session: &mut SessionDriver,
                rec: &mut Recording<'_>,
                events: &mut Vec<StreamEvent>,
                step: u32|
     -> Result<bool, RecordError> {
        for ev in events.iter() {
            if let StreamEvent::FinishStep { usage, .. } = ev {
                progress(Progress::StepDone {
                    step,
                    tokens: usage.total(),
                });
            }
        }
        session
            .feed(events, now(&clock), rec)
            .map_err(io(write_path))
    };

    let mut action = session.start(now(&clock));
    'run: loop {
        match action {
            Action::Stop(_) => break,
            Action::Wait { ms } => {
                if !last_replayed {
                    progress(Progress::Retry { ms });
                    crate::net::pause(Duration::from_millis(ms)).await;
                }
                action = session.wait_elapsed(now(&clock));
            }
            Action::ExecuteTool(inv) => {
                session
                    .answer_tool(&inv, now(&clock), &mut rec)
                    .map_err(io(write_path))?;
                action = session.attempt_end(now(&clock));
            }
            Action::Send(req) => {
                let (step, attempt) = (req.step, req.attempt);
                let id = next_id;
                next_id += 1;
                progress(Progress::Request { step, attempt });
                let body = opts.api.request_body(&req.conversation, &req.options);
                // Let go of the request's conversation before the events change the history,
                // so the history grows in place instead of being copied.
                drop(req);
                // `new` mode: answer from the old cassette while it matches.
                let recorded = match rec
                    .old
                    .as_mut()
                    .map(|r| r.next_response(|| match_redactor.value(&body)))
                {
                    Some(Ok(i)) => Some(i.into_owned()),
                    Some(Err(_)) => {
                        rec.old = None;
                        None
                    }
                    None => None,
                };
                last_replayed = recorded.is_some();
                if let Some(mut copy) = recorded {
                    copy.id = id;
                    rec.writer
                        .write_interaction(&copy)
                        .map_err(io(write_path))?;
                    events.extend(copy.decode(opts.api));
                    if feed(&mut session, &mut rec, &mut events, step)? {
                        break 'run;
                    }
                    action = session.attempt_end(now(&clock));
                    continue;
                }
                let url = format!(
                    "{}{}",
                    opts.base_url.trim_end_matches('/'),
                    wire::endpoint_path(opts.api, &opts.model, true)
                );
                let headers = wire::request_headers(opts.api, opts.api_key.as_deref());
                let request = CassetteRequest {
                    method: "POST".into(),
                    url: url.clone(),
                    headers: headers.clone(),
                    body: body.clone().into(),
                    body_b64: None,
                };
                rec.writer
                    .write_request(id, step, attempt, &request)
                    .map_err(io(write_path))?;
                let body_bytes = Bytes::from(serde_json::to_vec(&body).unwrap_or_default());
                let mut tee = InteractionTee {
                    writer: &mut rec.writer,
                    id,
                };
                let mut exchange = match upstream
                    .send("POST", &url, &headers, body_bytes, &mut tee)
                    .await
                {
                    Ok(x) => x,
                    Err(SendError::Tee(e)) => return Err(io(write_path)(e)),
                    Err(SendError::Network(f)) => {
                        // No response head: the attempt failed at the network level.
                        events.push(StreamEvent::Error(crate::event::ProviderError {
                            class: crate::event::ErrorClass::Network,
                            status: None,
                            message: f.message,
                            retryable: true,
                            retry_after_ms: None,
                            code: None,
                        }));
                        if feed(&mut session, &mut rec, &mut events, step)? {
                            break 'run;
                        }
                        action = session.attempt_end(now(&clock));
                        continue;
                    }
                };
                let status = exchange.head.status;
                progress(Progress::Response {
                    status,
                    ms: exchange.head.ms,
                });
                let ok = (200..300).contains(&status);
                let mut decoder = ResponseDecoder::for_response(opts.api, &exchange.head.headers);
                let mut error_body = Vec::new();
                let outcome = loop {
                    let mut tee = InteractionTee {
                        writer: &mut rec.writer,
                        id,
                    };
                    match exchange.next(&mut tee).await.map_err(io(write_path))? {
                        BodyRead::End(end) => {
                            if let Some(e) = exchange.decode_error() {
                                eprintln!("tapeloop record: {url}: response body: {e}");
                            }
                            break end.outcome;
                        }
                        BodyRead::Chunk { decoded, .. } if ok => {
                            decoder.feed(&decoded, &mut events);
                            if feed(&mut session, &mut rec, &mut events, step)? {
                                let end = End {
                                    ms: exchange.elapsed_ms(),
                                    outcome: EndOutcome::Aborted,
                                };
                                rec.writer.write_end(id, end).map_err(io(write_path))?;
                                break 'run;
                            }
                        }
                        BodyRead::Chunk { decoded, .. } => error_body.extend_from_slice(&decoded),
                    }
                };
                if ok {
                    decoder.finish(outcome, &mut events);
                } else {
                    events.push(StreamEvent::Error(opts.api.classify_error(
                        status,
                        &exchange.head.headers,
                        &error_body,
                    )));
                }
                if feed(&mut session, &mut rec, &mut events, step)? {
                    break 'run;
                }
                action = session.attempt_end(now(&clock));
            }
        }
    }
    rec.writer.finish().map_err(io(write_path))?;
    if existing.is_some() {
        std::fs::rename(&tmp, out).map_err(io(out))?;
    }
    Ok(session.finish().outcome)
}

type Writer = CassetteWriter<std::io::BufWriter<std::fs::File>>;

/// The recording side of the session's tool chain: the old cassette's `tool` lines answer
/// while it is in use (`new` mode), and every answer given is written as a `tool` line.
struct Recording<'a> {
    writer: Writer,
    old: Option<CassetteReplay<'a>>,
}

impl ToolHost for Recording<'_> {
    fn recorded(&mut self, call_id: &str, tool: &str) -> Option<(String, bool)> {
        self.old.as_mut()?.recorded(call_id, tool)
    }

    fn answered(
        &mut self,
        inv: &ToolInvocation,
        output: &str,
        is_error: bool,
    ) -> std::io::Result<()> {
        self.writer.write_tool(&ToolRecord {
            step: inv.step,
            call_id: inv.call_id.clone(),
            tool: inv.tool.clone(),
            input: inv.input.clone(),
            output: Value::String(output.to_string()),
            error: is_error,
        })
    }
}

/// One live interaction's lines, as the upstream exchange produces them.
struct InteractionTee<'w> {
    writer: &'w mut Writer,
    id: u64,
}

impl Tee for InteractionTee<'_> {
    fn response(&mut self, head: &ResponseHead) -> std::io::Result<()> {
        self.writer.write_response(self.id, head)
    }
    fn chunk(&mut self, ms: u64, bytes: &[u8]) -> std::io::Result<()> {
        self.writer.write_chunk(self.id, ms, bytes)
    }
    fn end(&mut self, end: End) -> std::io::Result<()> {
        self.writer.write_end(self.id, end)
    }
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

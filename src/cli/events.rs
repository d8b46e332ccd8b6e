//! `tapeloop events`: decode a raw stream file or a cassette into normalized events, for
//! debugging an adapter or a recording.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use serde_json::json;
use tapeloop::cassette::{CassetteReader, Record};
use tapeloop::event::{EndOutcome, StreamEvent, ToolCall};
use tapeloop::exit::Exit;
use tapeloop::http::Headers;
use tapeloop::provider::{decode_ndjson, decode_response, Api};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// One JSON object per line.
    Jsonl,
    /// A readable table.
    Table,
}

#[derive(Debug, clap::Args)]
#[command(after_help = "Inputs:
  *.sse            a raw SSE response body
  *.chunks.txt     NDJSON, one SSE data payload per line (vercel/ai fixtures)
  *.json           a Gemini streamed JSON array, or an error body with --status
  *.jsonl          a tapeloop cassette: every interaction, each preceded (jsonl) by
                   {\"type\":\"interaction\",\"id\":1,\"step\":1,\"attempt\":1,\"status\":200}

Without --api the wire API comes from the cassette header, or from the content
(`message_start` -> anthropic, `chat.completion.chunk` -> openai-chat,
`\"type\":\"response.` -> openai-responses, `\"candidates\"` -> gemini).

Examples:
  tapeloop events tests/fixtures/provider-streams/openai-chat/mirascope__refusal.sse
  tapeloop events --format table recordings/call-with-tools.openai-chat.jsonl
  tapeloop events --api openai-chat --status 401 \\
      tests/fixtures/provider-streams/http-errors/openai_chat__401_stream_request.json
  tapeloop events --api anthropic \\
      tests/fixtures/provider-streams/anthropic/vercel__code_execution_prompt_cache.chunks.txt")]
pub struct Args {
    /// A raw stream file or a cassette (.jsonl).
    pub file: PathBuf,
    /// Wire API: openai-chat, openai-responses, anthropic, gemini.
    #[arg(long)]
    pub api: Option<Api>,
    /// Output format.
    #[arg(long, value_enum, default_value = "jsonl")]
    pub format: Format,
    /// HTTP status of a raw body (a non-2xx body is classified as an error response).
    #[arg(long, default_value_t = 200)]
    pub status: u16,
}

pub fn run(args: Args) -> anyhow::Result<Exit> {
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let status = if is_cassette(&args.file)? {
        run_cassette(&args, &mut out)?
    } else {
        run_raw(&args, &mut out)?
    };
    out.flush()?;
    Ok(status)
}

/// A cassette starts with a `header` line.
fn is_cassette(path: &Path) -> anyhow::Result<bool> {
    use std::io::{BufRead, Read};
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut first = Vec::new();
    std::io::BufReader::new(file)
        .take(1 << 20)
        .read_until(b'\n', &mut first)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let head = String::from_utf8_lossy(&first);
    let head = head.trim_start();
    Ok(head.starts_with('{')
        && regex::Regex::new(r#"^\{\s*"kind"\s*:\s*"header""#)
            .expect("valid regex")
            .is_match(head))
}

fn run_cassette(args: &Args, out: &mut impl Write) -> anyhow::Result<Exit> {
    let mut reader = CassetteReader::open(&args.file)?;
    let api = args.api.unwrap_or(reader.header().api);
    let mut n = 0usize;
    let mut status = Exit::Pass;
    for rec in reader.by_ref() {
        let i = match rec {
            Ok(Record::Interaction(i)) => i,
            Ok(Record::Tool(_)) => continue,
            Err(e) => {
                eprintln!("{e}");
                status = Exit::Error;
                if e.is_fatal() {
                    break;
                }
                continue;
            }
        };
        let code = i.response.as_ref().map(|r| r.status);
        let events = i.decode(api);
        match args.format {
            Format::Jsonl => {
                let marker = json!({"type": "interaction", "id": i.id, "step": i.step,
                    "attempt": i.attempt, "status": code});
                writeln!(out, "{marker}")?;
                write_jsonl(out, &events)?;
            }
            Format::Table => {
                if n > 0 {
                    writeln!(out)?;
                }
                let code = code.map_or("none".to_string(), |c| c.to_string());
                writeln!(
                    out,
                    "interaction {} (step {}, attempt {}), status {code}, {}",
                    i.id, i.step, i.attempt, api
                )?;
                write_table(out, &events)?;
            }
        }
        n += 1;
    }
    if let Some(t) = reader.truncation() {
        eprintln!("{}: warning: {t}", args.file.display());
    }
    Ok(status)
}

fn run_raw(args: &Args, out: &mut impl Write) -> anyhow::Result<Exit> {
    let bytes = std::fs::read(&args.file)
        .with_context(|| format!("cannot read {}", args.file.display()))?;
    let api = match args.api {
        Some(a) => a,
        None => match detect_api(&bytes) {
            Some(a) => a,
            None => bail!(
                "cannot tell the wire API of {} from its content: pass --api \
                 openai-chat|openai-responses|anthropic|gemini",
                args.file.display()
            ),
        },
    };
    let ndjson = args
        .file
        .file_name()
        .is_some_and(|n| n.to_string_lossy().ends_with(".chunks.txt"));
    let events = if ndjson && (200..300).contains(&args.status) {
        decode_ndjson(api, &String::from_utf8_lossy(&bytes))
    } else {
        decode_response(
            api,
            args.status,
            &Headers::new(),
            [bytes.as_slice()],
            EndOutcome::Complete,
        )
    };
    match args.format {
        Format::Jsonl => write_jsonl(out, &events)?,
        Format::Table => write_table(out, &events)?,
    }
    Ok(Exit::Pass)
}

/// Guess the wire API from a body's content.
pub fn detect_api(bytes: &[u8]) -> Option<Api> {
    tapeloop::provider::wire::sniff(bytes)
}

fn write_jsonl(out: &mut impl Write, events: &[StreamEvent]) -> anyhow::Result<()> {
    for e in events {
        serde_json::to_writer(&mut *out, e)?;
        out.write_all(b"\n")?;
    }
    Ok(())
}

fn write_table(out: &mut impl Write, events: &[StreamEvent]) -> anyhow::Result<()> {
    writeln!(out, "{:>4}  {:<17} detail", "#", "type")?;
    for (n, e) in events.iter().enumerate() {
        let line = format!("{:>4}  {:<17} {}", n + 1, e.type_name(), detail(e));
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(())
}

fn clip(s: &str) -> String {
    const MAX: usize = 72;
    let quoted = format!("{s:?}");
    if quoted.chars().count() <= MAX {
        quoted
    } else {
        let cut: String = quoted.chars().take(MAX - 1).collect();
        format!("{cut}…")
    }
}

/// One line describing an event's payload.
fn detail(e: &StreamEvent) -> String {
    match e {
        StreamEvent::StartStep => String::new(),
        StreamEvent::TextStart { id }
        | StreamEvent::TextEnd { id }
        | StreamEvent::ToolInputEnd { id } => format!("id={id}"),
        StreamEvent::ReasoningStart { id, metadata }
        | StreamEvent::ReasoningEnd { id, metadata } => match metadata {
            Some(m) => format!("id={id} metadata={}", clip(&m.to_string())),
            None => format!("id={id}"),
        },
        StreamEvent::TextDelta { id, text }
        | StreamEvent::RefusalDelta { id, text }
        | StreamEvent::ReasoningDelta { id, text } => format!("id={id} {}", clip(text)),
        StreamEvent::ToolInputStart { id, tool, .. } => format!("id={id} tool={tool}"),
        StreamEvent::ToolInputDelta { id, delta } => format!("id={id} {}", clip(delta)),
        StreamEvent::ToolCall(ToolCall {
            id, tool, input, ..
        }) => {
            format!("{tool} {} id={id}", clip(&input.to_string()))
        }
        StreamEvent::ToolResult {
            id,
            tool,
            output,
            is_error,
        } => format!(
            "{tool} id={id}{} {}",
            if *is_error { " error" } else { "" },
            clip(&output.to_string())
        ),
        StreamEvent::FinishStep {
            finish_reason,
            raw_finish_reason,
            usage,
        } => format!(
            "{finish_reason}{} input={} output={} reasoning={} cache_read={} cache_write={}",
            raw_finish_reason
                .as_deref()
                .map(|r| format!(" ({r})"))
                .unwrap_or_default(),
            usage.input,
            usage.output,
            usage.reasoning,
            usage.cache_read,
            usage.cache_write
        ),
        StreamEvent::Error(err) => format!(
            "{}{}{}{} {}",
            err.class,
            err.status
                .map(|s| format!(" status={s}"))
                .unwrap_or_default(),
            if err.retryable { " retryable" } else { "" },
            err.retry_after_ms
                .map(|ms| format!(" retry_after={ms}ms"))
                .unwrap_or_default(),
            clip(&err.message)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_apis_from_content() {
        assert_eq!(
            detect_api(b"event: message_start\ndata: {}"),
            Some(Api::Anthropic)
        );
        assert_eq!(
            detect_api(br#"{"type": "message_start","message":{}}"#),
            Some(Api::Anthropic)
        );
        assert_eq!(
            detect_api(br#"data: {"object":"chat.completion.chunk"}"#),
            Some(Api::OpenAiChat)
        );
        assert_eq!(
            detect_api(br#"data: {"type":"response.created"}"#),
            Some(Api::OpenAiResponses)
        );
        assert_eq!(detect_api(b"[{\n  \"candidates\": []}]"), Some(Api::Gemini));
        assert_eq!(detect_api(br#"{"error":{"message":"x"}}"#), None);
    }
}

//! The common `chat.completion.chunk` payload read by hand ([`crate::json_scan`]).
//!
//! Chat payloads are most of the SSE events a replay decodes, and nearly all of them have one
//! shape: a handful of scalar fields the decoder ignores, `"usage":null`, and one choice whose
//! delta holds a role, a text fragment, a refusal or tool-call fragments. [`chunk`] reads that
//! shape into the same [`Chunk`] serde would build, borrowing strings that have no escapes.
//! Anything else — a usage object, `x_groq`, an `error`, reasoning details, content parts, a
//! duplicate field, a number where none is plain, deep nesting — returns `None`, and the
//! decoder parses the payload with serde exactly as before. A test checks the two agree on
//! every bundled payload and on awkward ones.

use super::{
    ArgsFragment, Choice, Chunk, Content, Delta, FirstChoice, FunctionDelta, ToolCallDelta,
};
use crate::json_scan::Cursor;

/// Read a payload of the common shape; `None` for anything else (parse it with serde).
pub(super) fn chunk(data: &str) -> Option<Chunk<'_>> {
    let mut c = Cursor::new(data);
    let mut choices = None;
    let mut seen = Seen::default();
    c.object(|c, key| match key {
        "choices" => seen.fill(0, c, &mut choices, first_choice),
        // Present once per stream at most: `null` here, anything else is serde's.
        "usage" => seen.read(1, c, &mut None::<()>, |_| None),
        "x_groq" => seen.read(2, c, &mut None::<()>, |_| None),
        "error" => seen.read(3, c, &mut None::<()>, |_| None),
        _ => c.skip_value(),
    })?;
    c.at_end().then_some(Chunk {
        choices,
        usage: None,
        x_groq: None,
        error: None,
    })
}

/// The known fields a struct has seen, as bits: serde rejects a repeated field, so a
/// repetition declines.
#[derive(Default)]
struct Seen(u32);

impl Seen {
    fn first(&mut self, bit: usize) -> Option<()> {
        let mask = 1u32 << bit;
        (self.0 & mask == 0).then(|| self.0 |= mask)
    }

    /// Read known field `bit` into `slot` (`null` as `None`, as serde reads an `Option`).
    fn read<'a, T>(
        &mut self,
        bit: usize,
        c: &mut Cursor<'a>,
        slot: &mut Option<T>,
        value: impl FnOnce(&mut Cursor<'a>) -> Option<T>,
    ) -> Option<()> {
        self.first(bit)?;
        *slot = opt(c, value)?;
        Some(())
    }

    /// As [`read`](Self::read), for the large structs (a choice and its delta): `fill` writes
    /// the value in place in `slot`, so it is not moved (copied) up through every level.
    fn fill<'a, T: Default>(
        &mut self,
        bit: usize,
        c: &mut Cursor<'a>,
        slot: &mut Option<T>,
        fill: impl FnOnce(&mut Cursor<'a>, &mut T) -> Option<()>,
    ) -> Option<()> {
        self.first(bit)?;
        if c.null() {
            *slot = None;
            return Some(());
        }
        fill(c, slot.insert(T::default()))
    }
}

fn first_choice<'a>(c: &mut Cursor<'a>, out: &mut FirstChoice<'a>) -> Option<()> {
    // Every element is read (a malformed later choice declines, as serde fails); only the
    // first of index 0 is kept.
    let mut later = Choice::default();
    c.array(|c| match &mut out.0 {
        Some(_) => choice(c, &mut later),
        first @ None => {
            let kept = first.insert(Choice::default());
            choice(c, kept)?;
            if kept.index.unwrap_or(0) != 0 {
                *first = None;
            }
            Some(())
        }
    })
}

fn choice<'a>(c: &mut Cursor<'a>, out: &mut Choice<'a>) -> Option<()> {
    let mut seen = Seen::default();
    c.object(|c, key| match key {
        "index" => seen.read(0, c, &mut out.index, Cursor::u32),
        "delta" => seen.fill(1, c, &mut out.delta, delta),
        "finish_reason" => seen.read(2, c, &mut out.finish_reason, Cursor::string),
        _ => c.skip_value(),
    })
}

fn delta<'a>(c: &mut Cursor<'a>, out: &mut Delta<'a>) -> Option<()> {
    let mut seen = Seen::default();
    c.object(|c, key| match key {
        "content" => seen.read(0, c, &mut out.content, |c| c.string().map(Content::Text)),
        "reasoning_content" => seen.read(1, c, &mut out.reasoning_content, Cursor::string),
        "reasoning" => seen.read(2, c, &mut out.reasoning, Cursor::string),
        "refusal" => seen.read(3, c, &mut out.refusal, Cursor::string),
        "tool_calls" => seen.read(4, c, &mut out.tool_calls, |c| {
            let mut calls = Vec::new();
            c.array(|c| {
                calls.push(tool_call(c)?);
                Some(())
            })?;
            Some(calls)
        }),
        // OpenRouter's structured reasoning: serde reads it.
        "reasoning_details" => seen.read(5, c, &mut out.reasoning_details, |_| None),
        _ => c.skip_value(),
    })
}

fn tool_call<'a>(c: &mut Cursor<'a>) -> Option<ToolCallDelta<'a>> {
    let mut out = ToolCallDelta {
        index: None,
        id: None,
        function: None,
    };
    let mut seen = Seen::default();
    c.object(|c, key| match key {
        "index" => seen.read(0, c, &mut out.index, Cursor::u32),
        "id" => seen.read(1, c, &mut out.id, Cursor::string),
        "function" => seen.read(2, c, &mut out.function, function),
        _ => c.skip_value(),
    })?;
    Some(out)
}

fn function<'a>(c: &mut Cursor<'a>) -> Option<FunctionDelta<'a>> {
    let mut out = FunctionDelta {
        name: None,
        arguments: None,
    };
    let mut seen = Seen::default();
    c.object(|c, key| match key {
        "name" => seen.read(0, c, &mut out.name, Cursor::string),
        "arguments" => seen.read(1, c, &mut out.arguments, |c| c.string().map(ArgsFragment)),
        _ => c.skip_value(),
    })?;
    Some(out)
}

/// `null` as `None` (as serde reads an `Option`), else `value`; the outer `None` declines.
fn opt<'a, T>(
    c: &mut Cursor<'a>,
    value: impl FnOnce(&mut Cursor<'a>) -> Option<T>,
) -> Option<Option<T>> {
    if c.null() {
        Some(None)
    } else {
        value(c).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// Fast path declines or agrees with serde on `data`; says which.
    fn agrees(data: &str) -> bool {
        let Some(fast) = chunk(data) else {
            return false;
        };
        let serde: Chunk<'_> = serde_json::from_str(data)
            .unwrap_or_else(|e| panic!("fast path accepted what serde rejects ({e}): {data}"));
        assert_eq!(fast, serde, "{data}");
        true
    }

    /// Every JSON payload line of a stream text (`data: {…}` lines and bare `{…}` lines).
    fn payloads(text: &str) -> Vec<String> {
        text.lines()
            .map(|l| l.strip_prefix("data:").map_or(l, str::trim_start))
            .filter(|l| l.starts_with('{'))
            .map(str::to_owned)
            .collect()
    }

    /// The Chat payloads of the bundled recordings and the vendored provider streams.
    fn corpus() -> &'static [String] {
        static CORPUS: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
        CORPUS.get_or_init(read_corpus)
    }

    fn read_corpus() -> Vec<String> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut out = Vec::new();
        for dir in ["openai-chat", "openai-compatible"] {
            let dir = root.join("tests/fixtures/provider-streams").join(dir);
            for entry in std::fs::read_dir(&dir).unwrap() {
                let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
                out.extend(payloads(&text));
            }
        }
        for entry in std::fs::read_dir(root.join("recordings")).unwrap() {
            let path = entry.unwrap().path();
            if !path.to_string_lossy().ends_with(".openai-chat.jsonl") {
                continue;
            }
            let cassette = crate::cassette::Cassette::load(&path).unwrap();
            for inter in &cassette.interactions {
                let body: Vec<u8> = inter.chunks.iter().flat_map(|c| c.bytes.clone()).collect();
                out.extend(payloads(&String::from_utf8_lossy(&body)));
            }
        }
        out
    }

    #[test]
    fn agrees_with_serde_on_every_bundled_payload() {
        let corpus = corpus();
        let taken = corpus.iter().filter(|p| agrees(p)).count();
        eprintln!("fast path took {taken} of {} payloads", corpus.len());
        // The point of the fast path: it must take the common shape, not decline it.
        assert!(corpus.len() > 300, "{} payloads", corpus.len());
        assert!(
            taken * 10 >= corpus.len() * 8,
            "fast path took only {taken} of {} payloads",
            corpus.len()
        );
    }

    #[test]
    fn common_shapes_are_taken() {
        for data in [
            r#"{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","usage":null,"choices":[{"index":0,"delta":{"role":"assistant","content":"Hi \"you\"\n"},"logprobs":null,"finish_reason":null}]}"#,
            r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"read","arguments":""}}]}}]}"#,
            r#" { "choices" : [ { "delta" : { "content" : "spaced" } } ] } "#,
            r#"{"choices":[{"index":1,"delta":{"content":"other"}},{"index":0,"delta":{"content":"mine"},"finish_reason":"stop"}]}"#,
            r#"{"choices":[{"index":0,"delta":{"content":"first"}},{"delta":{"content":"second"}}]}"#,
            r#"{"choices":[],"x_groq":null,"error":null}"#,
            r#"{"choices":null,"extra":{"a":[1,2.5e-3,-0,true,false,null,"s"]}}"#,
            r#"{"choices":[{"delta":{"reasoning_content":"think","refusal":null,"reasoning_details":null}}]}"#,
            r#"{"choices":[{"delta":{"tool_calls":null,"content":null},"finish_reason":"tool_calls"}]}"#,
        ] {
            assert!(agrees(data), "declined: {data}");
        }
    }

    #[test]
    fn unusual_shapes_are_left_to_serde() {
        for data in [
            r#"{"choices":[],"usage":{"prompt_tokens":1}}"#,
            r#"{"error":{"message":"boom"}}"#,
            r#"{"x_groq":{"usage":{}}}"#,
            r#"{"choices":[{"delta":{"content":[{"type":"text","text":"a"}]}}]}"#,
            r#"{"choices":[{"delta":{"reasoning_details":[{"type":"reasoning.text"}]}}]}"#,
            r#"{"choices":[{"delta":{"tool_calls":[{"function":{"arguments":{"a":1}}}]}}]}"#,
            r#"{"choices":[],"choices":[]}"#,
            r#"{"choices":[],"usage":null,"usage":null}"#,
            r#"{"choices":[{"delta":{"reasoning_details":null,"reasoning_details":null}}]}"#,
            r#"{"choices":[{"index":0,"index":0}]}"#,
            r#"{"choices":[{"delta":{"content":"kept"}},{"index":1,"index":1}]}"#,
            r#"{"choices":[{"index":1},{"delta":{"content":"kept"}},{"delta":5}]}"#,
            r#"{"choices":[{"index":-1}]}"#,
            r#"{"choices":[{"index":1.0}]}"#,
            r#"{"choices":[{"index":4294967296}]}"#,
            r#"{"choices":[null]}"#,
            r#"{"choices":[{"delta":{"content":"a"}}]} trailing"#,
            r#"{"choices":[{"delta":{"content":"\ud800"}}]}"#,
            r#"{"choices":[{"delta":{"content":"raw	tab"}}]}"#,
            r#"{"choices":[{"delta":{"content":"cut"#,
            r#"{"deep":[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]}"#,
            "",
            "[DONE]",
        ] {
            assert!(chunk(data).is_none(), "taken: {data}");
        }
    }

    proptest::proptest! {
        /// Bundled payloads with bytes replaced or inserted from a JSON-heavy alphabet: the
        /// fast path declines or agrees with serde, never accepts what serde rejects.
        #[test]
        fn mutated_payloads_never_disagree(
            pick in 0usize..64,
            edits in proptest::collection::vec(
                (0usize..4096, proptest::sample::select(
                    b"{}[]:,\"\\ 0123456789-.eEnulltruefalse\tu".to_vec()), proptest::bool::ANY),
                1..6,
            ),
        ) {
            let corpus = corpus();
            let mut bytes = corpus[pick % corpus.len()].clone().into_bytes();
            for (at, b, insert) in edits {
                let at = at % (bytes.len() + 1);
                if insert || at == bytes.len() {
                    bytes.insert(at, b);
                } else {
                    bytes[at] = b;
                }
            }
            if let Ok(text) = String::from_utf8(bytes) {
                agrees(&text);
            }
        }
    }
}

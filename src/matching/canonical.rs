//! The canonical form of a request body: volatile top-level fields dropped, dates and local
//! paths in text normalized (`canonical`), and its compact text with sorted keys
//! (`canonical_string`), which every match compares first.

use std::borrow::Cow;
use std::sync::OnceLock;

use serde_json::Value;

pub(super) fn canonical_string(v: &Value) -> String {
    // Compact JSON with every object's keys in sorted order, written straight from `v` (no
    // sorted copy of the tree: this runs on every request `serve` matches).
    fn write(v: &Value, out: &mut Vec<u8>) {
        match v {
            Value::Object(m) => {
                let mut entries: Vec<_> = m.iter().collect();
                entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
                out.push(b'{');
                for (i, (k, v)) in entries.into_iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    scalar(k, out);
                    out.push(b':');
                    write(v, out);
                }
                out.push(b'}');
            }
            Value::Array(a) => {
                out.push(b'[');
                for (i, v) in a.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    write(v, out);
                }
                out.push(b']');
            }
            other => scalar(other, out),
        }
    }
    fn scalar<T: serde::Serialize + ?Sized>(v: &T, out: &mut Vec<u8>) {
        // Writing a string, number, bool or null into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *out, v);
    }
    let mut out = Vec::new();
    write(v, &mut out);
    // serde_json writes valid UTF-8 and the punctuation is ASCII.
    String::from_utf8(out).unwrap_or_default()
}

const VOLATILE_TOP_LEVEL: &[&str] = &[
    "user",
    "metadata",
    "store",
    "prompt_cache_key",
    "safety_identifier",
    "service_tier",
];

/// A request body with volatile fields removed and volatile text normalized (module docs).
pub fn canonical(body: &Value) -> Value {
    let mut out = body.clone();
    canonicalize(&mut out);
    out
}

/// [`canonical`] in place: `serve` owns each request body, so it canonicalizes it without a
/// second copy of the tree.
pub fn canonicalize(body: &mut Value) {
    fn walk(v: &mut Value) {
        match v {
            Value::Object(m) => m.values_mut().for_each(walk),
            Value::Array(a) => a.iter_mut().for_each(walk),
            Value::String(s) => {
                if let Some(n) = normalized(s) {
                    *s = n;
                }
            }
            _ => {}
        }
    }
    walk(body);
    if let Value::Object(m) = body {
        for k in VOLATILE_TOP_LEVEL {
            m.shift_remove(*k);
        }
    }
}

/// `s` with dates and local paths replaced, or `None` when it has neither.
fn normalized(s: &str) -> Option<String> {
    // Both patterns need a digit or a `/`: most strings (roles, tool names, prose) have
    // neither and skip the regex engines.
    if !s.bytes().any(|b| b.is_ascii_digit() || b == b'/') {
        return None;
    }
    static DATE: OnceLock<regex::Regex> = OnceLock::new();
    static PATH: OnceLock<regex::Regex> = OnceLock::new();
    let date = DATE.get_or_init(|| {
        regex::Regex::new(
            r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?",
        )
        .expect("valid date pattern")
    });
    let path = PATH.get_or_init(|| {
        regex::Regex::new(
            r"(?:/home|/Users|/tmp|/private|/var/folders|/root|/work)(?:/[^\s'\x22`]*)?",
        )
        .expect("valid path pattern")
    });
    let dated = date.replace_all(s, "<date>");
    match path.replace_all(&dated, "<path>") {
        Cow::Owned(both) => Some(both),
        Cow::Borrowed(_) => match dated {
            Cow::Owned(d) => Some(d),
            Cow::Borrowed(_) => None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn normalize_text(s: &str) -> String {
        normalized(s).unwrap_or_else(|| s.to_string())
    }

    #[test]
    fn volatile_text_is_normalized_and_other_text_kept() {
        for (text, want) in [
            ("today is 2026-12-05, 10:00", "today is <date>, 10:00"),
            ("at 2026-12-05T10:00:00.123Z", "at <date>"),
            ("edit /work/app/src/main.rs now", "edit <path> now"),
            ("see /Users/ann/x and /tmp", "see <path> and <path>"),
            ("read_file", "read_file"),
            ("a/b 12 but no date", "a/b 12 but no date"),
            ("", ""),
            (
                "plain prose, with unicode: café",
                "plain prose, with unicode: café",
            ),
        ] {
            assert_eq!(normalize_text(text), want, "{text:?}");
        }
    }

    #[test]
    fn canonical_text_is_compact_json_with_sorted_keys() {
        let v = json!({"b": [3, {"z": null, "a": "é\"\n"}], "a": 1.5, "": true, "A": {}});
        assert_eq!(
            canonical_string(&v),
            r#"{"":true,"A":{},"a":1.5,"b":[3,{"a":"é\"\n","z":null}]}"#
        );
        assert_eq!(canonical_string(&json!([])), "[]");
        assert_eq!(canonical_string(&json!("x")), r#""x""#);
        // Key order does not change the text.
        assert_eq!(
            canonical_string(&json!({"x": 1, "y": [2]})),
            canonical_string(&json!({"y": [2], "x": 1}))
        );
    }

    #[test]
    fn canonical_drops_volatile_fields_and_keeps_order_and_the_rest() {
        let body = json!({
            "model": "m",
            "user": "u-1",
            "metadata": {"run": 7},
            "messages": [{"role": "user", "content": "on 2026-12-05 open /tmp/x.txt"}],
            "n": 2,
            "a/b 12": null,
        });
        let c = canonical(&body);
        assert_eq!(
            serde_json::to_string(&c).unwrap(),
            r#"{"model":"m","messages":[{"role":"user","content":"on <date> open <path>"}],"n":2,"a/b 12":null}"#
        );
        // Strings that need no change are left as they were, and the input is untouched.
        assert_eq!(body["user"], "u-1");
        assert_eq!(normalized("a/b 12 but no date"), None);
        assert_eq!(normalized("read_file"), None);
    }
}

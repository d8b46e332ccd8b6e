//! The two argument serializations the detectors compare.
//!
//! - [`js_stringify`]: JavaScript's `JSON.stringify`, which opencode's doom-loop check compares
//!   byte for byte (reference §2.1). Key order is insertion order (serde_json's
//!   `preserve_order` keeps it), except that integer-like keys (array indices) are hoisted first
//!   in ascending numeric order, as JS objects do. Numbers use JS `Number#toString`.
//! - [`canonical`]: sorted keys, compact separators: the seeds' `json.dumps(sort_keys=True)`
//!   compared as parsed values, so whitespace and key order do not matter.

use serde_json::{Map, Number, Value};
use std::fmt::Write;

/// `JSON.stringify(value)` as JavaScript computes it for a value produced by `JSON.parse`.
pub fn js_stringify(value: &Value) -> String {
    let mut out = String::new();
    write(value, KeyOrder::Js, &mut out);
    out
}

/// Sorted-key, compact JSON: equal for any two parses of the same data.
pub fn canonical(value: &Value) -> String {
    let mut out = String::new();
    write(value, KeyOrder::Sorted, &mut out);
    out
}

/// How object keys are ordered when writing.
#[derive(Clone, Copy)]
enum KeyOrder {
    /// JavaScript own-property order ([`js_key_order`]).
    Js,
    /// Sorted by key.
    Sorted,
}

/// Compact JSON with JS number and string formatting; `order` decides only the key order.
fn write(value: &Value, order: KeyOrder, out: &mut String) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&js_number(n)),
        Value::String(s) => write_js_string(s, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write(item, order, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let entries = match order {
                KeyOrder::Js => js_key_order(map),
                KeyOrder::Sorted => {
                    let mut entries: Vec<(&String, &Value)> = map.iter().collect();
                    entries.sort_by_key(|(k, _)| *k);
                    entries
                }
            };
            out.push('{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_js_string(k, out);
                out.push(':');
                write(v, order, out);
            }
            out.push('}');
        }
    }
}

/// An array index in the ECMAScript sense: canonical decimal, below 2³² − 1.
fn array_index(key: &str) -> Option<u32> {
    if key.is_empty() || key.len() > 10 || !key.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if key.len() > 1 && key.starts_with('0') {
        return None;
    }
    let n: u64 = key.parse().ok()?;
    (n < u32::MAX as u64).then_some(n as u32)
}

/// JS own-property order: integer keys ascending, then string keys in insertion order.
fn js_key_order(map: &Map<String, Value>) -> Vec<(&String, &Value)> {
    let mut ints: Vec<(u32, &String, &Value)> = Vec::new();
    let mut rest: Vec<(&String, &Value)> = Vec::new();
    for (k, v) in map {
        match array_index(k) {
            Some(i) => ints.push((i, k, v)),
            None => rest.push((k, v)),
        }
    }
    ints.sort_by_key(|(i, _, _)| *i);
    ints.into_iter()
        .map(|(_, k, v)| (k, v))
        .chain(rest)
        .collect()
}

/// JSON.stringify's string quoting: `"`, `\`, the short escapes, other C0 controls as
/// `\u00xx`; everything else (including `/` and non-ASCII) verbatim.
fn write_js_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// JS `Number#toString` of a parsed JSON number. Integers beyond 2⁵³ go through `f64` first,
/// as `JSON.parse` would.
fn js_number(n: &Number) -> String {
    if let Some(i) = n.as_i64() {
        if i.unsigned_abs() <= 1 << 53 {
            return i.to_string();
        }
    } else if let Some(u) = n.as_u64() {
        if u <= 1 << 53 {
            return u.to_string();
        }
    }
    js_f64(n.as_f64().unwrap_or(0.0))
}

/// ECMAScript Number::toString(10) for a finite double.
pub fn js_f64(x: f64) -> String {
    if !x.is_finite() {
        // JSON.stringify writes NaN and ±Infinity as null; parsed JSON never holds them.
        return "null".to_string();
    }
    if x == 0.0 {
        return "0".to_string();
    }
    let sign = if x < 0.0 { "-" } else { "" };
    // Rust's `{:e}` gives the shortest round-trip digits, like JS: "1.2345e-7".
    let sci = format!("{:e}", x.abs());
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let e: i32 = exp.parse().unwrap_or(0);
    let k = digits.len() as i32;
    let n = e + 1; // position of the decimal point relative to the digits
    let body = if k <= n && n <= 21 {
        format!("{digits}{}", "0".repeat((n - k) as usize))
    } else if 0 < n && n <= 21 {
        format!("{}.{}", &digits[..n as usize], &digits[n as usize..])
    } else if -6 < n && n <= 0 {
        format!("0.{}{digits}", "0".repeat((-n) as usize))
    } else {
        let exp_sign = if n > 0 { "+" } else { "-" };
        let first = &digits[..1];
        let rest = &digits[1..];
        if rest.is_empty() {
            format!("{first}e{exp_sign}{}", (n - 1).abs())
        } else {
            format!("{first}.{rest}e{exp_sign}{}", (n - 1).abs())
        }
    };
    format!("{sign}{body}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Value {
        serde_json::from_str(s).unwrap()
    }

    #[test]
    fn stringify_matches_javascript() {
        let cases = [
            // insertion order kept, whitespace dropped
            (
                r#"{ "b": 1, "a": [1, 2, {"z": null, "y": true}] }"#,
                r#"{"b":1,"a":[1,2,{"z":null,"y":true}]}"#,
            ),
            // integer-like keys hoisted in ascending order; "01" and "-1" are not indices
            (
                r#"{"b":1,"10":2,"2":3,"01":4,"-1":5,"a":6}"#,
                r#"{"2":3,"10":2,"b":1,"01":4,"-1":5,"a":6}"#,
            ),
            (
                r#"{"4294967295":1,"4294967294":2}"#,
                r#"{"4294967294":2,"4294967295":1}"#,
            ),
            // numbers
            (
                "[1.0, -0.0, 1.5, 100, 1e21, 1e20, 1.5e-7, 0.000001, 123456789012345678901234]",
                "[1,0,1.5,100,1e+21,100000000000000000000,1.5e-7,0.000001,1.2345678901234569e+23]",
            ),
            ("[9007199254740993]", "[9007199254740992]"),
            // string escapes
            (
                r#"["a\"b\\c\n\t\u0001/é\u001f\u007f"]"#,
                "[\"a\\\"b\\\\c\\n\\t\\u0001/é\\u001f\u{7f}\"]",
            ),
        ];
        for (input, want) in cases {
            assert_eq!(js_stringify(&parse(input)), want, "input {input}");
        }
    }

    #[test]
    fn js_numbers() {
        for (x, want) in [
            (0.1, "0.1"),
            (123.456, "123.456"),
            (-2.5, "-2.5"),
            (1e-6, "0.000001"),
            (1e-7, "1e-7"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
            (5e-324, "5e-324"),
            (f64::NAN, "null"),
        ] {
            assert_eq!(js_f64(x), want);
        }
    }

    #[test]
    fn canonical_ignores_key_order_and_whitespace() {
        let a = parse(r#"{"path":"a.rs","opts":{"x":1,"y":[2,3]}}"#);
        let b = parse(r#"{ "opts" : { "y" : [2, 3], "x" : 1 }, "path" : "a.rs" }"#);
        assert_eq!(canonical(&a), canonical(&b));
        assert_ne!(js_stringify(&a), js_stringify(&b));
        assert_eq!(canonical(&a), r#"{"opts":{"x":1,"y":[2,3]},"path":"a.rs"}"#);
    }
}

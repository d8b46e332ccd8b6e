//! A recorded request body, parsed only when something looks at it.
//!
//! Replay in the default sequence mode never reads request bodies, and building a
//! `serde_json::Value` (ordered maps, one allocation per string) was a sixth of a replay's
//! cost. The reader keeps the body's JSON text; the first dereference parses it once.

use std::fmt;
use std::sync::OnceLock;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;
use serde_json::Value;

/// A JSON request body: the recorded text, or a value built in code, parsed lazily.
/// Dereferences to the parsed [`Value`]; compares and prints as that value.
pub struct RequestBody {
    raw: Option<Box<RawValue>>,
    parsed: OnceLock<Value>,
}

impl RequestBody {
    /// A body from recorded JSON text (already validated by the parser that produced it).
    pub fn from_raw(raw: Box<RawValue>) -> Self {
        RequestBody {
            raw: Some(raw),
            parsed: OnceLock::new(),
        }
    }

    /// The parsed body.
    pub fn value(&self) -> &Value {
        self.parsed.get_or_init(|| match &self.raw {
            // The text came out of a JSON parser, so it parses; a number serde_json cannot
            // represent would be the only failure, and reads as null.
            Some(raw) => serde_json::from_str(raw.get()).unwrap_or(Value::Null),
            None => Value::Null,
        })
    }

    /// The parsed body without keeping the parse when it was not parsed yet: for a caller
    /// that reads it once and keeps something else (`serve` prepares every recorded request
    /// for matching, and holding each parse too would double that memory).
    pub fn parsed_once(&self) -> std::borrow::Cow<'_, Value> {
        match (self.parsed.get(), &self.raw) {
            (Some(v), _) => std::borrow::Cow::Borrowed(v),
            (None, Some(raw)) => {
                std::borrow::Cow::Owned(serde_json::from_str(raw.get()).unwrap_or(Value::Null))
            }
            (None, None) => std::borrow::Cow::Owned(Value::Null),
        }
    }

    /// The parsed body, owned.
    pub fn into_value(self) -> Value {
        self.value();
        self.parsed.into_inner().unwrap_or(Value::Null)
    }
}

impl Default for RequestBody {
    fn default() -> Self {
        Value::Null.into()
    }
}

impl From<Value> for RequestBody {
    fn from(v: Value) -> Self {
        let parsed = OnceLock::new();
        let _ = parsed.set(v);
        RequestBody { raw: None, parsed }
    }
}

impl std::ops::Deref for RequestBody {
    type Target = Value;
    fn deref(&self) -> &Value {
        self.value()
    }
}

impl std::ops::DerefMut for RequestBody {
    /// Editing the body drops the recorded text: from then on it is the edited value.
    fn deref_mut(&mut self) -> &mut Value {
        self.value();
        self.raw = None;
        self.parsed.get_mut().expect("value() initialized it")
    }
}

impl Clone for RequestBody {
    fn clone(&self) -> Self {
        match (&self.raw, self.parsed.get()) {
            (_, Some(v)) => v.clone().into(),
            (Some(raw), None) => RequestBody::from_raw(raw.clone()),
            (None, None) => RequestBody::default(),
        }
    }
}

impl PartialEq for RequestBody {
    fn eq(&self, other: &Self) -> bool {
        self.value() == other.value()
    }
}

impl PartialEq<Value> for RequestBody {
    fn eq(&self, other: &Value) -> bool {
        self.value() == other
    }
}

impl fmt::Debug for RequestBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.value(), f)
    }
}

impl fmt::Display for RequestBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.raw, self.parsed.get()) {
            (Some(raw), None) => f.write_str(raw.get()),
            _ => fmt::Display::fmt(self.value(), f),
        }
    }
}

impl Serialize for RequestBody {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.value().serialize(s)
    }
}

impl<'de> Deserialize<'de> for RequestBody {
    /// Through any deserializer (including serde's buffered tagged-enum path, which cannot
    /// produce a `RawValue`): parse as a value. The cassette reader's fast path keeps the raw
    /// text instead.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Value::deserialize(d).map(Into::into)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parsed_once_does_not_keep_the_parse() {
        let raw = RawValue::from_string(r#"{"a":[1,2]}"#.into()).unwrap();
        let lazy = RequestBody::from_raw(raw);
        assert_eq!(*lazy.parsed_once(), json!({"a": [1, 2]}));
        assert!(lazy.parsed.get().is_none(), "not cached");
        lazy.value();
        assert!(matches!(lazy.parsed_once(), std::borrow::Cow::Borrowed(_)));
        assert_eq!(*RequestBody::default().parsed_once(), Value::Null);
    }

    #[test]
    fn raw_bodies_parse_on_first_use_and_compare_as_values() {
        let raw =
            RawValue::from_string(r#"{"model":"m","messages":[{"role":"user"}]}"#.into()).unwrap();
        let lazy = RequestBody::from_raw(raw);
        assert_eq!(
            lazy.to_string(),
            r#"{"model":"m","messages":[{"role":"user"}]}"#
        );
        let built: RequestBody = json!({"messages": [{"role": "user"}], "model": "m"}).into();
        assert_eq!(lazy, built);
        assert_eq!(lazy["model"], "m");
        assert_eq!(lazy.clone(), built.clone());
        assert_eq!(serde_json::to_value(&lazy).unwrap(), *built);
        assert_eq!(RequestBody::default(), Value::Null);
        let mut edited = lazy.clone();
        edited["model"] = json!("n");
        assert_eq!(
            edited.to_string(),
            r#"{"model":"n","messages":[{"role":"user"}]}"#
        );
        assert_ne!(edited, lazy);
    }
}

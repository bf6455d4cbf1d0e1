//! Finding a message's `attachments[]` entries inside its JSON text and
//! splicing rewritten entries back in, leaving every other byte untouched.
//!
//! Re-serialising a parsed `Value` would change number formatting (`1.0`,
//! `1e3`, integers beyond `u64`), escapes and whitespace, so instead the text
//! is parsed into borrowed [`RawValue`] slices and only the spans of the
//! entries that carried `data` are replaced.

use std::borrow::Cow;
use std::fmt;
use std::ops::Range;

use airlock_core::NameHints;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

/// One field of a JSON object: key (unescaped) and raw value text.
pub(crate) type Field<'a> = (String, &'a RawValue);

/// One entry of the `attachments` array, with its byte span in the message.
#[derive(Debug)]
pub(crate) struct ArrayEntry<'a> {
    /// Position in the array.
    pub index: usize,
    /// Byte range of the entry's text within the whole message.
    pub span: Range<usize>,
    /// The entry's fields in order, when it is an object.
    pub fields: Option<Vec<Field<'a>>>,
}

impl<'a> ArrayEntry<'a> {
    /// The last value of `key` (JSON.parse semantics for duplicate keys).
    pub fn field(&self, key: &str) -> Option<&'a RawValue> {
        self.fields
            .as_ref()?
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| *v)
    }

    /// The last value of `key` when it is a JSON string.
    pub fn str_field(&self, key: &str) -> Option<String> {
        serde_json::from_str::<String>(self.field(key)?.get()).ok()
    }

    /// The `data` field's string contents, when the entry has a string `data`.
    /// Borrowed straight from the message unless it contains escapes.
    pub fn data(&self) -> Option<Cow<'a, [u8]>> {
        let text = self.field("data")?.get();
        let inner = text.strip_prefix('"')?.strip_suffix('"')?;
        if inner.contains('\\') {
            serde_json::from_str::<String>(text)
                .ok()
                .map(|s| Cow::Owned(s.into_bytes()))
        } else {
            Some(Cow::Borrowed(inner.as_bytes()))
        }
    }

    /// Whether this entry is one airlock extracts: an object with string `data`.
    pub fn carries_data(&self) -> bool {
        self.field("data").is_some_and(|v| v.get().starts_with('"'))
    }
}

/// The owned name hints of an entry.
#[derive(Debug, Default)]
pub(crate) struct OwnedHints {
    name: Option<String>,
    mime_type: Option<String>,
    kind: Option<String>,
}

impl OwnedHints {
    /// Reads `name`, `mimeType` and `type` from `entry`.
    pub fn of(entry: &ArrayEntry<'_>) -> Self {
        Self {
            name: entry.str_field("name"),
            mime_type: entry.str_field("mimeType"),
            kind: entry.str_field("type"),
        }
    }

    /// Borrowed view for [`airlock_core::AttachmentName::derive`].
    pub fn hints(&self) -> NameHints<'_> {
        NameHints {
            name: self.name.as_deref(),
            mime_type: self.mime_type.as_deref(),
            kind: self.kind.as_deref(),
        }
    }
}

/// The entries of the last top-level `attachments` array of `raw`, or `None`
/// when `raw` is not a JSON object or has no `attachments` array.
pub(crate) fn attachment_entries(raw: &str) -> Option<Vec<ArrayEntry<'_>>> {
    let top = parse_object(raw)?;
    let (_, array) = top.iter().rev().find(|(k, _)| k == "attachments")?;
    let items: Vec<&RawValue> = serde_json::from_str(array.get()).ok()?;
    let base = raw.as_ptr() as usize;
    Some(
        items
            .into_iter()
            .enumerate()
            .map(|(index, item)| {
                let text = item.get();
                let start = text.as_ptr() as usize - base;
                ArrayEntry {
                    index,
                    span: start..start + text.len(),
                    fields: parse_object(text),
                }
            })
            .collect(),
    )
}

/// Parses `text` as one JSON object into its fields, in order, duplicates kept.
fn parse_object(text: &str) -> Option<Vec<Field<'_>>> {
    let mut de = serde_json::Deserializer::from_str(text);
    let fields = de.deserialize_map(FieldsVisitor).ok()?;
    de.end().ok()?;
    Some(fields)
}

struct FieldsVisitor;

impl<'de> Visitor<'de> for FieldsVisitor {
    type Value = Vec<Field<'de>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut fields = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            let value: &'de RawValue = map.next_value()?;
            fields.push((key, value));
        }
        Ok(fields)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Err(E::custom("not an object"))
    }
}

/// What to write into a rewritten entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Rewrite {
    /// The file was written: set `name` and `localPath`.
    Written {
        /// Final file name.
        name: String,
        /// `inbox/<message_id>/<name>`.
        local_path: String,
    },
    /// Nothing was written: set `error`.
    Failed {
        /// Why.
        error: String,
    },
}

/// The entry's text with `data` removed and the outcome's fields set. Keys
/// keep their order; a set field replaces the first occurrence of its key
/// (later duplicates are dropped) or is appended when absent.
pub(crate) fn rewrite_entry(fields: &[Field<'_>], rewrite: &Rewrite) -> String {
    let sets: Vec<(&str, &str)> = match rewrite {
        Rewrite::Written { name, local_path } => vec![("name", name), ("localPath", local_path)],
        Rewrite::Failed { error } => vec![("error", error)],
    };
    let mut done = vec![false; sets.len()];
    let mut out = String::from("{");
    let push = |out: &mut String, key: &str, value: &str| {
        if out.len() > 1 {
            out.push(',');
        }
        out.push_str(&json_string(key));
        out.push(':');
        out.push_str(value);
    };
    for (key, value) in fields {
        if key == "data" {
            continue;
        }
        match sets.iter().position(|(k, _)| k == key) {
            Some(i) if done[i] => {}
            Some(i) => {
                done[i] = true;
                push(&mut out, key, &json_string(sets[i].1));
            }
            None => push(&mut out, key, value.get()),
        }
    }
    for (i, (key, value)) in sets.iter().enumerate() {
        if !done[i] {
            push(&mut out, key, &json_string(value));
        }
    }
    out.push('}');
    out
}

fn json_string(s: &str) -> String {
    serde_json::to_string(s).expect("a string always serialises")
}

/// `raw` with each span replaced by its text; spans must be sorted and disjoint.
pub(crate) fn splice(raw: &str, replacements: &[(Range<usize>, String)]) -> String {
    let removed: usize = replacements.iter().map(|(r, _)| r.len()).sum();
    let added: usize = replacements.iter().map(|(_, s)| s.len()).sum();
    let mut out = String::with_capacity(raw.len() - removed + added);
    let mut at = 0;
    for (range, text) in replacements {
        out.push_str(&raw[at..range.start]);
        out.push_str(text);
        at = range.end;
    }
    out.push_str(&raw[at..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_entries_and_their_spans() {
        let raw = r#"{"text":"hi", "attachments" : [ {"data":"QQ==","name":"a"}, 5, {"x":1} ]}"#;
        let entries = attachment_entries(raw).unwrap();
        assert_eq!(entries.len(), 3);
        assert_eq!(
            &raw[entries[0].span.clone()],
            r#"{"data":"QQ==","name":"a"}"#
        );
        assert!(entries[0].carries_data());
        assert_eq!(entries[0].data().unwrap().as_ref(), b"QQ==");
        assert_eq!(&raw[entries[1].span.clone()], "5");
        assert!(entries[1].fields.is_none());
        assert!(!entries[2].carries_data());
    }

    #[test]
    fn non_objects_and_missing_arrays_give_none() {
        for raw in [
            "",
            "[]",
            "\"x\"",
            "{\"a\":1",
            "{} x",
            "{\"attachments\":{}}",
            "{\"b\":[]}",
        ] {
            assert!(attachment_entries(raw).is_none(), "{raw}");
        }
    }

    #[test]
    fn escaped_data_is_unescaped() {
        let raw = r#"{"attachments":[{"data":"QQ\u003d\u003d\/+"}]}"#;
        let entries = attachment_entries(raw).unwrap();
        assert_eq!(entries[0].data().unwrap().as_ref(), b"QQ==/+");
    }

    #[test]
    fn rewrite_keeps_order_and_raw_values() {
        let raw = r#"{"attachments":[{"size":1.0,"data":"QQ==","big":123456789012345678901234567890,"name":"x","name":"y","e":1e3}]}"#;
        let entries = attachment_entries(raw).unwrap();
        let fields = entries[0].fields.as_ref().unwrap();
        let written = rewrite_entry(
            fields,
            &Rewrite::Written {
                name: "a.png".into(),
                local_path: "inbox/m/a.png".into(),
            },
        );
        assert_eq!(
            written,
            r#"{"size":1.0,"big":123456789012345678901234567890,"name":"a.png","e":1e3,"localPath":"inbox/m/a.png"}"#
        );
        let failed = rewrite_entry(
            fields,
            &Rewrite::Failed {
                error: "bad \"x\"".into(),
            },
        );
        assert_eq!(
            failed,
            r#"{"size":1.0,"big":123456789012345678901234567890,"name":"x","name":"y","e":1e3,"error":"bad \"x\""}"#
        );
    }
}

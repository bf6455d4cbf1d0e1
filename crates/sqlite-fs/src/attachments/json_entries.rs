//! Finding a message's `attachments[]` entries inside its JSON text and
//! splicing rewritten entries back in, leaving every other byte untouched.
//!
//! Re-serialising a parsed `Value` would change number formatting (`1.0`,
//! `1e3`, integers beyond `u64`), escapes and whitespace, so instead the text
//! is parsed into borrowed [`RawValue`] slices and only the spans of the
//! entries that carried `data` are replaced.
//!
//! The message is scanned once: a megabyte of base64 in `data` is the bulk
//! of it, and every extra pass over it costs as much as decoding it. The
//! entries' fields are read in that one pass; an entry's span is recovered
//! from where its first and last values lie.

use std::borrow::Cow;
use std::fmt;
use std::ops::Range;

use airlock_core::NameHints;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

/// One field of a JSON object: key (unescaped) and raw value text.
pub(crate) type Field<'a> = (String, &'a RawValue);

/// One entry of the `attachments` array, with its byte span in the message.
#[derive(Debug)]
pub(crate) struct ArrayEntry<'a> {
    /// Position in the array.
    pub index: usize,
    /// Byte range of the entry's text within the whole message, for an
    /// object with at least one field (the only entries ever rewritten).
    pub span: Option<Range<usize>>,
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
    let mut de = serde_json::Deserializer::from_str(raw);
    let found = de.deserialize_map(TopVisitor).ok()?;
    de.end().ok()?;
    let base = raw.as_ptr() as usize;
    let items = found?;
    Some(
        items
            .into_iter()
            .enumerate()
            .map(|(index, fields)| ArrayEntry {
                index,
                span: fields.as_deref().and_then(|f| object_span(raw, base, f)),
                fields,
            })
            .collect(),
    )
}

/// The span of the object whose fields are `fields` (non-empty), found by
/// walking out from its first and last values to its braces.
fn object_span(raw: &str, base: usize, fields: &[Field<'_>]) -> Option<Range<usize>> {
    let bytes = raw.as_bytes();
    let first = fields.first()?.1.get();
    let last = fields.last()?.1.get();
    let value_start = first.as_ptr() as usize - base;
    let value_end = last.as_ptr() as usize - base + last.len();
    // Backwards: `{ "key" :` before the first value.
    let colon = skip_space_back(bytes, value_start)?;
    (bytes[colon] == b':').then_some(())?;
    let close_quote = skip_space_back(bytes, colon)?;
    (bytes[close_quote] == b'"').then_some(())?;
    let open_quote = opening_quote(bytes, close_quote)?;
    let brace = skip_space_back(bytes, open_quote)?;
    (bytes[brace] == b'{').then_some(())?;
    // Forwards: `}` after the last value.
    let end = value_end + bytes[value_end..].iter().position(|b| !is_json_space(*b))?;
    (bytes[end] == b'}').then_some(brace..end + 1)
}

fn is_json_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

/// The last non-space byte before `at`.
fn skip_space_back(bytes: &[u8], at: usize) -> Option<usize> {
    bytes[..at].iter().rposition(|b| !is_json_space(*b))
}

/// The quote that opens the string closed at `close`: the nearest quote
/// before it that is not escaped (preceded by an even run of backslashes).
fn opening_quote(bytes: &[u8], close: usize) -> Option<usize> {
    let mut at = close;
    loop {
        at = bytes[..at].iter().rposition(|b| *b == b'"')?;
        let backslashes = bytes[..at]
            .iter()
            .rev()
            .take_while(|b| **b == b'\\')
            .count();
        if backslashes % 2 == 0 {
            return Some(at);
        }
    }
}

/// Fields of each entry of an array, `None` for entries that are not objects.
type Items<'a> = Vec<Option<Vec<Field<'a>>>>;

/// The top-level object: the last `attachments` value, read as entries
/// when it is an array; every other value is only validated.
struct TopVisitor;

impl<'de> Visitor<'de> for TopVisitor {
    type Value = Option<Items<'de>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut found = None;
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            if key == "attachments" {
                found = map.next_value_seed(ArraySeed)?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(found)
    }
}

/// A value that should be an array of entries.
struct ArraySeed;

impl<'de> DeserializeSeed<'de> for ArraySeed {
    type Value = Option<Items<'de>>;

    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<Self::Value, D::Error> {
        de.deserialize_any(ArrayVisitor)
    }
}

struct ArrayVisitor;

impl<'de> Visitor<'de> for ArrayVisitor {
    type Value = Option<Items<'de>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(EntrySeed)? {
            items.push(item);
        }
        Ok(Some(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        IgnoredAny.visit_map(map).map(|_| None)
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
}

/// One array entry: its fields when it is an object.
struct EntrySeed;

impl<'de> DeserializeSeed<'de> for EntrySeed {
    type Value = Option<Vec<Field<'de>>>;

    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<Self::Value, D::Error> {
        de.deserialize_any(EntryVisitor)
    }
}

struct EntryVisitor;

impl<'de> Visitor<'de> for EntryVisitor {
    type Value = Option<Vec<Field<'de>>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        FieldsVisitor.visit_map(map).map(Some)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        IgnoredAny.visit_seq(seq).map(|_| None)
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
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
            &raw[entries[0].span.clone().unwrap()],
            r#"{"data":"QQ==","name":"a"}"#
        );
        assert!(entries[0].carries_data());
        assert_eq!(entries[0].data().unwrap().as_ref(), b"QQ==");
        // Entries that are not objects are never rewritten: no span.
        assert!(entries[1].span.is_none());
        assert!(entries[1].fields.is_none());
        assert!(!entries[2].carries_data());
    }

    /// Spans recovered from the fields are the entries' exact text, with
    /// escaped keys, odd whitespace and nested values around them.
    #[test]
    fn spans_match_the_parsers_own() {
        let array = r#"[ {"a\"b" : 1 } ,{"k\\":"v\"}"}, 7, "s,}", [ {"x":1} ],
            {  "n" :{"d":[1,{"e":"}"}]}	,"m":null
            }, {}, {"\u0022":"\\"} ]"#;
        let raw = format!(r#"{{"attachments":{array}}}"#);
        let entries = attachment_entries(&raw).unwrap();
        let expected: Vec<&RawValue> = serde_json::from_str(array).unwrap();
        assert_eq!(entries.len(), expected.len());
        for (entry, value) in entries.iter().zip(&expected) {
            match &entry.span {
                Some(span) => assert_eq!(&raw[span.clone()], value.get()),
                None => assert!(entry.fields.as_ref().is_none_or(Vec::is_empty)),
            }
        }
        assert_eq!(entries.iter().filter(|e| e.span.is_some()).count(), 4);
    }

    #[test]
    fn the_last_attachments_key_wins() {
        let raw = r#"{"attachments":[{"data":"QQ=="}],"attachments":5}"#;
        assert!(attachment_entries(raw).is_none());
        let raw = r#"{"attachments":5,"attachments":[{"data":"QQ=="}]}"#;
        assert!(attachment_entries(raw).unwrap()[0].carries_data());
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

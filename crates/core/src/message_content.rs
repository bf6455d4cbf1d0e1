//! The JSON conventions of message content that both sides of the mailbox
//! share: the `"files"` a guest declares, and the host's question responses.
//!
//! They live here once so that the writer of a convention and its reader
//! cannot drift apart.

use serde_json::{Value, json};

use crate::error::{Error, Result};

/// The key of a guest message's content that lists its outbox file names.
pub const FILES_KEY: &str = "files";

/// The file names a message's content declares under [`FILES_KEY`].
///
/// The content is the guest's (untrusted): anything that is not a JSON object
/// with an array of strings there declares no files; non-string entries are
/// skipped. The names are not validated here; readers of the outbox refuse
/// unsafe ones.
pub fn declared_files(content: &str) -> Vec<String> {
    let Ok(Value::Object(map)) = serde_json::from_str::<Value>(content) else {
        return Vec::new();
    };
    match map.get(FILES_KEY) {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    }
}

/// `content` with `names` declared under [`FILES_KEY`] (content unchanged
/// when `names` is empty).
///
/// Content that carries files must be a JSON object; anything else is
/// [`Error::InvalidInput`], because the host could not find the files.
pub fn with_declared_files(content: &str, names: &[String]) -> Result<String> {
    if names.is_empty() {
        return Ok(content.to_owned());
    }
    let mut value: Value = serde_json::from_str(content)
        .map_err(|e| Error::InvalidInput(format!("content with files must be JSON: {e}")))?;
    let Value::Object(map) = &mut value else {
        return Err(Error::InvalidInput(
            "content with files must be a JSON object".into(),
        ));
    };
    map.insert(FILES_KEY.to_owned(), json!(names));
    Ok(value.to_string())
}

/// The content of a `system` message answering question `request_id`.
pub fn system_response_content(request_id: &str, status: &str, result: Value) -> String {
    json!({
        "type": "question_response",
        "questionId": request_id,
        "status": status,
        "result": result,
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declared_files_round_trip() {
        let names = vec!["a.png".to_owned(), "b.txt".to_owned()];
        let content = with_declared_files(r#"{"text":"hi"}"#, &names).unwrap();
        assert_eq!(declared_files(&content), names);
        assert!(content.contains(r#""text":"hi""#));
    }

    #[test]
    fn untrusted_content_declares_only_string_names() {
        assert!(declared_files("not json").is_empty());
        assert!(declared_files(r#"["files"]"#).is_empty());
        assert!(declared_files(r#"{"files":"a.png"}"#).is_empty());
        assert_eq!(declared_files(r#"{"files":["a",1,null,"b"]}"#), ["a", "b"]);
    }

    #[test]
    fn files_need_a_json_object() {
        let names = vec!["a".to_owned()];
        assert!(matches!(
            with_declared_files("plain text", &names),
            Err(Error::InvalidInput(_))
        ));
        assert!(matches!(
            with_declared_files("[1]", &names),
            Err(Error::InvalidInput(_))
        ));
        assert_eq!(
            with_declared_files("plain text", &[]).unwrap(),
            "plain text"
        );
    }

    #[test]
    fn system_response_shape() {
        let v: Value =
            serde_json::from_str(&system_response_content("q1", "ok", json!({"a": 1}))).unwrap();
        assert_eq!(
            v,
            json!({"type":"question_response","questionId":"q1","status":"ok","result":{"a":1}})
        );
    }
}

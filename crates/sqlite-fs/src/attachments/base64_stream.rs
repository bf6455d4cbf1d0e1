//! Base64 validation and chunked decoding, so a 64 MiB attachment is never
//! held decoded in memory next to its base64 text.
//!
//! Accepted like the reference's `Buffer.from(data, "base64")` in the ways
//! bridges rely on: standard or URL-safe alphabet, padding optional, ASCII
//! whitespace (line-wrapped base64) ignored. Unlike it, any other byte, data
//! after padding or a truncated final group is an error, not silently skipped.

use base64::Engine;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

/// Base64 characters decoded per chunk (a multiple of 4, so chunks never
/// split a group): 64 KiB in, 48 KiB out.
const CHUNK_CHARS: usize = 64 * 1024;

const ENGINE: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::RequireNone)
        .with_decode_allow_trailing_bits(true),
);

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

fn is_alphabet(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'-' | b'_')
}

/// Checks `text` without decoding it and returns the decoded length.
pub(crate) fn decoded_len(text: &[u8]) -> Result<u64, String> {
    let mut chars: u64 = 0;
    let mut padding: u64 = 0;
    for (offset, &b) in text.iter().enumerate() {
        if is_space(b) {
            continue;
        }
        if b == b'=' {
            padding += 1;
            if padding > 2 {
                return Err(format!(
                    "invalid base64: too much padding at offset {offset}"
                ));
            }
        } else if is_alphabet(b) {
            if padding > 0 {
                return Err(format!(
                    "invalid base64: data after padding at offset {offset}"
                ));
            }
            chars += 1;
        } else {
            return Err(format!("invalid base64: byte 0x{b:02x} at offset {offset}"));
        }
    }
    let tail = chars % 4;
    if tail == 1 {
        return Err("invalid base64: truncated final group".into());
    }
    if padding > 0 && !(chars + padding).is_multiple_of(4) {
        return Err("invalid base64: wrong amount of padding".into());
    }
    Ok(chars / 4 * 3 + [0, 0, 1, 2][tail as usize])
}

/// Why chunked decoding stopped.
#[derive(Debug)]
pub(crate) enum DecodeStop<E> {
    /// The text is not base64 (only reachable if [`decoded_len`] was skipped).
    Invalid(String),
    /// The sink failed.
    Sink(E),
}

/// Decodes `text` (checked by [`decoded_len`]) in chunks, handing each
/// decoded chunk to `sink`.
pub(crate) fn decode_chunks<E>(
    text: &[u8],
    mut sink: impl FnMut(&[u8]) -> Result<(), E>,
) -> Result<(), DecodeStop<E>> {
    let mut chars = Vec::with_capacity(CHUNK_CHARS);
    let mut out = vec![0u8; CHUNK_CHARS / 4 * 3];
    let mut flush = |chars: &mut Vec<u8>| -> Result<(), DecodeStop<E>> {
        let n = ENGINE
            .decode_slice(&chars[..], &mut out)
            .map_err(|e| DecodeStop::Invalid(format!("invalid base64: {e}")))?;
        chars.clear();
        sink(&out[..n]).map_err(DecodeStop::Sink)
    };
    for &b in text {
        match b {
            b'-' => chars.push(b'+'),
            b'_' => chars.push(b'/'),
            b'=' => continue,
            b if is_space(b) => continue,
            b => chars.push(b),
        }
        if chars.len() == CHUNK_CHARS {
            flush(&mut chars)?;
        }
    }
    if !chars.is_empty() {
        flush(&mut chars)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(text: &str) -> Result<Vec<u8>, String> {
        let len = decoded_len(text.as_bytes())?;
        let mut out = Vec::new();
        decode_chunks(text.as_bytes(), |chunk| {
            out.extend_from_slice(chunk);
            Ok::<_, ()>(())
        })
        .map_err(|e| format!("{e:?}"))?;
        assert_eq!(out.len() as u64, len);
        Ok(out)
    }

    #[test]
    fn accepts_what_bridges_send() {
        assert_eq!(decode("aGVsbG8=").unwrap(), b"hello");
        assert_eq!(decode("aGVsbG8").unwrap(), b"hello");
        assert_eq!(decode("aGVs\nbG8=\n").unwrap(), b"hello");
        assert_eq!(decode("").unwrap(), b"");
        assert_eq!(decode("-_-_").unwrap(), decode("+/+/").unwrap());
    }

    #[test]
    fn refuses_what_is_not_base64() {
        for (bad, why) in [
            ("aGVsbG8=aGVs", "after padding"),
            ("a", "truncated"),
            ("aGVsbG8===", "too much padding"),
            ("aGVsbA=", "wrong amount"),
            ("aGV*bG8=", "byte 0x2a at offset 3"),
            ("aGVs\u{e9}", "byte 0xc3"),
        ] {
            let err = decode(bad).unwrap_err();
            assert!(err.contains(why), "{bad:?}: {err}");
        }
    }

    #[test]
    fn chunked_decoding_matches_one_shot_decoding() {
        let data: Vec<u8> = (0..(CHUNK_CHARS * 2 + 7))
            .map(|i| (i * 31 % 251) as u8)
            .collect();
        let text = base64::engine::general_purpose::STANDARD.encode(&data);
        assert_eq!(decode(&text).unwrap(), data);
    }
}

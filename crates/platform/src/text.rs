//! Text a service can store: PostgreSQL's `text` (and `jsonb`) cannot hold U+0000 (NUL), and a
//! NUL reaching a query fails it with an internal error. Every gRPC handler that stores or looks
//! up free text refuses a NUL first with `INVALID_ARGUMENT` naming the field — the gateway does
//! the same at its door (defence in depth: services are called by more than the gateway).

use tonic::Status;

/// The message of a field that holds a NUL.
pub const NUL_MESSAGE: &str = "must not contain the NUL character (U+0000)";

/// Whether PostgreSQL can store `text`.
pub fn storable(text: &str) -> bool {
    !text.contains('\0')
}

/// Whether a JSON document holds a NUL in any string or key once decoded (the escape `\u0000`).
/// A document that does not parse is left to its parser.
pub fn json_has_nul(document: &str) -> bool {
    fn walk(v: &serde_json::Value) -> bool {
        match v {
            serde_json::Value::String(s) => !storable(s),
            serde_json::Value::Array(items) => items.iter().any(walk),
            serde_json::Value::Object(map) => map.iter().any(|(k, v)| !storable(k) || walk(v)),
            _ => false,
        }
    }
    !storable(document)
        || serde_json::from_str::<serde_json::Value>(document).is_ok_and(|v| walk(&v))
}

/// `INVALID_ARGUMENT` naming every field of `fields` (`(name, text)`) that holds a NUL.
pub fn reject_nul<N: Into<String>>(
    fields: impl IntoIterator<Item = (N, impl AsRef<str>)>,
) -> Result<(), Status> {
    let bad: Vec<(String, &str)> = fields
        .into_iter()
        .filter(|(_, text)| !storable(text.as_ref()))
        .map(|(name, _)| (name.into(), NUL_MESSAGE))
        .collect();
    if bad.is_empty() {
        Ok(())
    } else {
        Err(crate::grpc::invalid_argument(bad))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn names_every_field_with_a_nul() {
        assert!(reject_nul([("name", "张三"), ("reason", "")]).is_ok());
        let status =
            reject_nul([("name", "a\0"), ("reason", "ok"), ("lines[1].note", "\0")]).unwrap_err();
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        let (_, fields) = crate::grpc::status_details(&status);
        let names: Vec<&str> = fields.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(names, ["name", "lines[1].note"]);
    }

    #[test]
    fn finds_nul_escapes_in_json() {
        assert!(!json_has_nul(r#"{"a":["b",{"c":"d"}]}"#));
        assert!(json_has_nul(r#"{"a":["b",{"c":"d\u0000"}]}"#));
        assert!(json_has_nul(r#"{"a\u0000":1}"#));
        assert!(!json_has_nul(r#"{"a":"\\u0000"}"#));
        assert!(!json_has_nul("not json"));
    }
}

//! JSON-RPC 2.0 framing without re-serialising what passes through.
//!
//! Messages are parsed into an envelope whose payload fields stay raw
//! (`RawValue`): the gateway reads `id` and `method`, and rewrites `params`
//! only where it must (a namespaced name, a progress token). A result is
//! copied byte for byte.

use indexmap::IndexMap;
use serde::Deserialize;
use serde_json::value::RawValue;

pub const PARSE_ERROR: i64 = -32700;
pub const INVALID_REQUEST: i64 = -32600;
pub const METHOD_NOT_FOUND: i64 = -32601;
pub const INVALID_PARAMS: i64 = -32602;
pub const INTERNAL_ERROR: i64 = -32603;

/// Any JSON-RPC message, as received.
#[derive(Debug, Deserialize)]
pub struct Envelope {
    pub jsonrpc: Option<String>,
    pub id: Option<Box<RawValue>>,
    pub method: Option<String>,
    pub params: Option<Box<RawValue>>,
    pub result: Option<Box<RawValue>>,
    pub error: Option<Box<RawValue>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Request,
    Notification,
    Response,
}

/// Why [`check_unique_keys`] refused a body, as the JSON-RPC error to send.
#[derive(Debug, PartialEq)]
pub enum BodyProblem {
    /// An object names a key twice (Invalid Request).
    DuplicateKey(String),
    /// Nested deeper than serde_json's limit of 128 (Parse error).
    TooDeep,
    /// Not JSON at all: the envelope parse that follows says how.
    Malformed,
}

impl BodyProblem {
    /// The JSON-RPC code and message for a refused body; `None` for
    /// [`BodyProblem::Malformed`], which the envelope parse reports.
    pub fn error(&self) -> Option<(i64, String)> {
        match self {
            BodyProblem::DuplicateKey(e) => Some((INVALID_REQUEST, format!("invalid request: {e}"))),
            BodyProblem::TooDeep => Some((
                PARSE_ERROR,
                "parse error: the body is nested too deeply (JSON more than 128 levels deep is refused)".into(),
            )),
            BodyProblem::Malformed => None,
        }
    }
}

const DUPLICATE: &str = "duplicate key";

/// Refuses a body that names a key twice in any object: parsers disagree on
/// which copy wins (first or last), so what Warden checked could differ from
/// what a server acts on. Nesting deeper than serde_json's limit fails here
/// too.
pub fn check_unique_keys(bytes: &[u8]) -> Result<(), BodyProblem> {
    use serde::Deserializer as _;
    let classify = |e: serde_json::Error| {
        let text = e.to_string();
        if text.starts_with(DUPLICATE) {
            BodyProblem::DuplicateKey(text)
        } else if text.contains("recursion limit") {
            BodyProblem::TooDeep
        } else {
            BodyProblem::Malformed
        }
    };
    let mut de = serde_json::Deserializer::from_slice(bytes);
    de.deserialize_any(Unique).map_err(classify)?;
    de.end().map_err(classify)
}

struct Unique;

impl<'de> serde::Deserialize<'de> for Unique {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(Unique)
    }
}

impl<'de> serde::de::Visitor<'de> for Unique {
    type Value = Unique;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Unique, A::Error> {
        let mut seen = std::collections::HashSet::new();
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            if !seen.insert(key.clone()) {
                return Err(serde::de::Error::custom(format!(
                    "{DUPLICATE} {key:?}: each name may appear once in an object"
                )));
            }
            map.next_value::<Unique>()?;
        }
        Ok(Unique)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Unique, A::Error> {
        while seq.next_element::<Unique>()?.is_some() {}
        Ok(Unique)
    }

    fn visit_bool<E>(self, _: bool) -> Result<Unique, E> {
        Ok(Unique)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Unique, E> {
        Ok(Unique)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Unique, E> {
        Ok(Unique)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Unique, E> {
        Ok(Unique)
    }
    fn visit_str<E>(self, _: &str) -> Result<Unique, E> {
        Ok(Unique)
    }
    fn visit_unit<E>(self) -> Result<Unique, E> {
        Ok(Unique)
    }
}

impl Envelope {
    pub fn parse(bytes: &[u8]) -> Result<Envelope, String> {
        let trimmed = trim_ascii(bytes);
        if trimmed.first() == Some(&b'[') {
            return Err("batches are not supported".into());
        }
        let env: Envelope = serde_json::from_slice(trimmed).map_err(|e| e.to_string())?;
        if env.jsonrpc.as_deref() != Some("2.0") {
            return Err("\"jsonrpc\" must be \"2.0\"".into());
        }
        Ok(env)
    }

    pub fn kind(&self) -> Option<Kind> {
        match (&self.method, &self.id) {
            (Some(_), Some(id)) if id.get() != "null" => Some(Kind::Request),
            (Some(_), None) => Some(Kind::Notification),
            (None, Some(_)) if self.result.is_some() != self.error.is_some() => {
                Some(Kind::Response)
            }
            _ => None,
        }
    }

    /// The params as an ordered map of raw values (empty when absent).
    pub fn params_map(&self) -> Result<Params, String> {
        match &self.params {
            None => Ok(Params::default()),
            Some(raw) => Params::parse(raw.get()),
        }
    }
}

fn trim_ascii(b: &[u8]) -> &[u8] {
    let start = b
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(b.len());
    let end = b
        .iter()
        .rposition(|c| !c.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    &b[start..end]
}

/// An object whose values stay raw, in their original order.
#[derive(Debug, Default, Clone)]
pub struct Params(pub IndexMap<String, Box<RawValue>>);

impl Params {
    pub fn parse(json: &str) -> Result<Params, String> {
        serde_json::from_str::<IndexMap<String, Box<RawValue>>>(json)
            .map(Params)
            .map_err(|_| "params must be an object".to_string())
    }

    pub fn str(&self, key: &str) -> Option<String> {
        self.0
            .get(key)
            .and_then(|v| serde_json::from_str::<String>(v.get()).ok())
    }

    pub fn set_str(&mut self, key: &str, value: &str) {
        self.0.insert(key.to_string(), raw_string(value));
    }

    pub fn set_raw(&mut self, key: &str, value: Box<RawValue>) {
        self.0.insert(key.to_string(), value);
    }

    pub fn meta(&self) -> Params {
        self.0
            .get("_meta")
            .and_then(|m| Params::parse(m.get()).ok())
            .unwrap_or_default()
    }

    pub fn set_meta(&mut self, meta: Params) {
        if meta.0.is_empty() {
            self.0.shift_remove("_meta");
        } else {
            self.0.insert("_meta".into(), meta.to_raw());
        }
    }

    pub fn to_raw(&self) -> Box<RawValue> {
        let mut s = String::with_capacity(64);
        s.push('{');
        for (i, (k, v)) in self.0.iter().enumerate() {
            if i > 0 {
                s.push(',');
            }
            s.push_str(&serde_json::to_string(k).unwrap_or_default());
            s.push(':');
            s.push_str(v.get());
        }
        s.push('}');
        RawValue::from_string(s).unwrap_or_else(|_| raw("{}"))
    }
}

/// A raw value from JSON the gateway itself wrote. Only ever called with
/// valid JSON (literals, or the output of a serializer).
pub fn raw(json: &str) -> Box<RawValue> {
    RawValue::from_string(json.to_string()).expect("the gateway only builds valid JSON")
}

pub fn raw_string(s: &str) -> Box<RawValue> {
    raw(&serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into()))
}

pub fn to_raw<T: serde::Serialize>(v: &T) -> Box<RawValue> {
    serde_json::value::to_raw_value(v).unwrap_or_else(|_| raw("null"))
}

/// `{"jsonrpc":"2.0","id":<id>,"result":<result>}` without touching `result`.
pub fn response(id: &RawValue, result: &RawValue) -> String {
    let mut s = String::with_capacity(result.get().len() + id.get().len() + 32);
    s.push_str("{\"jsonrpc\":\"2.0\",\"id\":");
    s.push_str(id.get());
    s.push_str(",\"result\":");
    s.push_str(result.get());
    s.push('}');
    s
}

pub fn error_response(id: Option<&RawValue>, error: &RawValue) -> String {
    format!(
        "{{\"jsonrpc\":\"2.0\",\"id\":{},\"error\":{}}}",
        id.map_or("null", |i| i.get()),
        error.get()
    )
}

/// A JSON-RPC error object, as the MCP SDK's `ErrorData`.
pub fn error_object(code: i64, message: &str) -> Box<RawValue> {
    let code = i32::try_from(code).unwrap_or(INTERNAL_ERROR as i32);
    to_raw(&rmcp::model::ErrorData::new(
        rmcp::model::ErrorCode(code),
        message.to_string(),
        None,
    ))
}

pub fn error(id: Option<&RawValue>, code: i64, message: &str) -> String {
    error_response(id, &error_object(code, message))
}

pub fn request(id: &str, method: &str, params: Option<&RawValue>) -> String {
    match params {
        Some(p) => format!(
            "{{\"jsonrpc\":\"2.0\",\"id\":{id},\"method\":{},\"params\":{}}}",
            serde_json::to_string(method).unwrap_or_default(),
            p.get()
        ),
        None => format!(
            "{{\"jsonrpc\":\"2.0\",\"id\":{id},\"method\":{}}}",
            serde_json::to_string(method).unwrap_or_default()
        ),
    }
}

pub fn notification(method: &str, params: Option<&RawValue>) -> String {
    match params {
        Some(p) => format!(
            "{{\"jsonrpc\":\"2.0\",\"method\":{},\"params\":{}}}",
            serde_json::to_string(method).unwrap_or_default(),
            p.get()
        ),
        None => format!(
            "{{\"jsonrpc\":\"2.0\",\"method\":{}}}",
            serde_json::to_string(method).unwrap_or_default()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_keep_unknown_fields_and_order_byte_for_byte() {
        let p = Params::parse(
            r#"{"name":"a__b","arguments":{"x":12345678901234567890,"y":[1.50]},"zz":true}"#,
        )
        .expect("object params");
        let mut q = p.clone();
        q.set_str("name", "b");
        assert_eq!(
            q.to_raw().get(),
            r#"{"name":"b","arguments":{"x":12345678901234567890,"y":[1.50]},"zz":true}"#
        );
    }

    #[test]
    fn classifies_messages() {
        let req = Envelope::parse(br#"{"jsonrpc":"2.0","id":1,"method":"x"}"#).expect("valid");
        assert!(matches!(req.kind(), Some(Kind::Request)));
        let note = Envelope::parse(br#"{"jsonrpc":"2.0","method":"x"}"#).expect("valid");
        assert!(matches!(note.kind(), Some(Kind::Notification)));
        let resp = Envelope::parse(br#"{"jsonrpc":"2.0","id":"a","result":{}}"#).expect("valid");
        assert!(matches!(resp.kind(), Some(Kind::Response)));
        assert!(Envelope::parse(br#"[{"jsonrpc":"2.0","id":1,"method":"x"}]"#).is_err());
        assert!(Envelope::parse(br#"{"jsonrpc":"1.0","id":1,"method":"x"}"#).is_err());
        assert!(Envelope::parse(b"{not json").is_err());
        assert!(check_unique_keys(br#"{"a":{"b":1,"c":[{"d":2,"e":"\u0041"}]},"b":2}"#).is_ok());
        let twice = check_unique_keys(br#"{"a":1,"b":{"c":1,"c":2}}"#).expect_err("refused");
        assert!(
            matches!(&twice, BodyProblem::DuplicateKey(e) if e.contains("duplicate key \"c\"")),
            "{twice:?}"
        );
        let escaped = check_unique_keys(br#"{"name":1,"na\u006de":2}"#).expect_err("refused");
        assert!(
            matches!(escaped, BodyProblem::DuplicateKey(_)),
            "an escaped spelling is the same key: {escaped:?}"
        );
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        assert_eq!(
            check_unique_keys(deep.as_bytes()),
            Err(BodyProblem::TooDeep)
        );
        assert_eq!(check_unique_keys(b"{not json"), Err(BodyProblem::Malformed));
        assert_eq!(
            BodyProblem::TooDeep.error().map(|(code, _)| code),
            Some(PARSE_ERROR)
        );
        assert_eq!(BodyProblem::Malformed.error(), None);
        let both =
            Envelope::parse(br#"{"jsonrpc":"2.0","id":1,"result":1,"error":{}}"#).expect("json");
        assert!(both.kind().is_none());
    }
}

//! The wire format of the control socket: one JSON object per line each way.
//!
//! Request: `{"cmd": "show counters"}`, optionally with `"args": {...}`.
//! Reply: `{"ok": true, "data": ...}` or `{"ok": false, "error": "..."}`.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Longest request line the server reads.
pub const MAX_LINE: usize = 64 * 1024;

/// A request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Request {
    /// The command, words separated by spaces: `show status`.
    pub cmd: String,
    /// Arguments, when the command takes any.
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub args: Value,
}

impl Request {
    /// A request without arguments.
    pub fn new(cmd: &str) -> Request {
        Request {
            cmd: cmd.to_string(),
            args: Value::Null,
        }
    }

    /// The command's words, normalised (`"  show   status "` -> `["show", "status"]`).
    pub fn words(&self) -> Vec<&str> {
        self.cmd.split_whitespace().collect()
    }
}

/// A reply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reply {
    /// True when the command succeeded.
    pub ok: bool,
    /// The answer.
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub data: Value,
    /// What went wrong.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Reply {
    /// A successful reply.
    pub fn ok(data: Value) -> Reply {
        Reply {
            ok: true,
            data,
            error: None,
        }
    }

    /// An error reply.
    pub fn error(msg: impl Into<String>) -> Reply {
        Reply {
            ok: false,
            data: Value::Null,
            error: Some(msg.into()),
        }
    }

    /// The reply as one line (no trailing newline).
    pub fn to_line(&self) -> String {
        serde_json::to_string(self)
            .unwrap_or_else(|e| format!(r#"{{"ok":false,"error":"cannot encode reply: {e}"}}"#))
    }
}

/// Parses one request line; the error says what is wrong in the operator's terms.
pub fn parse_request(line: &str) -> Result<Request, String> {
    let req: Request = serde_json::from_str(line).map_err(|e| {
        format!("malformed request: {e}; expected a JSON object like {{\"cmd\": \"show status\"}}")
    })?;
    if req.words().is_empty() {
        return Err("malformed request: `cmd` is empty".into());
    }
    Ok(req)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_rejects() {
        assert_eq!(
            parse_request(r#"{"cmd":"show  status"}"#).unwrap().words(),
            vec!["show", "status"]
        );
        assert!(
            parse_request("not json")
                .unwrap_err()
                .starts_with("malformed request")
        );
        assert!(parse_request(r#"{"cmd":""}"#).is_err());
        assert!(parse_request(r#"{"cmd":"show status","extra":1}"#).is_err());
        assert!(parse_request(r#"{"cmd":5}"#).is_err());
        let r = Reply::error("nope");
        assert_eq!(r.to_line(), r#"{"ok":false,"error":"nope"}"#);
    }
}

//! The stdio side of MCP (`sigil mcp --url URL --token-file FILE`): a local MCP host starts
//! this process and speaks newline-delimited JSON-RPC on its stdin/stdout; each message is
//! forwarded to the server's `POST /mcp` over HTTPS with the agent's token, and the answer
//! written back. The server decides everything; the bridge holds no authority and no state
//! beyond the protocol revision a handshake negotiated (sent on as `MCP-Protocol-Version`).
//!
//! `main.rs` owns stdin, stdout and the token file; this module turns one line into at most
//! one line. Must never: write anything but JSON-RPC to stdout, or put the token in a
//! message, an error or a log.

use serde_json::{Value, json};

/// A bridge to one server, for one agent token.
pub struct Bridge {
    client: reqwest::Client,
    endpoint: String,
    token: String,
    version: Option<String>,
}

impl Bridge {
    /// `url` is the server's base URL (`https://host:port`); `client` trusts its CA.
    pub fn new(client: reqwest::Client, url: &str, token: String) -> Self {
        Self { client, endpoint: format!("{}/mcp", url.trim_end_matches('/')), token, version: None }
    }

    /// Forwards one message; the answer to write back, if any (notifications have none).
    pub async fn forward(&mut self, line: &str) -> Option<String> {
        let msg: Value = match serde_json::from_str(line) {
            Ok(v) => v,
            Err(e) => return Some(error(Value::Null, -32700, &format!("parse error: {e}"))),
        };
        let id = msg.get("id").cloned();
        let is_initialize = msg.get("method").and_then(Value::as_str) == Some("initialize");
        let mut req = self
            .client
            .post(&self.endpoint)
            .bearer_auth(&self.token)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .body(line.to_owned());
        if let Some(v) = &self.version {
            req = req.header("mcp-protocol-version", v);
        }
        let resp = match req.send().await {
            Ok(r) => r,
            // reqwest's message names the URL, never the bearer token.
            Err(e) => return id.map(|id| error(id, -32603, &format!("cannot reach Sigil at {}: {e}", self.endpoint))),
        };
        let status = resp.status();
        let body = resp.bytes().await.unwrap_or_default();
        if status == reqwest::StatusCode::ACCEPTED {
            return None;
        }
        let parsed: Option<Value> = serde_json::from_slice(&body).ok();
        // A JSON-RPC answer (also the 400 of an unsupported protocol version) goes back as is.
        if let Some(v) = parsed.as_ref().filter(|v| v.get("jsonrpc").is_some()) {
            if is_initialize {
                self.version = v.pointer("/result/protocolVersion").and_then(Value::as_str).map(str::to_owned);
            }
            return Some(v.to_string());
        }
        // An HTTP refusal before JSON-RPC (401 bad token, 413 too large, 429 throttled):
        // the problem+json's code and detail, as a JSON-RPC error the host can show.
        let code = parsed.as_ref().and_then(|p| p.get("code")).and_then(Value::as_str).unwrap_or("http_error").to_owned();
        let detail = parsed.as_ref().and_then(|p| p.get("detail")).and_then(Value::as_str).unwrap_or_default().to_owned();
        id.map(|id| error(id, -32001, &format!("Sigil refused the request (HTTP {}, {code}): {detail}", status.as_u16())))
    }
}

fn error(id: Value, code: i64, message: &str) -> String {
    json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}}).to_string()
}

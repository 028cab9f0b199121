//! The `anthropic-messages` wire API: `POST {baseUrl}/v1/messages`, JSON or SSE.
//! API keys go in `x-api-key`; setup/OAuth tokens (`sk-ant-oat01-…`) go in
//! `Authorization: Bearer` with the OAuth beta header.

use super::http::{ApiCall, malformed};
use super::stream::StreamState;
use super::{ChatRequest, Completion, ProviderError, ProviderSettings, Role, Usage, token_count};
use crate::auth::credential::Credential;
use crate::config::ApiKind;
use crate::media::ImagePart;
use serde::Deserialize;
use serde_json::{Value, json};

pub const API_VERSION: &str = "2023-06-01";
pub const OAUTH_BETA: &str = "oauth-2025-04-20";

pub fn build(
    http: &reqwest::Client,
    settings: &ProviderSettings,
    cred: &Credential,
    req: &ChatRequest,
    stream: bool,
) -> ApiCall {
    let mut body = json!({
        "model": req.model,
        "max_tokens": req.max_tokens,
        "messages": merged_turns(req),
    });
    if let Some(system) = req.system_text() {
        body["system"] = json!(system);
    }
    if stream {
        body["stream"] = json!(true);
    }
    let mut rb = http
        .post(format!("{}/v1/messages", settings.base_url))
        .header("anthropic-version", API_VERSION)
        .header(reqwest::header::ACCEPT, super::http::accept(stream))
        .json(&body);
    rb = if cred.is_anthropic_oauth() {
        rb.bearer_auth(cred.secret.expose())
            .header("anthropic-beta", OAUTH_BETA)
    } else {
        rb.header("x-api-key", cred.secret.expose())
    };
    ApiCall {
        request: rb,
        api: ApiKind::AnthropicMessages,
    }
}

/// Anthropic wants alternating user/assistant turns: merge neighbours with the same role.
/// A turn without images keeps its content a plain string; a turn with images becomes a
/// content array, image blocks first and then the text block (DESIGN §10).
fn merged_turns(req: &ChatRequest) -> Vec<Value> {
    let mut out: Vec<(Role, String, Vec<&ImagePart>)> = Vec::new();
    let turns = req
        .turns()
        .filter(|m| !m.content.is_empty() || !m.images.is_empty());
    for m in turns {
        match out.last_mut() {
            Some((role, text, images)) if *role == m.role => {
                if !text.is_empty() && !m.content.is_empty() {
                    text.push_str("\n\n");
                }
                text.push_str(&m.content);
                images.extend(&m.images);
            }
            _ => out.push((m.role, m.content.clone(), m.images.iter().collect())),
        }
    }
    out.into_iter()
        .map(|(role, text, images)| {
            let role = if role == Role::Assistant {
                "assistant"
            } else {
                "user"
            };
            json!({"role": role, "content": content(text, &images)})
        })
        .collect()
}

/// A turn's `content`: the text as it is, or image blocks followed by the text block
/// (an empty text block is refused by the API, so an image alone has none).
fn content(text: String, images: &[&ImagePart]) -> Value {
    if images.is_empty() {
        return json!(text);
    }
    let mut blocks: Vec<Value> = images
        .iter()
        .map(|img| {
            json!({
                "type": "image",
                "source": {"type": "base64", "media_type": img.media_type, "data": img.base64()},
            })
        })
        .collect();
    if !text.is_empty() {
        blocks.push(json!({"type": "text", "text": text}));
    }
    Value::Array(blocks)
}

#[derive(Deserialize)]
struct Reply {
    /// `"message"`; `"error"` for an error object (which a proxy may send with 200).
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(default)]
    error: Option<Value>,
    #[serde(default)]
    content: Vec<Block>,
    stop_reason: Option<String>,
    /// Read leniently (`token_count`): odd numbers must not cost the reply.
    usage: Option<Value>,
}

#[derive(Deserialize)]
struct Block {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    text: String,
}

pub fn parse_reply(provider: &str, body: &[u8]) -> Result<Completion, ProviderError> {
    let reply: Reply = serde_json::from_slice(body).map_err(|e| malformed(provider, e))?;
    // An error object in a 200 answer is still an error: classified by its fields
    // (`rate_limit_error` rotates like a 429), never an empty success.
    if reply.kind.as_deref() == Some("error") || reply.error.as_ref().is_some_and(|e| !e.is_null())
    {
        let text = String::from_utf8_lossy(body);
        return Err(super::error::classify(provider, None, None, &text));
    }
    Ok(Completion {
        text: reply
            .content
            .iter()
            .filter(|b| b.kind == "text")
            .map(|b| b.text.as_str())
            .collect(),
        usage: reply.usage.filter(Value::is_object).map(|u| Usage {
            input_tokens: token_count(u.get("input_tokens")),
            output_tokens: token_count(u.get("output_tokens")),
        }),
        stop_reason: reply.stop_reason,
    })
}

/// One SSE event; returns the text delta it carries, if any.
pub fn on_event(
    provider: &str,
    event: &str,
    data: &str,
    state: &mut StreamState,
) -> Result<Option<String>, ProviderError> {
    if event == "error" {
        return Err(super::error::classify(provider, None, None, data));
    }
    if event == "ping" || data.trim().is_empty() {
        return Ok(None);
    }
    let v: Value = serde_json::from_str(data)
        .map_err(|e| malformed(provider, format!("stream event {event}: {e}")))?;
    let kind = v.get("type").and_then(Value::as_str).unwrap_or(event);
    match kind {
        "message_start" => {
            if let Some(n) = v.pointer("/message/usage/input_tokens") {
                state.usage_mut().input_tokens = token_count(Some(n));
            }
        }
        "content_block_delta"
            if v.pointer("/delta/type").and_then(Value::as_str) == Some("text_delta") =>
        {
            return Ok(v
                .pointer("/delta/text")
                .and_then(Value::as_str)
                .map(str::to_string));
        }
        "message_delta" => {
            if let Some(r) = v.pointer("/delta/stop_reason").and_then(Value::as_str) {
                state.stop_reason = Some(r.to_string());
            }
            if let Some(n) = v.pointer("/usage/output_tokens") {
                state.usage_mut().output_tokens = token_count(Some(n));
            }
        }
        "message_stop" => state.done = true,
        "error" => return Err(super::error::classify(provider, None, None, data)),
        _ => {}
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::ChatMessage;

    fn png() -> ImagePart {
        let bytes = bytes::Bytes::from_static(b"\x89PNG\r\n\x1a\nrest");
        ImagePart::from_bytes("a.png", bytes, 100).unwrap()
    }

    fn request(messages: Vec<ChatMessage>) -> ChatRequest {
        ChatRequest {
            model: "m".into(),
            messages,
            max_tokens: 1,
        }
    }

    #[test]
    fn an_error_object_in_a_200_answer_is_an_error_not_an_empty_reply() {
        use crate::providers::error::ErrorKind;
        let body = br#"{"type":"error","error":{"type":"rate_limit_error","message":"slow"}}"#;
        let e = parse_reply("anthropic", body).unwrap_err();
        assert_eq!(e.kind, ErrorKind::RateLimit);
        assert_eq!(e.code.as_deref(), Some("rate_limit_error"));
        let e = parse_reply(
            "anthropic",
            br#"{"type":"error","error":{"type":"authentication_error","message":"bad key"}}"#,
        )
        .unwrap_err();
        assert_eq!(e.kind, ErrorKind::Auth);
        // A normal reply is untouched.
        let ok = parse_reply(
            "anthropic",
            br#"{"type":"message","content":[{"type":"text","text":"hi"}],"stop_reason":"end_turn"}"#,
        )
        .unwrap();
        assert_eq!(ok.text, "hi");
    }

    #[test]
    fn images_go_as_base64_blocks_before_the_text() {
        let mut user = ChatMessage::user("what is this?");
        user.images = vec![png()];
        let turns = merged_turns(&request(vec![
            ChatMessage::user("hi"),
            ChatMessage::assistant("hello"),
            user,
        ]));
        assert_eq!(turns[0], json!({"role": "user", "content": "hi"}));
        assert_eq!(
            turns[2]["content"],
            json!([
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgpyZXN0"}},
                {"type": "text", "text": "what is this?"},
            ])
        );
    }

    #[test]
    fn an_image_without_text_is_sent_and_merged_turns_keep_every_image() {
        let mut photo = ChatMessage::user("");
        photo.images = vec![png()];
        let turns = merged_turns(&request(vec![photo.clone()]));
        assert_eq!(turns.len(), 1, "an image alone is a turn");
        assert_eq!(turns[0]["content"].as_array().unwrap().len(), 1);
        assert_eq!(turns[0]["content"][0]["type"], "image");

        let turns = merged_turns(&request(vec![
            photo.clone(),
            ChatMessage::user("and"),
            photo,
        ]));
        let blocks = turns[0]["content"].as_array().unwrap();
        let kinds: Vec<&str> = blocks.iter().map(|b| b["type"].as_str().unwrap()).collect();
        assert_eq!(kinds, ["image", "image", "text"]);
        assert_eq!(blocks[2]["text"], "and");
    }
}

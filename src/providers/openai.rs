//! The `openai-completions` wire API: `POST {baseUrl}/chat/completions` with a bearer
//! token, JSON or SSE (`data: {...}` chunks ending in `data: [DONE]`). Serves OpenAI,
//! OpenRouter and any compatible server (Ollama, vLLM, …).

use super::http::{ApiCall, malformed};
use super::stream::StreamState;
use super::{
    ChatMessage, ChatRequest, Completion, ProviderError, ProviderSettings, Usage, token_count,
};
use crate::auth::credential::Credential;
use crate::config::ApiKind;
use serde_json::{Value, json};

pub fn build(
    http: &reqwest::Client,
    settings: &ProviderSettings,
    cred: &Credential,
    req: &ChatRequest,
    stream: bool,
) -> ApiCall {
    let messages: Vec<Value> = req
        .messages
        .iter()
        .map(|m| json!({"role": m.role.as_str(), "content": content(m)}))
        .collect();
    let mut body = json!({"model": req.model, "messages": messages});
    // OpenAI's newer models accept only max_completion_tokens; compatible servers expect max_tokens.
    let limit_field = if settings.id == "openai" {
        "max_completion_tokens"
    } else {
        "max_tokens"
    };
    body[limit_field] = json!(req.max_tokens);
    if stream {
        body["stream"] = json!(true);
        body["stream_options"] = json!({"include_usage": true});
    }
    super::http::bearer_json(
        http,
        format!("{}/chat/completions", settings.base_url),
        cred,
        &body,
        stream,
        ApiKind::OpenaiCompletions,
    )
}

/// A message's `content`: its text as it is, or, when it carries images, a text part
/// (if there is text) followed by one `image_url` part per image as a `data:` URL.
fn content(m: &ChatMessage) -> Value {
    if m.images.is_empty() {
        return json!(m.content);
    }
    let mut parts = Vec::with_capacity(m.images.len() + 1);
    if !m.content.is_empty() {
        parts.push(json!({"type": "text", "text": m.content}));
    }
    for img in &m.images {
        parts.push(json!({"type": "image_url", "image_url": {"url": img.data_url()}}));
    }
    Value::Array(parts)
}

fn usage_of(v: &Value) -> Option<Usage> {
    let u = v.get("usage").filter(|u| u.is_object())?;
    Some(Usage {
        input_tokens: token_count(u.get("prompt_tokens")),
        output_tokens: token_count(u.get("completion_tokens")),
    })
}

pub fn parse_reply(provider: &str, body: &[u8]) -> Result<Completion, ProviderError> {
    let v: Value = serde_json::from_slice(body).map_err(|e| malformed(provider, e))?;
    if v.get("error").is_some_and(|e| !e.is_null()) {
        return Err(super::error::classify(provider, None, None, &v.to_string()));
    }
    let choice = v
        .pointer("/choices/0")
        .ok_or_else(|| malformed(provider, "no choices in the reply"))?;
    let text = match choice.pointer("/message/content") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => return Err(malformed(provider, format!("message.content is {other}"))),
    };
    Ok(Completion {
        text,
        usage: usage_of(&v),
        stop_reason: choice
            .get("finish_reason")
            .and_then(Value::as_str)
            .map(str::to_string),
    })
}

/// One SSE `data:` payload; returns the text delta it carries, if any.
pub fn on_event(
    provider: &str,
    data: &str,
    state: &mut StreamState,
) -> Result<Option<String>, ProviderError> {
    let data = data.trim();
    if data == "[DONE]" {
        state.done = true;
        return Ok(None);
    }
    if data.is_empty() {
        return Ok(None);
    }
    let v: Value = serde_json::from_str(data)
        .map_err(|e| malformed(provider, format!("stream chunk: {e}")))?;
    if v.get("error").is_some_and(|e| !e.is_null()) {
        return Err(super::error::classify(provider, None, None, data));
    }
    if let Some(u) = usage_of(&v) {
        state.usage = Some(u);
    }
    let Some(choice) = v.pointer("/choices/0") else {
        return Ok(None);
    };
    if let Some(r) = choice.get("finish_reason").and_then(Value::as_str) {
        state.stop_reason = Some(r.to_string());
    }
    Ok(choice
        .pointer("/delta/content")
        .and_then(Value::as_str)
        .map(str::to_string))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_go_as_image_url_parts_after_the_text() {
        let bytes = bytes::Bytes::from_static(&[0xFF, 0xD8, 0xFF, 0xE0, 1, 2]);
        let img = crate::media::ImagePart::from_bytes("a.jpg", bytes, 100).unwrap();
        assert_eq!(content(&ChatMessage::user("plain")), json!("plain"));
        let mut m = ChatMessage::user("look");
        m.images = vec![img.clone()];
        assert_eq!(
            content(&m),
            json!([
                {"type": "text", "text": "look"},
                {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/4AEC"}},
            ])
        );
        m.content.clear();
        assert_eq!(
            content(&m).as_array().unwrap().len(),
            1,
            "no empty text part"
        );
    }
}

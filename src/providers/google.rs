//! The `google-generative` wire API (Gemini): `POST {baseUrl}/models/<m>:generateContent`
//! or `:streamGenerateContent?alt=sse`, key in `x-goog-api-key`.

use super::http::{ApiCall, malformed};
use super::stream::StreamState;
use super::{
    ChatMessage, ChatRequest, Completion, ProviderError, ProviderSettings, Role, Usage, token_count,
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
    let contents: Vec<Value> = req
        .turns()
        .filter(|m| !m.content.is_empty() || !m.images.is_empty())
        .map(|m| json!({"role": if m.role == Role::Assistant { "model" } else { "user" }, "parts": parts(m)}))
        .collect();
    let mut body =
        json!({"contents": contents, "generationConfig": {"maxOutputTokens": req.max_tokens}});
    if let Some(system) = req.system_text() {
        body["systemInstruction"] = json!({"parts": [{"text": system}]});
    }
    let model = req.model.strip_prefix("models/").unwrap_or(&req.model);
    let url = if stream {
        format!(
            "{}/models/{model}:streamGenerateContent?alt=sse",
            settings.base_url
        )
    } else {
        format!("{}/models/{model}:generateContent", settings.base_url)
    };
    let rb = http
        .post(url)
        .header("x-goog-api-key", cred.secret.expose())
        .json(&body);
    ApiCall {
        request: rb,
        api: ApiKind::GoogleGenerative,
    }
}

/// A turn's `parts`: one `inline_data` part per image, then the text part (none when an
/// image comes without text).
fn parts(m: &ChatMessage) -> Vec<Value> {
    let mut parts: Vec<Value> = m
        .images
        .iter()
        .map(|img| json!({"inline_data": {"mime_type": img.media_type, "data": img.base64()}}))
        .collect();
    if !m.content.is_empty() || parts.is_empty() {
        parts.push(json!({"text": m.content}));
    }
    parts
}

/// Text, finish reason and usage of one `GenerateContentResponse` (whole or a chunk).
fn read_chunk(provider: &str, v: &Value, state: &mut StreamState) -> Result<String, ProviderError> {
    if v.get("error").is_some_and(|e| !e.is_null()) {
        return Err(super::error::classify(provider, None, None, &v.to_string()));
    }
    if let Some(u) = v.get("usageMetadata") {
        state.usage = Some(Usage {
            input_tokens: token_count(u.get("promptTokenCount")),
            output_tokens: token_count(u.get("candidatesTokenCount")),
        });
    }
    let Some(cand) = v.pointer("/candidates/0") else {
        if let Some(reason) = v
            .pointer("/promptFeedback/blockReason")
            .and_then(Value::as_str)
        {
            return Err(malformed(
                provider,
                format!("the prompt was blocked ({reason})"),
            ));
        }
        return Ok(String::new());
    };
    if let Some(r) = cand.get("finishReason").and_then(Value::as_str) {
        state.stop_reason = Some(r.to_string());
    }
    Ok(cand
        .pointer("/content/parts")
        .and_then(Value::as_array)
        .map(|parts| {
            parts
                .iter()
                .filter(|p| p.get("thought").and_then(Value::as_bool) != Some(true))
                .filter_map(|p| p.get("text").and_then(Value::as_str))
                .collect()
        })
        .unwrap_or_default())
}

pub fn parse_reply(provider: &str, body: &[u8]) -> Result<Completion, ProviderError> {
    let v: Value = serde_json::from_slice(body).map_err(|e| malformed(provider, e))?;
    if !v.is_object() {
        return Err(malformed(provider, "expected a JSON object"));
    }
    let mut state = StreamState::default();
    let text = read_chunk(provider, &v, &mut state)?;
    if !v.get("candidates").is_some_and(Value::is_array) {
        return Err(malformed(provider, "no candidates in the reply"));
    }
    Ok(Completion {
        text,
        usage: state.usage,
        stop_reason: state.stop_reason,
    })
}

pub fn on_event(
    provider: &str,
    data: &str,
    state: &mut StreamState,
) -> Result<Option<String>, ProviderError> {
    if data.trim().is_empty() {
        return Ok(None);
    }
    let v: Value = serde_json::from_str(data)
        .map_err(|e| malformed(provider, format!("stream chunk: {e}")))?;
    read_chunk(provider, &v, state).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_go_as_inline_data_parts_before_the_text() {
        let bytes = bytes::Bytes::from_static(b"GIF89a..");
        let img = crate::media::ImagePart::from_bytes("a.gif", bytes, 100).unwrap();
        assert_eq!(
            parts(&ChatMessage::user("plain")),
            [json!({"text": "plain"})]
        );
        let mut m = ChatMessage::user("look");
        m.images = vec![img];
        assert_eq!(
            parts(&m),
            [
                json!({"inline_data": {"mime_type": "image/gif", "data": "R0lGODlhLi4="}}),
                json!({"text": "look"}),
            ]
        );
        m.content.clear();
        assert_eq!(parts(&m).len(), 1, "no empty text part");
    }
}

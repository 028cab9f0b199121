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
use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub fn build(
    http: &reqwest::Client,
    settings: &ProviderSettings,
    cred: &Credential,
    req: &ChatRequest,
    stream: bool,
) -> ApiCall {
    // OpenAI's newer models accept only max_completion_tokens; compatible servers expect max_tokens.
    let openai = settings.id == "openai";
    let body = Body {
        model: &req.model,
        messages: req
            .messages
            .iter()
            .map(|m| Message {
                role: m.role.as_str(),
                content: content(m),
            })
            .collect(),
        max_completion_tokens: openai.then_some(req.max_tokens),
        max_tokens: (!openai).then_some(req.max_tokens),
        stream: stream.then_some(true),
        stream_options: stream.then_some(StreamOptions {
            include_usage: true,
        }),
    };
    super::http::bearer_json(
        http,
        format!("{}/chat/completions", settings.base_url),
        cred,
        &body,
        stream,
        ApiKind::OpenaiCompletions,
    )
}

/// The request body, serialized straight from the turn's messages (no `Value` tree in
/// between: this runs once per turn).
#[derive(Serialize)]
struct Body<'a> {
    model: &'a str,
    messages: Vec<Message<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_completion_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stream: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stream_options: Option<StreamOptions>,
}

#[derive(Serialize)]
struct StreamOptions {
    include_usage: bool,
}

#[derive(Serialize)]
struct Message<'a> {
    role: &'a str,
    content: Content<'a>,
}

/// A message's `content`: its text as it is, or, when it carries images, a text part
/// (if there is text) followed by one `image_url` part per image as a `data:` URL.
#[derive(Serialize)]
#[serde(untagged)]
enum Content<'a> {
    Text(&'a str),
    Parts(Vec<Part<'a>>),
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Part<'a> {
    Text { text: &'a str },
    ImageUrl { image_url: ImageUrl },
}

#[derive(Serialize)]
struct ImageUrl {
    url: String,
}

fn content(m: &ChatMessage) -> Content<'_> {
    if m.images.is_empty() {
        return Content::Text(&m.content);
    }
    let mut parts = Vec::with_capacity(m.images.len() + 1);
    if !m.content.is_empty() {
        parts.push(Part::Text { text: &m.content });
    }
    for img in &m.images {
        parts.push(Part::ImageUrl {
            image_url: ImageUrl {
                url: img.data_url(),
            },
        });
    }
    Content::Parts(parts)
}

fn usage_of(v: &Value) -> Option<Usage> {
    let u = v.get("usage").filter(|u| u.is_object())?;
    Some(Usage {
        input_tokens: token_count(u.get("prompt_tokens")),
        output_tokens: token_count(u.get("completion_tokens")),
    })
}

/// The common reply (`choices[0].message.content` a string or null, token counts
/// whole numbers), read without building a `Value` of the whole body. Every level is
/// read as a JSON object only ([`Obj`]): a derived struct would also take an array
/// positionally, which the general path reads differently.
#[derive(Deserialize)]
struct PlainReply {
    #[serde(default)]
    error: Option<IgnoredAny>,
    choices: Vec<Obj<PlainChoice>>,
    #[serde(default)]
    usage: Option<Obj<PlainUsage>>,
}

#[derive(Deserialize)]
struct PlainChoice {
    message: Obj<PlainMessage>,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct PlainMessage {
    #[serde(default)]
    content: Option<String>,
}

#[derive(Deserialize)]
struct PlainUsage {
    #[serde(default)]
    prompt_tokens: Option<u64>,
    #[serde(default)]
    completion_tokens: Option<u64>,
}

/// `T` read from a JSON object and nothing else.
struct Obj<T>(T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Obj<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Only<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> serde::de::Visitor<'de> for Only<T> {
            type Value = T;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
                T::deserialize(serde::de::value::MapAccessDeserializer::new(map))
            }
        }
        d.deserialize_map(Only(std::marker::PhantomData)).map(Obj)
    }
}

/// `Some` only for a reply with no error and at least one choice, read exactly as
/// [`parse_reply`] would; anything else is left to the general path.
pub(super) fn plain_reply(body: &[u8]) -> Option<Completion> {
    let Obj(r): Obj<PlainReply> = serde_json::from_slice(body).ok()?;
    if r.error.is_some() {
        return None;
    }
    let Obj(choice) = r.choices.into_iter().next()?;
    Some(Completion {
        text: choice.message.0.content.unwrap_or_default(),
        usage: r.usage.map(|Obj(u)| Usage {
            input_tokens: u.prompt_tokens.unwrap_or(0),
            output_tokens: u.completion_tokens.unwrap_or(0),
        }),
        stop_reason: choice.finish_reason,
    })
}

pub fn parse_reply(provider: &str, body: &[u8]) -> Result<Completion, ProviderError> {
    match plain_reply(body) {
        Some(done) => Ok(done),
        None => parse_general(provider, body),
    }
}

/// Any reply: errors, odd types, missing parts (what [`plain_reply`] leaves).
pub(super) fn parse_general(provider: &str, body: &[u8]) -> Result<Completion, ProviderError> {
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
    use serde_json::json;

    #[test]
    fn images_go_as_image_url_parts_after_the_text() {
        let bytes = bytes::Bytes::from_static(&[0xFF, 0xD8, 0xFF, 0xE0, 1, 2]);
        let img = crate::media::ImagePart::from_bytes("a.jpg", bytes, 100).unwrap();
        let content = |m: &ChatMessage| serde_json::to_value(super::content(m)).unwrap();
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

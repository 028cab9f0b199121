//! The shape of the two POST bodies, checked field by field so a wrong one is answered
//! 400 naming the field (`messages[0].content must be a string or an array of content
//! parts`). Fields the gateway does not use (`temperature`, `tools`, …) are ignored, as
//! OpenAI clients send many.

use super::refusal::Refusal;
use axum::http::StatusCode;
use serde_json::{Map, Value};

/// `POST /v1/chat/completions`, as far as the gateway reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct CompletionRequest {
    pub model: String,
    pub messages: Vec<InMessage>,
    pub stream: bool,
    /// `stream_options.include_usage`: a last chunk carries the token counts.
    pub include_usage: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct InMessage {
    pub role: String,
    /// The text parts joined by newlines (parts of other types are dropped, except
    /// images).
    pub text: String,
    /// The `image_url` parts, in order, still undecoded (`super::images` decodes them).
    pub images: Vec<ImageUrl>,
}

/// One `{"type": "image_url", "image_url": {"url": …}}` part (`detail` is ignored).
#[derive(Debug, Clone, PartialEq)]
pub struct ImageUrl {
    /// Where it sits: `messages[0].content[1]`.
    pub param: String,
    pub url: String,
}

/// `POST /api/chat`.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatBody {
    pub session: String,
    pub message: String,
}

fn object<'a>(v: &'a Value, what: &str, expected: &str) -> Result<&'a Map<String, Value>, Refusal> {
    v.as_object()
        .ok_or_else(|| Refusal::field(what, format!("{what} must be {expected}")))
}

/// A string field; absent or `null` gives `None`.
fn opt_str<'a>(
    obj: &'a Map<String, Value>,
    key: &str,
    path: &str,
) -> Result<Option<&'a str>, Refusal> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(Refusal::field(path, format!("{path} must be a string"))),
    }
}

fn req_str<'a>(obj: &'a Map<String, Value>, key: &str, path: &str) -> Result<&'a str, Refusal> {
    opt_str(obj, key, path)?
        .ok_or_else(|| Refusal::field(path, format!("{path} is required (a string)")))
}

/// `content`: a string, an array of parts, or `null` (an assistant message that only
/// called tools). `text` and `image_url` parts are kept, `refusal` parts skipped; a part
/// of any other type is refused (its content would otherwise be lost without a word).
fn content_parts(v: Option<&Value>, path: &str) -> Result<(String, Vec<ImageUrl>), Refusal> {
    let parts = match v {
        None | Some(Value::Null) => return Ok((String::new(), Vec::new())),
        Some(Value::String(s)) => return Ok((s.clone(), Vec::new())),
        Some(Value::Array(parts)) => parts,
        Some(_) => {
            return Err(Refusal::field(
                path,
                format!("{path} must be a string or an array of content parts"),
            ));
        }
    };
    let mut texts = Vec::new();
    let mut images = Vec::new();
    for (j, part) in parts.iter().enumerate() {
        let here = format!("{path}[{j}]");
        let part = object(
            part,
            &here,
            "a content part object such as {\"type\": \"text\", \"text\": \"…\"}",
        )?;
        let kind = opt_str(part, "type", &format!("{here}.type"))?;
        match kind {
            None | Some("text") => texts.push(req_str(part, "text", &format!("{here}.text"))?),
            Some("image_url") => {
                let what = format!("{here}.image_url");
                let example = "an object such as {\"url\": \"data:image/png;base64,…\"}";
                let image = object(
                    part.get("image_url").unwrap_or(&Value::Null),
                    &what,
                    example,
                )?;
                let url = req_str(image, "url", &format!("{what}.url"))?.to_string();
                images.push(ImageUrl { param: here, url });
            }
            // An assistant's refusal in the history: nothing for the model to read.
            Some("refusal") => {}
            Some(other) => {
                return Err(Refusal::field(
                    format!("{here}.type"),
                    format!(
                        "{here}.type \"{}\" is not a content part this gateway reads: use \"text\" or \"image_url\"",
                        other.chars().take(40).collect::<String>()
                    ),
                ));
            }
        }
    }
    Ok((texts.join("\n"), images))
}

fn not_an_object(example: &str) -> Refusal {
    Refusal::new(
        StatusCode::BAD_REQUEST,
        "invalid_request",
        format!("the request body must be a JSON object such as {example}"),
    )
}

pub fn completion_request(v: &Value) -> Result<CompletionRequest, Refusal> {
    let top = v.as_object().ok_or_else(|| {
        not_an_object(
            "{\"model\": \"remoteclaw\", \"messages\": [{\"role\": \"user\", \"content\": \"hi\"}]}",
        )
    })?;
    let model = opt_str(top, "model", "model")?
        .unwrap_or_default()
        .to_string();
    let stream = match top.get("stream") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(Refusal::field("stream", "stream must be true or false")),
    };
    let include_usage = match top.get("stream_options") {
        None | Some(Value::Null) => false,
        Some(Value::Object(o)) => match o.get("include_usage") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => {
                return Err(Refusal::field(
                    "stream_options.include_usage",
                    "stream_options.include_usage must be true or false",
                ));
            }
        },
        Some(_) => {
            return Err(Refusal::field(
                "stream_options",
                "stream_options must be an object such as {\"include_usage\": true}",
            ));
        }
    };
    let list = match top.get("messages") {
        Some(Value::Array(list)) => list,
        None | Some(Value::Null) => {
            return Err(Refusal::field(
                "messages",
                "messages is required: an array of {\"role\", \"content\"} objects",
            ));
        }
        Some(_) => {
            return Err(Refusal::field(
                "messages",
                "messages must be an array of {\"role\", \"content\"} objects",
            ));
        }
    };
    let mut messages = Vec::with_capacity(list.len());
    for (i, m) in list.iter().enumerate() {
        let here = format!("messages[{i}]");
        let m = object(m, &here, "an object with role and content")?;
        let role = req_str(m, "role", &format!("{here}.role"))?.to_string();
        let (text, images) = content_parts(m.get("content"), &format!("{here}.content"))?;
        messages.push(InMessage { role, text, images });
    }
    Ok(CompletionRequest {
        model,
        messages,
        stream,
        include_usage,
    })
}

pub fn chat_body(v: &Value) -> Result<ChatBody, Refusal> {
    let top = v
        .as_object()
        .ok_or_else(|| not_an_object("{\"session\": \"…\", \"message\": \"…\"}"))?;
    Ok(ChatBody {
        session: req_str(top, "session", "session")?.to_string(),
        message: req_str(top, "message", "message")?.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn err(v: Value) -> String {
        completion_request(&v).unwrap_err().message
    }

    #[test]
    fn every_wrong_field_is_named() {
        assert_eq!(
            err(json!({"messages": [{"role": "user", "content": 123}]})),
            "messages[0].content must be a string or an array of content parts"
        );
        assert_eq!(
            err(json!({"model": 5, "messages": []})),
            "model must be a string"
        );
        assert!(err(json!({"messages": "hi"})).starts_with("messages must be an array"));
        assert!(err(json!({})).starts_with("messages is required"));
        assert!(err(json!({"messages": [1]})).starts_with("messages[0] must be an object"));
        assert_eq!(
            err(json!({"messages": [{"content": "x"}]})),
            "messages[0].role is required (a string)"
        );
        assert_eq!(
            err(
                json!({"messages": [{"role": "user", "content": "a"}, {"role": 1, "content": "x"}]})
            ),
            "messages[1].role must be a string"
        );
        assert_eq!(
            err(json!({"stream": "yes", "messages": []})),
            "stream must be true or false"
        );
        assert_eq!(
            err(json!({"messages": [{"role": "user", "content": [{"type": "text", "text": 1}]}]})),
            "messages[0].content[0].text must be a string"
        );
        assert!(err(json!([1])).starts_with("the request body must be a JSON object"));
    }

    #[test]
    fn accepted_shapes() {
        let r = completion_request(&json!({"model": null, "stream": true, "temperature": 1, "messages": [
            {"role": "assistant", "content": null, "tool_calls": []},
            {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "image_url", "image_url": {"url": "data:x", "detail": "high"}}, {"text": "b"}]},
            {"role": "assistant", "content": [{"type": "refusal", "refusal": "no"}]},
        ]}))
        .unwrap();
        assert_eq!(r.model, "");
        assert!(r.stream);
        assert_eq!(r.messages[0].text, "");
        assert_eq!(r.messages[1].text, "a\nb");
        assert_eq!(
            r.messages[1].images,
            [ImageUrl {
                param: "messages[1].content[1]".into(),
                url: "data:x".into()
            }]
        );
    }

    #[test]
    fn a_part_of_a_type_not_read_is_refused_not_dropped() {
        for kind in ["input_audio", "file", "bogus"] {
            assert_eq!(
                err(
                    json!({"messages": [{"role": "user", "content": [{"type": "text", "text": "hear this"}, {"type": kind}]}]})
                ),
                format!(
                    "messages[0].content[1].type \"{kind}\" is not a content part this gateway reads: use \"text\" or \"image_url\""
                )
            );
        }
    }

    #[test]
    fn an_image_part_without_a_url_is_named() {
        assert_eq!(
            err(
                json!({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]})
            ),
            "messages[0].content[0].image_url.url is required (a string)"
        );
        assert_eq!(
            err(
                json!({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": "data:x"}]}]})
            ),
            "messages[0].content[0].image_url must be an object such as {\"url\": \"data:image/png;base64,…\"}"
        );
    }

    #[test]
    fn chat_body_fields() {
        assert_eq!(
            chat_body(&json!({"session": 1, "message": "x"}))
                .unwrap_err()
                .message,
            "session must be a string"
        );
        assert_eq!(
            chat_body(&json!({"session": "a"})).unwrap_err().message,
            "message is required (a string)"
        );
        assert!(chat_body(&json!(null)).is_err());
        assert_eq!(
            chat_body(&json!({"session": "a", "message": "b"})).unwrap(),
            ChatBody {
                session: "a".into(),
                message: "b".into()
            }
        );
    }
}

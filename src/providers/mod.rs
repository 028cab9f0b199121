//! Provider clients: one file per wire API (`anthropic`, `openai`, `responses`,
//! `google`), the shared HTTP plumbing with connect/idle timeouts and no redirects
//! (`http`), streamed replies (`stream`), error classification (`error`) and the provider
//! registry (`registry`).
//! A client receives its credential as an argument on every call; choosing and rotating
//! credentials is the caller's business.

pub mod anthropic;
pub mod error;
#[cfg(test)]
mod fuzz;
pub mod google;
mod http;
pub mod openai;
pub mod registry;
pub mod responses;
mod stream;

pub use error::{ErrorKind, ProviderError};
pub use registry::ProviderSettings;

use crate::auth::credential::Credential;
use crate::config::ApiKind;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    System,
    User,
    Assistant,
}

impl Role {
    /// The wire and storage name (`system`, `user`, `assistant`).
    pub fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
        }
    }

    /// A stored role read back; anything unknown counts as the user's.
    pub fn from_stored(s: &str) -> Role {
        match s {
            "system" => Role::System,
            "assistant" => Role::Assistant,
            _ => Role::User,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ChatMessage {
    pub role: Role,
    pub content: String,
    /// Images sent with a user message (DESIGN §10). Never stored: history keeps a
    /// placeholder in `content` instead.
    #[serde(skip)]
    pub images: Vec<crate::media::ImagePart>,
}

impl ChatMessage {
    pub fn system(text: impl Into<String>) -> Self {
        ChatMessage {
            role: Role::System,
            content: text.into(),
            images: Vec::new(),
        }
    }
    pub fn user(text: impl Into<String>) -> Self {
        ChatMessage {
            role: Role::User,
            content: text.into(),
            images: Vec::new(),
        }
    }
    pub fn assistant(text: impl Into<String>) -> Self {
        ChatMessage {
            role: Role::Assistant,
            content: text.into(),
            images: Vec::new(),
        }
    }
}

/// One model call. System messages in `messages` are folded into the API's system field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatRequest {
    pub model: String,
    pub messages: Vec<ChatMessage>,
    pub max_tokens: u32,
}

impl ChatRequest {
    /// All system messages joined, if any.
    pub fn system_text(&self) -> Option<String> {
        let parts: Vec<&str> = self
            .messages
            .iter()
            .filter(|m| m.role == Role::System)
            .map(|m| m.content.as_str())
            .collect();
        (!parts.is_empty()).then(|| parts.join("\n\n"))
    }

    pub fn turns(&self) -> impl Iterator<Item = &ChatMessage> {
        self.messages.iter().filter(|m| m.role != Role::System)
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Usage {
    pub input_tokens: u64,
    pub output_tokens: u64,
}

impl Usage {
    /// Input plus output tokens, saturating (provider numbers can be anything).
    pub fn total(&self) -> u64 {
        self.input_tokens.saturating_add(self.output_tokens)
    }

    /// Both counts of `self` and `other` added, saturating.
    pub fn saturating_add(self, other: Usage) -> Usage {
        Usage {
            input_tokens: self.input_tokens.saturating_add(other.input_tokens),
            output_tokens: self.output_tokens.saturating_add(other.output_tokens),
        }
    }
}

/// A token count from a provider's JSON: integers as they are, floats rounded down and
/// capped at `u64::MAX`, negative or non-numeric values as 0. Never fails: a strange
/// usage figure must not cost the reply.
pub(crate) fn token_count(v: Option<&serde_json::Value>) -> u64 {
    let Some(v) = v else { return 0 };
    if let Some(n) = v.as_u64() {
        return n;
    }
    match v.as_f64() {
        // `as` saturates: 1e30 becomes u64::MAX; NaN cannot come out of JSON.
        Some(f) if f > 0.0 => f as u64,
        _ => 0,
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Completion {
    pub text: String,
    pub usage: Option<Usage>,
    pub stop_reason: Option<String>,
}

/// Receives text as it streams in.
pub type DeltaSink<'a> = &'a mut (dyn FnMut(&str) + Send);

/// A client for one provider (one base URL, one wire API).
#[derive(Debug, Clone)]
pub struct ProviderClient {
    http: reqwest::Client,
    pub settings: ProviderSettings,
}

impl ProviderClient {
    pub fn new(settings: ProviderSettings) -> Result<ProviderClient, ProviderError> {
        let http = reqwest::Client::builder()
            .connect_timeout(settings.connect_timeout)
            .pool_idle_timeout(std::time::Duration::from_secs(90))
            // A redirect would carry the credential header to wherever it points.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("remoteclaw/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| {
                ProviderError::new(ErrorKind::Unknown, format!("cannot build HTTP client: {e}"))
            })?;
        Ok(ProviderClient { http, settings })
    }

    /// One request, whole reply.
    pub async fn complete(
        &self,
        cred: &Credential,
        req: &ChatRequest,
    ) -> Result<Completion, ProviderError> {
        self.run(cred, req, None).await
    }

    /// One request, streamed: `sink` sees each text delta; the whole reply is returned.
    pub async fn stream(
        &self,
        cred: &Credential,
        req: &ChatRequest,
        sink: DeltaSink<'_>,
    ) -> Result<Completion, ProviderError> {
        self.run(cred, req, Some(sink)).await
    }

    async fn run(
        &self,
        cred: &Credential,
        req: &ChatRequest,
        sink: Option<DeltaSink<'_>>,
    ) -> Result<Completion, ProviderError> {
        // A stream-only backend streams every call; without a sink the deltas go nowhere
        // and the collected reply is returned.
        let mut discard = |_: &str| {};
        let sink: Option<DeltaSink<'_>> = match sink {
            Some(sink) => Some(sink),
            None if self.settings.stream_only => Some(&mut discard),
            None => None,
        };
        let stream = sink.is_some();
        let call = match self.settings.api {
            ApiKind::AnthropicMessages => {
                anthropic::build(&self.http, &self.settings, cred, req, stream)
            }
            ApiKind::OpenaiCompletions => {
                openai::build(&self.http, &self.settings, cred, req, stream)
            }
            ApiKind::OpenaiResponses => {
                responses::build(&self.http, &self.settings, cred, req, stream)
            }
            ApiKind::GoogleGenerative => {
                google::build(&self.http, &self.settings, cred, req, stream)
            }
        };
        let call = self.with_headers(call, cred);
        let result = http::execute(&self.settings, call, sink).await;
        result.map_err(|e| e.scrub(&cred.secret))
    }
}

impl ProviderClient {
    /// The provider's fixed headers, and the account-id header of an OAuth credential.
    fn with_headers(&self, mut call: http::ApiCall, cred: &Credential) -> http::ApiCall {
        for (name, value) in &self.settings.headers {
            call.request = call.request.header(*name, *value);
        }
        if let (Some(name), Some(account)) = (self.settings.account_header, &cred.account_id) {
            call.request = call.request.header(name, account.as_ref());
        }
        call
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn usage_token_sum_saturates() {
        let u = Usage {
            input_tokens: u64::MAX,
            output_tokens: 7,
        };
        assert_eq!(u.total(), u64::MAX);
        assert_eq!(u.saturating_add(u).input_tokens, u64::MAX);
        assert_eq!(u.saturating_add(u).output_tokens, 14);
    }

    #[test]
    fn huge_usage_numbers_do_not_fail_the_reply() {
        let usage = [
            (json!(1e30), u64::MAX),
            (json!(-5), 0),
            (json!(-1.5), 0),
            (json!(2.9), 2),
            (json!("12"), 0),
            (json!(null), 0),
            (json!(u64::MAX), u64::MAX),
        ];
        for (n, want) in usage {
            let body = json!({
                "content": [{"type": "text", "text": "hi"}],
                "stop_reason": "end_turn",
                "usage": {"input_tokens": n, "output_tokens": n}
            });
            let c = anthropic::parse_reply("anthropic", body.to_string().as_bytes())
                .unwrap_or_else(|e| panic!("{n}: {e}"));
            assert_eq!(c.usage.map(|u| u.input_tokens), Some(want), "{n}");
            let body = json!({
                "choices": [{"message": {"content": "hi"}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": n, "completion_tokens": n}
            });
            let c = openai::parse_reply("openai", body.to_string().as_bytes()).unwrap();
            assert_eq!(c.usage.map(|u| u.output_tokens), Some(want), "{n}");
            let body = json!({
                "candidates": [{"content": {"parts": [{"text": "hi"}]}}],
                "usageMetadata": {"promptTokenCount": n, "candidatesTokenCount": n}
            });
            let c = google::parse_reply("google", body.to_string().as_bytes()).unwrap();
            assert_eq!(
                c.usage.map(|u| u.total()),
                Some(want.saturating_mul(2)),
                "{n}"
            );
        }
        // A number too big for u64 written out in full.
        let body = br#"{"content":[],"usage":{"input_tokens":100000000000000000000000000000,"output_tokens":1}}"#;
        let c = anthropic::parse_reply("anthropic", body).unwrap();
        assert_eq!(c.usage.map(|u| u.total()), Some(u64::MAX));
    }
}

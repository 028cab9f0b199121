//! Provider clients: one file per wire API (`anthropic`, `openai`, `google`), the shared
//! HTTP plumbing with connect/idle timeouts (`http`), error classification (`error`) and
//! the provider registry (`registry`). A client receives its credential as an argument
//! on every call; choosing and rotating credentials is the caller's business.

pub mod anthropic;
pub mod error;
pub mod google;
mod http;
pub mod openai;
pub mod registry;

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

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ChatMessage {
    pub role: Role,
    pub content: String,
}

impl ChatMessage {
    pub fn user(text: impl Into<String>) -> Self {
        ChatMessage {
            role: Role::User,
            content: text.into(),
        }
    }
    pub fn assistant(text: impl Into<String>) -> Self {
        ChatMessage {
            role: Role::Assistant,
            content: text.into(),
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
        let stream = sink.is_some();
        let call = match self.settings.api {
            ApiKind::AnthropicMessages => {
                anthropic::build(&self.http, &self.settings, cred, req, stream)
            }
            ApiKind::OpenaiCompletions => {
                openai::build(&self.http, &self.settings, cred, req, stream)
            }
            ApiKind::GoogleGenerative => {
                google::build(&self.http, &self.settings, cred, req, stream)
            }
        };
        let result = http::execute(&self.settings, call, sink).await;
        result.map_err(|e| e.scrub(&cred.secret))
    }
}

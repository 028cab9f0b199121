//! Wire tests: the real reqwest-based provider clients against the loopback fake, for
//! each API — headers, body, replies, streaming, every error kind and the timeouts.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support;

use remoteclaw::auth::{Credential, CredentialKind, CredentialSource};
use remoteclaw::config::ApiKind;
use remoteclaw::providers::{
    ChatMessage, ChatRequest, ErrorKind, ProviderClient, ProviderError, ProviderSettings,
};
use remoteclaw::secret::Secret;
use std::time::Duration;
use support::fake_provider::{Behavior, FakeProvider};

const APIS: [ApiKind; 4] = [
    ApiKind::AnthropicMessages,
    ApiKind::OpenaiCompletions,
    ApiKind::OpenaiResponses,
    ApiKind::GoogleGenerative,
];

fn provider_id(api: ApiKind) -> &'static str {
    match api {
        ApiKind::AnthropicMessages => "anthropic",
        ApiKind::OpenaiCompletions => "openai",
        ApiKind::OpenaiResponses => "openai-responses",
        ApiKind::GoogleGenerative => "google",
    }
}

fn client(fake: &FakeProvider, api: ApiKind) -> ProviderClient {
    let base_url = match api {
        ApiKind::AnthropicMessages => fake.anthropic_base(),
        ApiKind::OpenaiCompletions => fake.openai_base(),
        ApiKind::GoogleGenerative => fake.google_base(),
        ApiKind::OpenaiResponses => fake.responses_base(),
    };
    ProviderClient::new(ProviderSettings {
        id: provider_id(api).into(),
        api,
        base_url,
        connect_timeout: Duration::from_secs(10),
        idle_timeout: Duration::from_secs(60),
        headers: Vec::new(),
        account_header: None,
        stream_only: false,
    })
    .expect("client")
}

fn cred(key: &str) -> Credential {
    Credential {
        id: "test:key".into(),
        provider: "test".into(),
        kind: CredentialKind::ApiKey,
        source: CredentialSource::Env,
        secret: Secret::new(key),
        expires_ms: None,
        account_id: None,
        refresh_fp: None,
    }
}

fn request(model: &str) -> ChatRequest {
    ChatRequest {
        model: model.into(),
        messages: vec![
            ChatMessage::system("be brief"),
            ChatMessage::user("first"),
            ChatMessage::assistant("ok"),
            ChatMessage::user("hello there"),
        ],
        max_tokens: 77,
    }
}

async fn stream_collect(
    c: &ProviderClient,
    key: &str,
    model: &str,
) -> (Result<String, ProviderError>, Vec<String>) {
    let mut deltas = Vec::new();
    let mut sink = |d: &str| deltas.push(d.to_string());
    let r = c
        .stream(&cred(key), &request(model), &mut sink)
        .await
        .map(|c| c.text);
    (r, deltas)
}

#[tokio::test]
async fn anthropic_wire_format_and_api_key_header() {
    let fake = FakeProvider::start().await;
    let c = client(&fake, ApiKind::AnthropicMessages);
    let reply = c
        .complete(&cred("sk-ant-api03-k1"), &request("claude-x"))
        .await
        .expect("reply");
    assert_eq!(reply.text, "fake reply to: hello there");
    assert!(reply.usage.is_some_and(|u| u.output_tokens > 0));
    let r = &fake.requests()[0];
    assert_eq!(r.path, "/v1/messages");
    assert_eq!(r.header("x-api-key"), Some("sk-ant-api03-k1"));
    assert_eq!(r.header("authorization"), None);
    assert_eq!(r.header("anthropic-version"), Some("2023-06-01"));
    assert_eq!(r.body["model"], "claude-x");
    assert_eq!(r.body["max_tokens"], 77);
    assert_eq!(r.body["system"], "be brief");
    assert_eq!(r.body["messages"].as_array().map(Vec::len), Some(3));
    assert_eq!(r.body["messages"][0]["role"], "user");
    assert_eq!(r.body["messages"][1]["role"], "assistant");
    assert!(r.body.get("stream").is_none());
}

#[tokio::test]
async fn anthropic_setup_token_goes_as_bearer_with_oauth_beta() {
    let fake = FakeProvider::start().await;
    let c = client(&fake, ApiKind::AnthropicMessages);
    let token = format!("sk-ant-oat01-{}", "x".repeat(80));
    c.complete(&cred(&token), &request("claude-x"))
        .await
        .expect("reply");
    let r = &fake.requests()[0];
    assert_eq!(
        r.header("authorization"),
        Some(format!("Bearer {token}").as_str())
    );
    assert_eq!(r.header("anthropic-beta"), Some("oauth-2025-04-20"));
    assert_eq!(r.header("x-api-key"), None);
}

#[tokio::test]
async fn openai_wire_format_and_bearer() {
    let fake = FakeProvider::start().await;
    let c = client(&fake, ApiKind::OpenaiCompletions);
    let reply = c
        .complete(&cred("sk-openai-1"), &request("gpt-4o-mini"))
        .await
        .expect("reply");
    assert_eq!(reply.text, "fake reply to: hello there");
    let r = &fake.requests()[0];
    assert_eq!(r.path, "/v1/chat/completions");
    assert_eq!(r.header("authorization"), Some("Bearer sk-openai-1"));
    assert_eq!(r.body["model"], "gpt-4o-mini");
    assert_eq!(r.body["messages"][0]["role"], "system");
    assert_eq!(r.body["messages"].as_array().map(Vec::len), Some(4));
    assert_eq!(
        r.body["max_completion_tokens"], 77,
        "OpenAI proper gets max_completion_tokens"
    );
}

#[tokio::test]
async fn usage_is_reported_for_every_api_plain_and_streamed() {
    let fake = FakeProvider::start().await;
    for api in APIS {
        let c = client(&fake, api);
        fake.script("k-usage", [Behavior::Reply("a b c".into())]);
        let plain = c
            .complete(&cred("k-usage"), &request("m"))
            .await
            .expect("reply");
        fake.script("k-usage", [Behavior::Reply("a b c".into())]);
        let mut sink = |_: &str| {};
        let streamed = c
            .stream(&cred("k-usage"), &request("m"), &mut sink)
            .await
            .expect("stream");
        for (how, reply) in [("plain", plain), ("streamed", streamed)] {
            let u = reply
                .usage
                .unwrap_or_else(|| panic!("{api:?} {how}: no usage"));
            assert!(u.input_tokens > 0, "{api:?} {how}: {u:?}");
            assert_eq!(u.output_tokens, 3, "{api:?} {how}: {u:?}");
        }
    }
}

#[tokio::test]
async fn google_wire_format_and_goog_header() {
    let fake = FakeProvider::start().await;
    let c = client(&fake, ApiKind::GoogleGenerative);
    let reply = c
        .complete(&cred("AIza-test"), &request("gemini-2.5-flash"))
        .await
        .expect("reply");
    assert_eq!(reply.text, "fake reply to: hello there");
    let r = &fake.requests()[0];
    assert_eq!(r.path, "/v1beta/models/gemini-2.5-flash:generateContent");
    assert_eq!(r.header("x-goog-api-key"), Some("AIza-test"));
    assert_eq!(r.body["systemInstruction"]["parts"][0]["text"], "be brief");
    assert_eq!(r.body["contents"][1]["role"], "model");
    assert_eq!(r.body["generationConfig"]["maxOutputTokens"], 77);
}

#[tokio::test]
async fn streaming_delivers_several_deltas_for_every_api() {
    let fake = FakeProvider::start().await;
    for api in APIS {
        fake.script("k-stream", [Behavior::Reply("one two three four".into())]);
        let (text, deltas) = stream_collect(&client(&fake, api), "k-stream", "m").await;
        assert_eq!(text.expect("stream"), "one two three four", "{api:?}");
        assert!(deltas.len() > 1, "{api:?}: {deltas:?}");
        assert_eq!(deltas.concat(), "one two three four");
    }
    let reqs = fake.requests();
    assert_eq!(reqs[0].body["stream"], true);
    assert_eq!(reqs[1].body["stream"], true);
    assert_eq!(reqs[1].body["stream_options"]["include_usage"], true);
    assert_eq!(reqs[2].path, "/v1/responses");
    assert_eq!(reqs[2].body["stream"], true);
    assert_eq!(reqs[2].header("accept"), Some("text/event-stream"));
    assert_eq!(reqs[3].path, "/v1beta/models/m:streamGenerateContent");
    assert_eq!(reqs[3].query.as_deref(), Some("alt=sse"));
}

#[tokio::test]
async fn every_error_kind_is_classified_for_every_api() {
    let fake = FakeProvider::start().await;
    let table: Vec<(Behavior, ErrorKind)> = vec![
        (
            Behavior::RateLimit {
                retry_after_secs: Some(12),
            },
            ErrorKind::RateLimit,
        ),
        (Behavior::Quota, ErrorKind::RateLimit),
        (Behavior::Billing, ErrorKind::Billing),
        (Behavior::Auth, ErrorKind::Auth),
        (Behavior::Overloaded, ErrorKind::Overloaded),
        (
            Behavior::InvalidRequest("messages: bad".into()),
            ErrorKind::Format,
        ),
        (Behavior::ServerError, ErrorKind::Unknown),
        (Behavior::Malformed, ErrorKind::Format),
    ];
    for api in APIS {
        let c = client(&fake, api);
        for (behavior, want) in &table {
            // Google signals billing trouble with FAILED_PRECONDITION text, which we read as format.
            let want = if api == ApiKind::GoogleGenerative && *want == ErrorKind::Billing {
                ErrorKind::Format
            } else {
                *want
            };
            for streaming in [false, true] {
                fake.script("k-err", [behavior.clone()]);
                let err = if streaming {
                    stream_collect(&c, "k-err", "m").await.0.unwrap_err()
                } else {
                    c.complete(&cred("k-err"), &request("m")).await.unwrap_err()
                };
                assert_eq!(
                    err.kind, want,
                    "{api:?} {behavior:?} stream={streaming}: {}",
                    err.message
                );
                assert!(err.message.starts_with(provider_id(api)), "{}", err.message);
                if matches!(behavior, Behavior::RateLimit { .. }) {
                    assert_eq!(err.retry_after, Some(Duration::from_secs(12)), "{api:?}");
                }
            }
        }
    }
}

#[tokio::test]
async fn claude_code_only_reply_tells_operator_to_use_an_api_key() {
    let fake = FakeProvider::start().await;
    fake.script("sk-ant-oat01-x", [Behavior::ClaudeCodeOnly]);
    let err = client(&fake, ApiKind::AnthropicMessages)
        .complete(&cred("sk-ant-oat01-x"), &request("m"))
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Auth);
    assert!(
        err.message.contains("Use an Anthropic API key"),
        "{}",
        err.message
    );
}

#[tokio::test]
async fn error_inside_a_stream_ends_the_turn_with_that_error() {
    let fake = FakeProvider::start().await;
    // Each fake sends its API's real in-stream error: Anthropic `overloaded_error`,
    // OpenAI `server_error`, Responses `response.failed` with `server_error`, Google
    // `UNAVAILABLE`.
    let expected = [
        ErrorKind::Overloaded,
        ErrorKind::Unknown,
        ErrorKind::Unknown,
        ErrorKind::Overloaded,
    ];
    for (api, want) in APIS.into_iter().zip(expected) {
        fake.script("k-mid", [Behavior::ErrorMidStream("partial answer".into())]);
        let (r, deltas) = stream_collect(&client(&fake, api), "k-mid", "m").await;
        let err = r.unwrap_err();
        assert_eq!(err.kind, want, "{api:?}: {}", err.message);
        assert!(
            !deltas.is_empty(),
            "{api:?}: text before the error was delivered"
        );
    }
}

#[tokio::test]
async fn secret_is_scrubbed_from_error_messages() {
    let fake = FakeProvider::start().await;
    let key = "sk-canary-SECRET-123456";
    fake.script(key, [Behavior::Raw { status: 401, content_type: "application/json".into(), body: format!(r#"{{"error":{{"message":"Incorrect API key provided: {key}","type":"invalid_request_error","code":"invalid_api_key"}}}}"#), headers: vec![] }]);
    let err = client(&fake, ApiKind::OpenaiCompletions)
        .complete(&cred(key), &request("m"))
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Auth);
    assert!(!err.message.contains(key), "{}", err.message);
    assert!(!format!("{err:?}").contains(key));
}

#[tokio::test]
async fn connection_refused_is_a_clear_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    let c = ProviderClient::new(ProviderSettings {
        id: "openai".into(),
        api: ApiKind::OpenaiCompletions,
        base_url: format!("http://{addr}/v1"),
        connect_timeout: Duration::from_secs(10),
        idle_timeout: Duration::from_secs(60),
        headers: Vec::new(),
        account_header: None,
        stream_only: false,
    })
    .expect("client");
    let err = c.complete(&cred("k"), &request("m")).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Unknown);
    assert!(err.message.contains("cannot connect"), "{}", err.message);
}

/// Timeouts run on paused tokio time: the stalled fake never answers and the clock
/// jumps straight to the idle deadline, so no test waits a minute.
mod timeouts {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn stall_before_first_byte_times_out() {
        let fake = FakeProvider::start().await;
        for api in APIS {
            fake.script("k-stall", [Behavior::Stall]);
            let err = client(&fake, api)
                .complete(&cred("k-stall"), &request("m"))
                .await
                .unwrap_err();
            assert_eq!(err.kind, ErrorKind::Timeout, "{api:?}: {}", err.message);
            assert!(err.message.contains("idleTimeoutSecs"), "{}", err.message);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn stream_that_goes_quiet_times_out() {
        let fake = FakeProvider::start().await;
        for api in APIS {
            fake.script("k-quiet", [Behavior::StallMidStream("half an".into())]);
            let (r, deltas) = stream_collect(&client(&fake, api), "k-quiet", "m").await;
            let err = r.unwrap_err();
            assert_eq!(err.kind, ErrorKind::Timeout, "{api:?}: {}", err.message);
            assert_eq!(deltas.concat(), "half an", "{api:?}");
        }
    }
}

//! Wire tests specific to the `openai-responses` API (the cross-API ones are in
//! `providers.rs`): the request body, the openai-codex settings (preset headers, account
//! id, streaming a plain call), the ChatGPT backend's `{"detail": ...}` errors, Codex
//! usage limits, errors inside a stream (`response.failed`, `error`), error bodies with
//! status 200, incomplete responses, and config to reply through the engine — the real
//! client against the loopback fake.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support;

use remoteclaw::auth::{Credential, CredentialKind, CredentialSource};
use remoteclaw::config::ApiKind;
use remoteclaw::providers::{
    ChatMessage, ChatRequest, Completion, ErrorKind, ProviderClient, ProviderError,
    ProviderSettings,
};
use remoteclaw::secret::Secret;
use std::time::Duration;
use support::fake_provider::{Behavior, FakeProvider, RawChunks};

/// A JWT-shaped bearer, as an OAuth access token is.
const KEY: &str = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ0ZXN0In0.c2lnbmF0dXJl";

fn client(fake: &FakeProvider) -> ProviderClient {
    ProviderClient::new(ProviderSettings {
        id: "openai-codex".into(),
        api: ApiKind::OpenaiResponses,
        base_url: fake.responses_base(),
        connect_timeout: Duration::from_secs(10),
        idle_timeout: Duration::from_secs(60),
        headers: Vec::new(),
        account_header: None,
        stream_only: false,
    })
    .expect("client")
}

fn cred() -> Credential {
    cred_for(KEY)
}

fn cred_for(key: &str) -> Credential {
    Credential {
        id: "openai-codex:me@example.com".into(),
        provider: "openai-codex".into(),
        kind: CredentialKind::Oauth,
        source: CredentialSource::Profile,
        secret: Secret::new(key),
        expires_ms: None,
        account_id: None,
        refresh_fp: None,
    }
}

/// A system prompt and three turns.
fn conversation(model: &str) -> ChatRequest {
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

fn request() -> ChatRequest {
    ChatRequest {
        model: "gpt-5.1-codex".into(),
        messages: vec![ChatMessage::user("hello")],
        max_tokens: 16,
    }
}

async fn both(c: &ProviderClient) -> [Result<Completion, ProviderError>; 2] {
    let plain = c.complete(&cred(), &request()).await;
    let mut sink = |_: &str| {};
    let streamed = c.stream(&cred(), &request(), &mut sink).await;
    [plain, streamed]
}

#[tokio::test]
async fn openai_responses_wire_format_and_bearer() {
    let fake = FakeProvider::start().await;
    let c = client(&fake);
    let reply = c
        .complete(&cred_for("sk-openai-1"), &conversation("gpt-5"))
        .await
        .expect("reply");
    assert_eq!(reply.text, "fake reply to: hello there");
    assert_eq!(reply.stop_reason.as_deref(), Some("completed"));
    let r = &fake.requests()[0];
    assert_eq!(r.path, "/v1/responses");
    assert_eq!(r.header("authorization"), Some("Bearer sk-openai-1"));
    assert_eq!(r.header("accept"), Some("application/json"));
    assert_eq!(r.body["model"], "gpt-5");
    assert_eq!(r.body["instructions"], "be brief");
    assert_eq!(r.body["store"], false);
    assert_eq!(r.body["max_output_tokens"], 77);
    assert!(r.body.get("stream").is_none());
    assert!(!r.stream);
    let input = r.body["input"].as_array().expect("input items");
    let roles: Vec<(&str, &str)> = input
        .iter()
        .map(|i| {
            (
                i["role"].as_str().unwrap(),
                i["content"][0]["type"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        roles,
        [
            ("user", "input_text"),
            ("assistant", "output_text"),
            ("user", "input_text")
        ]
    );
    assert!(input.iter().all(|i| i["type"] == "message"));
}

/// The ChatGPT Codex backend as the openai-codex preset configures it: fixed headers,
/// the account id header, and streaming even for a call without a sink.
#[tokio::test]
async fn codex_settings_send_headers_and_stream_a_plain_call() {
    let fake = FakeProvider::start().await;
    fake.script(
        "eyJhbGciOi.eyJzdWIiOi.c2ln",
        [Behavior::Reply("one two three".into())],
    );
    let c = ProviderClient::new(ProviderSettings {
        id: "openai-codex".into(),
        api: ApiKind::OpenaiResponses,
        base_url: fake.responses_base(),
        connect_timeout: Duration::from_secs(10),
        idle_timeout: Duration::from_secs(60),
        headers: vec![
            ("OpenAI-Beta", "responses=experimental"),
            ("originator", "codex_cli_rs"),
        ],
        account_header: Some("chatgpt-account-id"),
        stream_only: true,
    })
    .expect("client");
    let mut cred = cred_for("eyJhbGciOi.eyJzdWIiOi.c2ln");
    cred.account_id = Some("acct-123".into());
    let reply = c
        .complete(&cred, &conversation("gpt-5.1-codex"))
        .await
        .expect("reply");
    assert_eq!(reply.text, "one two three");
    assert!(reply.usage.is_some_and(|u| u.output_tokens > 0));
    let r = &fake.requests()[0];
    assert_eq!(r.path, "/v1/responses");
    assert!(
        r.stream,
        "a stream-only backend gets stream: true on complete"
    );
    assert_eq!(r.body["stream"], true);
    assert!(
        r.body.get("max_output_tokens").is_none(),
        "the Codex backend refuses an output-token limit: {}",
        r.body
    );
    assert_eq!(r.header("accept"), Some("text/event-stream"));
    assert_eq!(r.header("chatgpt-account-id"), Some("acct-123"));
    assert_eq!(r.header("openai-beta"), Some("responses=experimental"));
    assert_eq!(r.header("originator"), Some("codex_cli_rs"));
    assert_eq!(
        r.header("authorization"),
        Some("Bearer eyJhbGciOi.eyJzdWIiOi.c2ln")
    );
    assert_eq!(r.body["instructions"], "be brief");

    // Without a system prompt the backend still gets instructions (it requires them).
    let bare = ChatRequest {
        model: "gpt-5.1-codex".into(),
        messages: vec![ChatMessage::user("hi")],
        max_tokens: 10,
    };
    c.complete(&cred, &bare).await.expect("reply");
    let r = &fake.requests()[1];
    assert!(
        r.body["instructions"]
            .as_str()
            .is_some_and(|s| !s.is_empty()),
        "{}",
        r.body
    );
}

fn json_error(status: u16, body: &str) -> Behavior {
    Behavior::RawChunks(RawChunks::ok("application/json", body).status(status))
}

#[tokio::test]
async fn chatgpt_detail_errors_keep_the_status_class() {
    let fake = FakeProvider::start().await;
    let cases = [
        (429, "Too many requests, slow down", ErrorKind::RateLimit),
        (
            401,
            "Could not parse your authentication token",
            ErrorKind::Auth,
        ),
        (403, "Forbidden", ErrorKind::Auth),
        (400, "Instructions are required", ErrorKind::Format),
    ];
    let c = client(&fake);
    for (status, detail, want) in cases {
        let body = serde_json::json!({ "detail": detail }).to_string();
        fake.script(KEY, [json_error(status, &body), json_error(status, &body)]);
        for r in both(&c).await {
            let e = r.unwrap_err();
            assert_eq!(e.kind, want, "{status}: {}", e.message);
            assert_eq!(e.status, Some(status));
            assert!(
                e.message.starts_with("openai-codex: ") && e.message.ends_with(detail),
                "the detail is the message: {}",
                e.message
            );
        }
    }
}

#[tokio::test]
async fn codex_usage_limit_cools_down_until_the_reset() {
    let fake = FakeProvider::start().await;
    let body = r#"{"error":{"type":"usage_limit_reached","message":"The usage limit has been reached","plan_type":"plus","resets_in_seconds":5400}}"#;
    fake.script(KEY, [json_error(429, body)]);
    let e = client(&fake)
        .complete(&cred(), &request())
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::RateLimit, "{}", e.message);
    assert_eq!(e.retry_after, Some(Duration::from_secs(5400)));
    assert!(!e.is_quota());
}

fn sse(events: &[serde_json::Value]) -> Behavior {
    let mut body = String::new();
    for e in events {
        body.push_str(&format!(
            "event: {}\ndata: {e}\n\n",
            e["type"].as_str().unwrap()
        ));
    }
    Behavior::RawChunks(RawChunks::sse(body))
}

#[tokio::test]
async fn errors_inside_a_stream_are_classified_like_openai() {
    use serde_json::json;
    let fake = FakeProvider::start().await;
    let delta = json!({"type": "response.output_text.delta", "delta": "partial "});
    let failed = |code: &str, message: &str| {
        json!({"type": "response.failed", "response": {"status": "failed",
            "error": {"code": code, "message": message}}})
    };
    let cases = [
        (
            failed(
                "rate_limit_exceeded",
                "Rate limit reached. Please try again in 3s.",
            ),
            ErrorKind::RateLimit,
            Some(Duration::from_secs(3)),
            false,
        ),
        (
            failed("insufficient_quota", "You exceeded your current quota."),
            ErrorKind::RateLimit,
            None,
            true,
        ),
        (
            json!({"type": "error", "code": "rate_limit_exceeded", "message": "slow down", "param": null}),
            ErrorKind::RateLimit,
            None,
            false,
        ),
        (
            json!({"type": "error", "code": "invalid_api_key", "message": "bad token"}),
            ErrorKind::Auth,
            None,
            false,
        ),
    ];
    let c = client(&fake);
    for (event, want, hint, quota) in cases {
        fake.script(KEY, [sse(&[delta.clone(), event.clone()])]);
        let mut seen = String::new();
        let mut sink = |d: &str| seen.push_str(d);
        let e = c.stream(&cred(), &request(), &mut sink).await.unwrap_err();
        assert_eq!(e.kind, want, "{event}: {}", e.message);
        assert_eq!(e.retry_after, hint, "{event}");
        assert_eq!(e.is_quota(), quota, "{event}");
        assert_eq!(seen, "partial ", "text before the error was delivered");
        assert!(e.message.starts_with("openai-codex: "), "{}", e.message);
    }
}

#[tokio::test]
async fn an_error_body_with_status_200_is_classified() {
    let fake = FakeProvider::start().await;
    let body = r#"{"id":"resp_1","status":"failed","error":{"code":"rate_limit_exceeded","message":"Please try again in 2s."},"output":[]}"#;
    fake.script(KEY, [json_error(200, body)]);
    let e = client(&fake)
        .complete(&cred(), &request())
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::RateLimit, "{}", e.message);
    assert_eq!(e.retry_after, Some(Duration::from_secs(2)));
}

#[tokio::test]
async fn an_incomplete_response_ends_with_its_reason() {
    use serde_json::json;
    let fake = FakeProvider::start().await;
    let body = json!({"status": "incomplete", "incomplete_details": {"reason": "max_output_tokens"},
        "output": [{"type": "message", "content": [{"type": "output_text", "text": "cut sho"}]}],
        "usage": {"input_tokens": 5, "output_tokens": 16}});
    fake.script(KEY, [json_error(200, &body.to_string())]);
    let c = client(&fake);
    let reply = c.complete(&cred(), &request()).await.expect("reply");
    assert_eq!(reply.text, "cut sho");
    assert_eq!(reply.stop_reason.as_deref(), Some("max_output_tokens"));
    assert_eq!(reply.usage.map(|u| u.output_tokens), Some(16));

    fake.script(
        KEY,
        [sse(&[
            json!({"type": "response.output_text.delta", "delta": "cut sho"}),
            json!({"type": "response.incomplete", "response": {"status": "incomplete",
                "incomplete_details": {"reason": "max_output_tokens"},
                "usage": {"input_tokens": 5, "output_tokens": 16}}}),
        ])],
    );
    let mut sink = |_: &str| {};
    let reply = c
        .stream(&cred(), &request(), &mut sink)
        .await
        .expect("reply");
    assert_eq!(reply.text, "cut sho");
    assert_eq!(reply.stop_reason.as_deref(), Some("max_output_tokens"));
}

#[tokio::test]
async fn any_bearer_value_is_the_fakes_key() {
    let fake = FakeProvider::start().await;
    fake.script(KEY, [Behavior::Reply("scripted for the token".into())]);
    let reply = client(&fake)
        .complete(&cred(), &request())
        .await
        .expect("reply");
    assert_eq!(reply.text, "scripted for the token");
    assert_eq!(fake.requests_for_key(KEY).len(), 1);
}

/// Config to reply: `api = "openai-responses"` on a provider of one's own, and the
/// `openai-codex` preset with its base URL moved to the fake, through the turn engine.
#[tokio::test]
async fn configured_responses_providers_answer_turns() {
    use remoteclaw::engine::TurnInput;
    use support::home::TestHome;
    let fake = FakeProvider::start().await;
    let mut home = TestHome::new(&format!(
        r#"[agents.defaults.model]
primary = "myopenai/gpt-5"

[models.providers.myopenai]
baseUrl = "{base}"
api = "openai-responses"

[models.providers.openai-codex]
baseUrl = "{base}"
"#,
        base = fake.responses_base()
    ));
    home.set("MYOPENAI_API_KEY", "k-mine")
        .set("OPENAI_CODEX_API_KEY", "k-codex");
    let app = home.app().await;
    let input = |model: Option<&str>| TurnInput {
        model: model.map(|m| remoteclaw::catalog::ModelRef::parse(m, "openai").expect("model")),
        pin: None,
        messages: vec![ChatMessage::user("hello")],
        agent: None,
        system: None,
    };
    let result = app.engine.run_turn(input(None), None).await;
    assert!(result.error.is_none(), "{:?}", result.error);
    assert_eq!(result.reply, "fake reply to: hello");
    let r = &fake.requests_for_key("k-mine")[0];
    assert_eq!(r.path, "/v1/responses");
    assert!(!r.stream);
    assert!(r.body.get("max_output_tokens").is_some());

    let result = app
        .engine
        .run_turn(input(Some("openai-codex/gpt-5.1-codex")), None)
        .await;
    assert!(result.error.is_none(), "{:?}", result.error);
    assert_eq!(result.reply, "fake reply to: hello");
    let r = &fake.requests_for_key("k-codex")[0];
    assert!(r.stream, "the codex preset streams every call");
    assert!(r.body.get("max_output_tokens").is_none());
    assert_eq!(r.header("openai-beta"), Some("responses=experimental"));
}

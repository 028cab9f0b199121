//! Hostile providers (DESIGN §8): the real reqwest clients and the turn engine against a
//! loopback fake that answers with bytes of every shape — garbage, truncated SSE, huge
//! numbers, invalid UTF-8, stalled and trickling streams, redirects, absurd retry hints.
//! Every case ends as a reply or a clear error (kind + message naming the provider),
//! never a panic, a hang or a credential sent elsewhere. Timing runs on paused tokio time.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support;

use remoteclaw::auth::{Credential, CredentialKind, CredentialSource};
use remoteclaw::config::ApiKind;
use remoteclaw::engine::{TurnError, TurnInput};
use remoteclaw::providers::{
    ChatMessage, ChatRequest, Completion, ErrorKind, ProviderClient, ProviderError,
    ProviderSettings,
};
use remoteclaw::secret::Secret;
use std::time::Duration;
use support::fake_provider::{Behavior, FakeProvider, RawChunks};
use support::home::TestHome;

const APIS: [ApiKind; 4] = [
    ApiKind::AnthropicMessages,
    ApiKind::OpenaiCompletions,
    ApiKind::OpenaiResponses,
    ApiKind::GoogleGenerative,
];

const KEY: &str = "k-hostile";

fn provider_id(api: ApiKind) -> &'static str {
    match api {
        ApiKind::AnthropicMessages => "anthropic",
        ApiKind::OpenaiCompletions => "openai",
        ApiKind::OpenaiResponses => "openai-responses",
        ApiKind::GoogleGenerative => "google",
    }
}

fn base_url(fake: &FakeProvider, api: ApiKind) -> String {
    match api {
        ApiKind::AnthropicMessages => fake.anthropic_base(),
        ApiKind::OpenaiCompletions => fake.openai_base(),
        ApiKind::OpenaiResponses => fake.responses_base(),
        ApiKind::GoogleGenerative => fake.google_base(),
    }
}

fn client_with_idle(fake: &FakeProvider, api: ApiKind, idle: Duration) -> ProviderClient {
    ProviderClient::new(ProviderSettings {
        id: provider_id(api).into(),
        api,
        base_url: base_url(fake, api),
        connect_timeout: Duration::from_secs(10),
        idle_timeout: idle,
        headers: Vec::new(),
        account_header: None,
        stream_only: false,
    })
    .expect("client")
}

fn client(fake: &FakeProvider, api: ApiKind) -> ProviderClient {
    client_with_idle(fake, api, Duration::from_secs(60))
}

fn cred() -> Credential {
    Credential {
        id: "test:key".into(),
        provider: "test".into(),
        kind: CredentialKind::ApiKey,
        source: CredentialSource::Env,
        secret: Secret::new(KEY),
        expires_ms: None,
        account_id: None,
        refresh_fp: None,
    }
}

fn request() -> ChatRequest {
    ChatRequest {
        model: "m".into(),
        messages: vec![ChatMessage::user("hello")],
        max_tokens: 16,
    }
}

async fn complete(c: &ProviderClient) -> Result<Completion, ProviderError> {
    c.complete(&cred(), &request()).await
}

async fn stream(c: &ProviderClient) -> (Result<Completion, ProviderError>, String) {
    let mut seen = String::new();
    let mut sink = |d: &str| seen.push_str(d);
    let r = c.stream(&cred(), &request(), &mut sink).await;
    (r, seen)
}

/// The error of `r`, checked to name the provider and not to leak the key.
#[track_caller]
fn clear_error(api: ApiKind, r: Result<Completion, ProviderError>) -> ProviderError {
    let e = match r {
        Ok(c) => panic!("{api:?}: expected an error, got {c:?}"),
        Err(e) => e,
    };
    assert!(
        e.message.starts_with(&format!("{}:", provider_id(api))),
        "{api:?}: the message names the provider: {}",
        e.message
    );
    assert!(!e.message.contains(KEY), "{}", e.message);
    e
}

/// A complete, valid stream replying "hello world" in the API's SSE format.
fn valid_sse(api: ApiKind) -> String {
    match api {
        ApiKind::AnthropicMessages => concat!(
            "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":3}}}\n\n",
            "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"delta\":{\"type\":\"text_delta\",\"text\":\"hello \"}}\n\n",
            "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"delta\":{\"type\":\"text_delta\",\"text\":\"world\"}}\n\n",
            "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":2}}\n\n",
            "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
        ),
        ApiKind::OpenaiCompletions => concat!(
            "data: {\"choices\":[{\"delta\":{\"content\":\"hello \"}}]}\n\n",
            "data: {\"choices\":[{\"delta\":{\"content\":\"world\"},\"finish_reason\":\"stop\"}]}\n\n",
            "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":2}}\n\n",
            "data: [DONE]\n\n",
        ),
        ApiKind::GoogleGenerative => concat!(
            "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"hello \"}]}}]}\n\n",
            "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"world\"}]},\"finishReason\":\"STOP\"}],\"usageMetadata\":{\"promptTokenCount\":3,\"candidatesTokenCount\":2}}\n\n",
        ),
        ApiKind::OpenaiResponses => concat!(
            "event: response.created\ndata: {\"type\":\"response.created\",\"response\":{\"status\":\"in_progress\",\"output\":[]}}\n\n",
            "event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"delta\":\"hello \"}\n\n",
            "event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"delta\":\"world\"}\n\n",
            "event: response.completed\ndata: {\"type\":\"response.completed\",\"response\":{\"status\":\"completed\",\"usage\":{\"input_tokens\":3,\"output_tokens\":2}}}\n\n",
        ),
    }
    .to_string()
}

/// A plain JSON reply with `usage` numbers `n` in the API's shape.
fn json_reply_with_usage(api: ApiKind, n: &str) -> String {
    match api {
        ApiKind::AnthropicMessages => format!(
            r#"{{"content":[{{"type":"text","text":"hi"}}],"stop_reason":"end_turn","usage":{{"input_tokens":{n},"output_tokens":{n}}}}}"#
        ),
        ApiKind::OpenaiCompletions => format!(
            r#"{{"choices":[{{"message":{{"content":"hi"}},"finish_reason":"stop"}}],"usage":{{"prompt_tokens":{n},"completion_tokens":{n}}}}}"#
        ),
        ApiKind::GoogleGenerative => format!(
            r#"{{"candidates":[{{"content":{{"parts":[{{"text":"hi"}}]}},"finishReason":"STOP"}}],"usageMetadata":{{"promptTokenCount":{n},"candidatesTokenCount":{n}}}}}"#
        ),
        ApiKind::OpenaiResponses => format!(
            r#"{{"object":"response","status":"completed","output":[{{"type":"reasoning","summary":[]}},{{"type":"message","content":[{{"type":"output_text","text":"hi"}}]}}],"usage":{{"input_tokens":{n},"output_tokens":{n}}}}}"#
        ),
    }
}

// ------------------------------------------------------------------ garbage

#[tokio::test]
async fn garbage_bodies_are_format_errors() {
    let fake = FakeProvider::start().await;
    let bodies: [&[u8]; 6] = [
        b"",
        b"\x00\xff\xfe garbage \x80",
        b"<html>hello</html>",
        b"[1,2,3]",
        b"{\"choices\":\"no\",\"content\":7,\"candidates\":{}}",
        b"\"just a string\"",
    ];
    for api in APIS {
        for body in bodies {
            fake.script(
                KEY,
                [Behavior::RawChunks(RawChunks::ok("application/json", body))],
            );
            let e = clear_error(api, complete(&client(&fake, api)).await);
            assert_eq!(e.kind, ErrorKind::Format, "{api:?} {body:?}: {}", e.message);
        }
    }
}

#[tokio::test]
async fn garbage_and_invalid_utf8_in_a_stream_are_errors() {
    let fake = FakeProvider::start().await;
    let bodies: [&[u8]; 5] = [
        b"data: {not json}\n\n",
        b"data: \xff\xfe\x80\n\n",
        b"event: \xc3\x28\ndata: {}\n\n",
        b"\x00\x01\x02\x03 no newline at all",
        b"data: [1,2\n\n",
    ];
    for api in APIS {
        for body in bodies {
            fake.script(KEY, [Behavior::RawChunks(RawChunks::sse(body))]);
            let (r, _) = stream(&client(&fake, api)).await;
            let e = clear_error(api, r);
            assert!(
                matches!(e.kind, ErrorKind::Format | ErrorKind::Unknown),
                "{api:?} {body:?}: {e:?}"
            );
        }
    }
}

#[tokio::test]
async fn truncated_sse_is_an_error_after_the_text_so_far() {
    let fake = FakeProvider::start().await;
    for api in APIS {
        let full = valid_sse(api);
        // Cut in the middle of the second event.
        let cut = full.find("world").expect("second delta") + 2;
        fake.script(
            KEY,
            [Behavior::RawChunks(RawChunks::sse(&full.as_bytes()[..cut]))],
        );
        let (r, seen) = stream(&client(&fake, api)).await;
        let e = clear_error(api, r);
        assert_eq!(e.kind, ErrorKind::Unknown, "{api:?}: {}", e.message);
        assert!(e.message.contains("closed the stream"), "{}", e.message);
        assert_eq!(seen, "hello ", "{api:?}");
    }
}

#[tokio::test]
async fn huge_numbers_in_usage_do_not_fail_the_reply() {
    let fake = FakeProvider::start().await;
    for api in APIS {
        for n in ["1e30", "-7", "100000000000000000000000000000", "1.5"] {
            fake.script(
                KEY,
                [Behavior::RawChunks(RawChunks::ok(
                    "application/json",
                    json_reply_with_usage(api, n),
                ))],
            );
            let c = complete(&client(&fake, api))
                .await
                .unwrap_or_else(|e| panic!("{api:?} {n}: {e}"));
            assert_eq!(c.text, "hi");
            let u = c.usage.expect("usage");
            let _ = u.total(); // saturates, never overflows
        }
        let sse = valid_sse(api)
            .replace(":3", ":1e30")
            .replace(":2", ":18446744073709551616");
        fake.script(KEY, [Behavior::RawChunks(RawChunks::sse(sse))]);
        let (r, seen) = stream(&client(&fake, api)).await;
        let c = r.unwrap_or_else(|e| panic!("{api:?}: {e}"));
        assert_eq!(
            (c.text.as_str(), seen.as_str()),
            ("hello world", "hello world")
        );
        assert_eq!(c.usage.map(|u| u.total()), Some(u64::MAX), "{api:?}");
    }
}

#[tokio::test]
async fn an_endless_line_is_cut_off_at_the_size_cap() {
    let fake = FakeProvider::start().await;
    for api in APIS {
        let mut chunks = RawChunks::sse(b"data: ".to_vec());
        chunks
            .frames
            .extend(std::iter::repeat_n(vec![b'x'; 256 * 1024], 5));
        chunks.then_stall = true;
        fake.script(KEY, [Behavior::RawChunks(chunks)]);
        let (r, _) = stream(&client(&fake, api)).await;
        let e = clear_error(api, r);
        assert_eq!(e.kind, ErrorKind::Format, "{}", e.message);
        assert!(e.message.contains("a line over 1 MiB"), "{}", e.message);
    }
}

// ------------------------------------------------------------------ retry hints

#[tokio::test]
async fn retry_after_ms_1e30_over_http_is_clamped_to_a_day() {
    let fake = FakeProvider::start().await;
    let day = Some(Duration::from_secs(24 * 3600));
    for api in APIS {
        for (name, value) in [
            ("retry-after-ms", "1e30"),
            ("retry-after", "1e30"),
            ("retry-after", "Fri, 31 Dec 9999 23:59:59 GMT"),
        ] {
            fake.script(
                KEY,
                [Behavior::RawChunks(
                    RawChunks::ok("application/json", "{}")
                        .status(429)
                        .header(name, value),
                )],
            );
            let e = clear_error(api, complete(&client(&fake, api)).await);
            assert_eq!(e.kind, ErrorKind::RateLimit, "{api:?}");
            assert_eq!(e.retry_after, day, "{api:?} {name}: {value}");
        }
        fake.script(
            KEY,
            [Behavior::RawChunks(
                RawChunks::ok(
                    "application/json",
                    r#"{"error":{"message":"Rate limit reached. Please try again in 1e30ms.","code":"rate_limit_exceeded"}}"#,
                )
                .status(429),
            )],
        );
        let e = clear_error(api, complete(&client(&fake, api)).await);
        assert_eq!(e.retry_after, day, "{api:?} text hint");
        fake.script(
            KEY,
            [Behavior::RawChunks(
                RawChunks::ok("application/json", "{}")
                    .status(429)
                    .header("retry-after-ms", "-5")
                    .header("retry-after", "NaN"),
            )],
        );
        let e = clear_error(api, complete(&client(&fake, api)).await);
        assert_eq!(e.retry_after, None, "{api:?}: nonsense hints are ignored");
    }
}

// ------------------------------------------------------------------ redirects

#[tokio::test]
async fn redirect_is_not_followed_and_keys_stay_home() {
    let fake = FakeProvider::start().await;
    let elsewhere = FakeProvider::start().await;
    for api in APIS {
        for status in [301, 302, 303, 307, 308] {
            let target = format!("{}/v1/messages", elsewhere.url());
            fake.script(
                KEY,
                [Behavior::RawChunks(
                    RawChunks::ok("text/plain", "moved")
                        .status(status)
                        .header("location", &target),
                )],
            );
            let e = clear_error(api, complete(&client(&fake, api)).await);
            assert!(
                matches!(e.kind, ErrorKind::Unknown | ErrorKind::Format),
                "{api:?} {status}: {e:?}"
            );
            assert_eq!(e.retry_after, None);
            assert!(
                e.message.contains(&status.to_string()),
                "names the status: {}",
                e.message
            );
            assert!(
                e.message.contains(&elsewhere.addr.to_string()),
                "names the target host: {}",
                e.message
            );
        }
        // A streamed request is not followed either.
        fake.script(
            KEY,
            [Behavior::RawChunks(
                RawChunks::ok("text/plain", "")
                    .status(307)
                    .header("location", &elsewhere.url()),
            )],
        );
        let (r, _) = stream(&client(&fake, api)).await;
        clear_error(api, r);
    }
    assert_eq!(
        elsewhere.request_count(),
        0,
        "no request, and so no credential, reached the other host"
    );
    assert_eq!(fake.request_count(), APIS.len() * 6);
}

// ------------------------------------------------------------------ stalls and trickles

#[tokio::test(start_paused = true)]
async fn stalled_stream_times_out_on_the_idle_timer() {
    let fake = FakeProvider::start().await;
    for api in APIS {
        let full = valid_sse(api);
        let cut = full.find("world").expect("second delta") - 10;
        fake.script(
            KEY,
            [Behavior::RawChunks(
                RawChunks::sse(&full.as_bytes()[..cut]).stall(),
            )],
        );
        let started = tokio::time::Instant::now();
        let (r, seen) = stream(&client_with_idle(&fake, api, Duration::from_secs(5))).await;
        let e = clear_error(api, r);
        assert_eq!(e.kind, ErrorKind::Timeout, "{api:?}: {}", e.message);
        assert!(e.message.contains("idleTimeoutSecs"), "{}", e.message);
        assert_eq!(seen, "hello ");
        assert!(started.elapsed() < Duration::from_secs(6));
    }
}

#[tokio::test(start_paused = true)]
async fn idle_timer_is_reset_by_any_byte() {
    let fake = FakeProvider::start().await;
    for api in APIS {
        // One byte every 3 s with a 5 s idle timeout: each event takes far longer than
        // 5 s to arrive, but the provider is never silent for 5 s.
        fake.script(
            KEY,
            [Behavior::RawChunks(
                RawChunks::sse(valid_sse(api)).trickle(Duration::from_secs(3)),
            )],
        );
        let (r, seen) = stream(&client_with_idle(&fake, api, Duration::from_secs(5))).await;
        let c = r.unwrap_or_else(|e| panic!("{api:?}: {e}"));
        assert_eq!(c.text, "hello world");
        assert_eq!(seen, "hello world");
    }
}

#[tokio::test(start_paused = true)]
async fn idle_timer_applies_to_a_trickled_plain_reply_too() {
    let fake = FakeProvider::start().await;
    for api in APIS {
        fake.script(
            KEY,
            [Behavior::RawChunks(
                RawChunks::ok("application/json", json_reply_with_usage(api, "1"))
                    .trickle(Duration::from_secs(3)),
            )],
        );
        let c = complete(&client_with_idle(&fake, api, Duration::from_secs(5)))
            .await
            .unwrap_or_else(|e| panic!("{api:?}: {e}"));
        assert_eq!(c.text, "hi");
    }
}

// ------------------------------------------------------------------ the turn deadline

/// A home whose primary model is `anthropic/m` (fallback `openai/m`) at the fake, with
/// `turnTimeoutSecs` and the providers' idle timeout.
fn deadline_home(fake: &FakeProvider, turn_secs: u64, idle_secs: u64) -> TestHome {
    let mut home = TestHome::new(&format!(
        r#"[agents.defaults]
turnTimeoutSecs = {turn_secs}

[agents.defaults.model]
primary = "anthropic/m"
fallbacks = ["openai/m"]

[models.providers.anthropic]
baseUrl = "{}"
idleTimeoutSecs = {idle_secs}

[models.providers.openai]
baseUrl = "{}"
idleTimeoutSecs = {idle_secs}
"#,
        fake.anthropic_base(),
        fake.openai_base()
    ));
    home.set("ANTHROPIC_API_KEY", KEY)
        .set("OPENAI_API_KEY", KEY);
    home
}

fn input() -> TurnInput {
    TurnInput {
        model: None,
        pin: None,
        messages: vec![ChatMessage::user("hello")],
        agent: None,
        system: None,
    }
}

#[track_caller]
fn assert_turn_timeout(error: Option<&TurnError>, secs: u64) {
    let Some(TurnError::Provider(e)) = error else {
        panic!("expected a provider timeout, got {error:?}");
    };
    assert_eq!(e.kind, ErrorKind::Timeout, "{}", e.message);
    assert!(
        e.message.contains("turnTimeoutSecs") && e.message.contains(&format!("{secs} s")),
        "{}",
        e.message
    );
}

#[tokio::test(start_paused = true)]
async fn trickling_provider_hits_the_turn_deadline() {
    let fake = FakeProvider::start().await;
    // An event that never ends, one byte a second: the idle timer (60 s) never fires.
    let mut body = b"data: ".to_vec();
    body.extend(std::iter::repeat_n(b'x', 5000));
    fake.set_default(Behavior::RawChunks(
        RawChunks::sse(body).trickle(Duration::from_secs(1)).stall(),
    ));
    let home = deadline_home(&fake, 30, 60);
    let app = home.app().await;
    let started = tokio::time::Instant::now();
    let mut sink = |_: &str| {};
    let result = app.engine.run_turn(input(), Some(&mut sink)).await;
    let took = started.elapsed();
    assert_turn_timeout(result.error.as_ref(), 30);
    assert!(
        took >= Duration::from_secs(30) && took < Duration::from_secs(32),
        "{took:?}"
    );
    assert_eq!(
        result.attempts.last().map(|a| a.outcome.as_str()),
        Some("timeout")
    );
    assert_eq!(app.metrics.in_flight.get(), 0);
    let metrics = app.metrics.render();
    assert!(
        metrics.contains("outcome=\"timeout\""),
        "turn outcome recorded: {metrics}"
    );
}

#[tokio::test(start_paused = true)]
async fn turn_deadline_covers_every_attempt() {
    let fake = FakeProvider::start().await;
    // Each provider goes quiet: 20 s idle each, 40 s for both; the turn has 30 s.
    fake.set_default(Behavior::Stall);
    let home = deadline_home(&fake, 30, 20);
    let app = home.app().await;
    let started = tokio::time::Instant::now();
    let result = app.engine.run_turn(input(), None).await;
    let took = started.elapsed();
    assert_turn_timeout(result.error.as_ref(), 30);
    assert!(took < Duration::from_secs(32), "{took:?}");
    let outcomes: Vec<&str> = result.attempts.iter().map(|a| a.outcome.as_str()).collect();
    assert_eq!(outcomes, ["timeout", "timeout"], "{:?}", result.attempts);
    assert_eq!(fake.request_count(), 2, "the fallback was tried");
}

#[tokio::test(start_paused = true)]
async fn a_turn_within_its_deadline_answers() {
    let fake = FakeProvider::start().await;
    fake.set_default(Behavior::Reply("fine".into()));
    fake.set_latency(Duration::from_secs(20));
    let home = deadline_home(&fake, 30, 60);
    let app = home.app().await;
    let result = app.engine.run_turn(input(), None).await;
    assert!(result.error.is_none(), "{:?}", result.error);
    assert_eq!(result.reply, "fine");
}

#[tokio::test(start_paused = true)]
async fn in_flight_gauge_is_released_when_a_turn_is_dropped() {
    let fake = FakeProvider::start().await;
    fake.set_default(Behavior::Stall);
    let home = deadline_home(&fake, 600, 600);
    let app = home.app().await;
    let turn = app.engine.run_turn(input(), None);
    let cut = tokio::time::timeout(Duration::from_secs(5), turn).await;
    assert!(cut.is_err(), "the turn was still running");
    assert_eq!(
        app.metrics.in_flight.get(),
        0,
        "the dropped turn left the gauge"
    );
}

// ------------------------------------------------------------------ a reply quoting the key

/// A provider (or a proxy in front of it) that quotes the key it was sent in a normal
/// reply: the turn shows `<redacted>` in its place, whole or streamed, also when the key
/// arrives cut across two deltas. The turn's reply is what the session history keeps.
#[tokio::test]
async fn a_reply_quoting_the_key_never_shows_it() {
    const KEY: &str = "sk-hostile-echo-0123456789";
    let fake = FakeProvider::start().await;
    let mut home = TestHome::new(&format!(
        "[agents.defaults.model]\nprimary = \"openai/m\"\n\n[models.providers.openai]\nbaseUrl = \"{}\"\n",
        fake.openai_base()
    ));
    home.set("OPENAI_API_KEY", KEY);
    let app = home.app().await;

    fake.set_default(Behavior::Reply(format!("your key is {KEY}, keep it")));
    let whole = app.engine.run_turn(input(), None).await;
    assert!(whole.error.is_none(), "{:?}", whole.error);
    assert_eq!(whole.reply, "your key is <redacted>, keep it");

    // Streamed: the key cut in two, then its start again, unfinished.
    let chunk = |text: &str| {
        format!(
            "data: {}\n\n",
            serde_json::json!({"id": "c1", "object": "chat.completion.chunk", "created": 1,
                "model": "m", "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": null}]})
        )
        .into_bytes()
    };
    let mut frames: Vec<Vec<u8>> = ["key: sk-hostile-e", "cho-0123456789! and sk-h", "ost"]
        .map(chunk)
        .to_vec();
    frames.push(b"data: [DONE]\n\n".to_vec());
    fake.set_default(Behavior::RawChunks(RawChunks {
        frames,
        ..RawChunks::sse(Vec::new())
    }));
    let mut deltas: Vec<String> = Vec::new();
    let mut sink = |d: &str| deltas.push(d.to_string());
    let streamed = app.engine.run_turn(input(), Some(&mut sink)).await;
    assert!(streamed.error.is_none(), "{:?}", streamed.error);
    assert_eq!(streamed.reply, "key: <redacted>! and sk-host");
    assert!(deltas.iter().all(|d| !d.contains(KEY)), "{deltas:?}");
    assert_eq!(deltas.concat(), streamed.reply, "{deltas:?}");
    assert!(
        deltas
            .iter()
            .all(|d| !d.ends_with("sk-hostile-e") && !d.ends_with("sk-h")),
        "the key's start is held back until the next delta: {deltas:?}"
    );
}

/// A key holding a character no HTTP header can carry (a control character pasted into
/// `.env`) fails its turn with a message that says so and where to fix it, not a bare
/// "builder error", and without the key; no request goes out.
#[tokio::test]
async fn a_key_no_header_can_carry_is_named_as_the_problem() {
    const BAD: &str = "sk-pasted\u{1}-with-a-control-character";
    let fake = FakeProvider::start().await;
    let mut home = TestHome::new(&format!(
        "[agents.defaults.model]\nprimary = \"openai/m\"\n\n[models.providers.openai]\nbaseUrl = \"{}\"\n",
        fake.openai_base()
    ));
    home.set("OPENAI_API_KEY", BAD);
    let app = home.app().await;
    let result = app.engine.run_turn(input(), None).await;
    let message = result
        .error
        .as_ref()
        .map(ToString::to_string)
        .unwrap_or_default();
    assert!(
        message.contains("the credential's key holds a character an HTTP header cannot carry"),
        "{message}"
    );
    assert!(message.contains(".env"), "{message}");
    assert!(!message.contains("sk-pasted"), "{message}");
    assert_eq!(fake.request_count(), 0);
}

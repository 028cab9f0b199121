//! Property tests ("no panic from outside input", DESIGN §8) for everything that reads
//! provider bytes: each wire API's plain-JSON `parse_reply`, the SSE path (byte chunks →
//! idle/size guard → event parser → `on_event`), the error classifier `classify` and the
//! retry-hint headers. Inputs are arbitrary bytes and structure-aware ones: valid replies
//! with values swapped for random types and huge numbers, fields dropped, streams
//! truncated and cut into random chunks.
//!
//! The case count comes from `PROPTEST_CASES` (proptest's default, 256, keeps CI fast).
//! A long run of one target: `PROPTEST_CASES=1000000 cargo test --release --lib
//! providers::fuzz::<target>` (see the README).

use super::error::{MAX_RETRY_HINT, classify, retry_after_header_at};
use super::stream::{StreamState, guarded_bytes, read_stream};
use super::{Completion, ProviderError, ProviderSettings, anthropic, google, openai, responses};
use crate::config::ApiKind;
use bytes::Bytes;
use proptest::prelude::*;
use proptest::sample::{Index, select};
use serde_json::{Value, json};
use std::time::Duration;

const APIS: [ApiKind; 4] = [
    ApiKind::AnthropicMessages,
    ApiKind::OpenaiCompletions,
    ApiKind::OpenaiResponses,
    ApiKind::GoogleGenerative,
];

fn id(api: ApiKind) -> &'static str {
    match api {
        ApiKind::AnthropicMessages => "anthropic",
        ApiKind::OpenaiCompletions => "openai",
        ApiKind::OpenaiResponses => "openai-codex",
        ApiKind::GoogleGenerative => "google",
    }
}

/// Field names and values the decoders look for, so random JSON hits their branches.
const WORDS: &[&str] = &[
    "type",
    "content",
    "text",
    "usage",
    "input_tokens",
    "output_tokens",
    "stop_reason",
    "choices",
    "message",
    "delta",
    "finish_reason",
    "prompt_tokens",
    "completion_tokens",
    "candidates",
    "parts",
    "thought",
    "finishReason",
    "usageMetadata",
    "promptTokenCount",
    "candidatesTokenCount",
    "promptFeedback",
    "blockReason",
    "error",
    "code",
    "status",
    "details",
    "reason",
    "retryDelay",
    "message_start",
    "content_block_delta",
    "text_delta",
    "message_delta",
    "message_stop",
    "ping",
    "[DONE]",
    "rate_limit_error",
    "RESOURCE_EXHAUSTED",
    "try again in 1e30ms",
    "0",
    "output",
    "output_text",
    "refusal",
    "response",
    "response.output_text.delta",
    "response.completed",
    "response.incomplete",
    "response.failed",
    "incomplete_details",
    "incomplete",
    "failed",
    "detail",
    "resets_in_seconds",
    "resets_at",
    "usage_limit_reached",
];

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        select(vec![
            1e30,
            -1e30,
            1e308,
            -1e308,
            -0.0,
            1.5,
            18446744073709551616.0
        ])
        .prop_map(Value::from),
        ".{0,12}".prop_map(Value::String),
        select(WORDS).prop_map(|w| Value::String(w.into())),
    ]
}

/// Any JSON value, objects keyed mostly by the decoders' field names.
fn json_value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((select(WORDS), inner), 0..6).prop_map(|kv| {
                Value::Object(kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
            }),
        ]
    })
}

/// Valid replies and stream events of every API, to mutate.
fn templates() -> Vec<Value> {
    vec![
        json!({"content":[{"type":"text","text":"hi"}],"stop_reason":"end_turn","usage":{"input_tokens":3,"output_tokens":2}}),
        json!({"type":"message_start","message":{"usage":{"input_tokens":3}}}),
        json!({"type":"content_block_delta","delta":{"type":"text_delta","text":"hi"}}),
        json!({"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":2}}),
        json!({"type":"message_stop"}),
        json!({"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}),
        json!({"choices":[{"message":{"content":"hi"},"delta":{"content":"hi"},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":2}}),
        json!({"error":{"message":"Rate limit reached. Please try again in 1.5s.","type":"requests","code":"rate_limit_exceeded"}}),
        json!({"candidates":[{"content":{"parts":[{"text":"hi"},{"text":"x","thought":true}]},"finishReason":"STOP"}],"usageMetadata":{"promptTokenCount":3,"candidatesTokenCount":2}}),
        json!({"promptFeedback":{"blockReason":"SAFETY"}}),
        json!({"error":{"code":429,"message":"quota","status":"RESOURCE_EXHAUSTED","details":[{"reason":"RATE_LIMIT_EXCEEDED","retryDelay":"38s"}]}}),
        json!({"object":"response","status":"completed","output":[{"type":"reasoning","summary":[]},{"type":"message","content":[{"type":"output_text","text":"hi"},{"type":"refusal","refusal":"no"}]}],"usage":{"input_tokens":3,"output_tokens":2}}),
        json!({"status":"incomplete","incomplete_details":{"reason":"max_output_tokens"},"output":[]}),
        json!({"type":"response.output_text.delta","delta":"hi"}),
        json!({"type":"response.completed","response":{"status":"completed","usage":{"input_tokens":3,"output_tokens":2}}}),
        json!({"type":"response.failed","response":{"status":"failed","error":{"code":"rate_limit_exceeded","message":"Please try again in 1e30ms."}}}),
        json!({"type":"error","code":"insufficient_quota","message":"quota","param":null}),
        json!({"detail":"Instructions are required"}),
        json!({"error":{"type":"usage_limit_reached","message":"The usage limit has been reached","resets_in_seconds":1e30,"resets_at":-1}}),
    ]
}

/// Every JSON pointer inside `v`.
fn pointers(v: &Value, at: String, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                let p = format!("{at}/{}", k.replace('~', "~0").replace('/', "~1"));
                out.push(p.clone());
                pointers(child, p, out);
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                let p = format!("{at}/{i}");
                out.push(p.clone());
                pointers(child, p, out);
            }
        }
        _ => {}
    }
}

/// A template with a few of its values replaced by random ones (or set to null).
fn mutated() -> impl Strategy<Value = Value> {
    (
        select(templates()),
        prop::collection::vec((any::<Index>(), json_value(), any::<bool>()), 0..4),
    )
        .prop_map(|(mut v, edits)| {
            for (at, new, drop_it) in edits {
                let mut all = Vec::new();
                pointers(&v, String::new(), &mut all);
                if all.is_empty() {
                    v = new;
                    continue;
                }
                if let Some(slot) = v.pointer_mut(all[at.index(all.len())].as_str()) {
                    *slot = if drop_it { Value::Null } else { new };
                }
            }
            v
        })
}

/// JSON text: mutated templates, random values, or either with a cut-off tail.
fn json_text() -> impl Strategy<Value = Vec<u8>> {
    (
        prop_oneof![mutated(), json_value()],
        any::<Index>(),
        any::<bool>(),
    )
        .prop_map(|(v, cut, truncate)| {
            let mut text = v.to_string().into_bytes();
            if truncate && !text.is_empty() {
                text.truncate(cut.index(text.len()));
            }
            text
        })
}

fn parse(api: ApiKind, body: &[u8]) -> Result<Completion, ProviderError> {
    match api {
        ApiKind::AnthropicMessages => anthropic::parse_reply(id(api), body),
        ApiKind::OpenaiCompletions => openai::parse_reply(id(api), body),
        ApiKind::OpenaiResponses => responses::parse_reply(id(api), body),
        ApiKind::GoogleGenerative => google::parse_reply(id(api), body),
    }
}

fn on_event(
    api: ApiKind,
    event: &str,
    data: &str,
    state: &mut StreamState,
) -> Result<Option<String>, ProviderError> {
    match api {
        ApiKind::AnthropicMessages => anthropic::on_event(id(api), event, data, state),
        ApiKind::OpenaiCompletions => openai::on_event(id(api), data, state),
        ApiKind::OpenaiResponses => responses::on_event(id(api), event, data, state),
        ApiKind::GoogleGenerative => google::on_event(id(api), data, state),
    }
}

/// An error from a decoder names its provider.
fn check(api: ApiKind, r: &Result<impl Sized, ProviderError>) -> Result<(), TestCaseError> {
    if let Err(e) = r {
        prop_assert!(
            e.message.starts_with(&format!("{}:", id(api))),
            "{}",
            e.message
        );
        prop_assert!(e.retry_after.is_none_or(|d| d <= MAX_RETRY_HINT));
    }
    Ok(())
}

proptest! {
    /// The quick path for common OpenAI replies reads every reply it takes exactly as
    /// the general path does (it leaves the others to it).
    #[test]
    fn the_quick_openai_reply_reader_agrees_with_the_general_one(body in json_text()) {
        if let Some(quick) = openai::plain_reply(&body) {
            let general = openai::parse_general("openai", &body);
            prop_assert_eq!(Ok(quick), general.map_err(|e| e.message));
        }
    }
}

#[test]
fn the_quick_openai_reply_reader_takes_the_common_shapes() {
    let common = [
        json!({"id":"x","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}),
        json!({"choices":[{"message":{"content":null}}]}),
        json!({"choices":[{"message":{}},{"message":{"content":"second"}}],"usage":null,"error":null}),
    ];
    for v in common {
        let body = v.to_string().into_bytes();
        let quick = openai::plain_reply(&body);
        assert!(quick.is_some(), "{v}");
        assert_eq!(quick, openai::parse_general("openai", &body).ok(), "{v}");
    }
    let left = [
        json!({"choices":[]}),
        json!({"choices":[{"message":{"content":[{"type":"text"}]}}]}),
        json!({"choices":[{"message":{"content":"hi"}}],"usage":{"prompt_tokens":1.5}}),
        json!({"error":{"message":"slow down","type":"requests"}}),
        // Arrays where the general path expects objects (a derived struct would read
        // them positionally).
        json!({"choices":[{"message":{"content":"hi"}}],"usage":[]}),
        json!({"choices":[{"message":{"content":"hi"}}],"usage":[5,7]}),
        json!({"choices":[{"message":["hi"]}]}),
        json!({"choices":[[{"content":"hi"},"stop"]]}),
        json!([null,[{"message":{"content":"x"}}]]),
    ];
    for v in left {
        assert_eq!(openai::plain_reply(v.to_string().as_bytes()), None, "{v}");
    }
}

thread_local! {
    static RUNTIME: tokio::runtime::Runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("test runtime");
}

/// An SSE body: events named from the API's vocabulary with mutated or random data,
/// optionally truncated, cut into random chunks.
fn sse_chunks() -> impl Strategy<Value = Vec<Vec<u8>>> {
    let event = (
        prop::option::of(select(vec![
            "message_start",
            "content_block_delta",
            "message_delta",
            "message_stop",
            "error",
            "ping",
            "response.output_text.delta",
            "response.completed",
            "response.failed",
            "",
        ])),
        prop_oneof![
            4 => mutated().prop_map(|v| v.to_string()),
            1 => Just("[DONE]".to_string()),
            1 => ".{0,40}",
        ],
    )
        .prop_map(|(name, data)| {
            let mut s = String::new();
            if let Some(n) = name {
                s.push_str(&format!("event: {n}\n"));
            }
            for line in data.split('\n') {
                s.push_str(&format!("data: {line}\n"));
            }
            s.push('\n');
            s
        });
    (
        prop::collection::vec(event, 0..8),
        any::<Option<Index>>(),
        prop::collection::vec(any::<Index>(), 0..6),
    )
        .prop_map(|(events, cut, splits)| {
            let mut body = events.concat().into_bytes();
            if let Some(cut) = cut
                && !body.is_empty()
            {
                body.truncate(cut.index(body.len()));
            }
            chunked(body, &splits)
        })
}

/// `body` cut at the given places (byte positions, so UTF-8 may be split).
fn chunked(body: Vec<u8>, splits: &[Index]) -> Vec<Vec<u8>> {
    if body.is_empty() {
        return vec![body];
    }
    let mut at: Vec<usize> = splits.iter().map(|i| i.index(body.len())).collect();
    at.sort_unstable();
    at.dedup();
    let mut out = Vec::with_capacity(at.len() + 1);
    let mut start = 0;
    for i in at {
        out.push(body[start..i].to_vec());
        start = i;
    }
    out.push(body[start..].to_vec());
    out
}

/// Drive chunks through the real streaming path (idle/size guard, event parser,
/// `on_event`) as the HTTP client does.
fn stream(api: ApiKind, chunks: Vec<Vec<u8>>) -> (Result<Completion, ProviderError>, String) {
    let settings = ProviderSettings {
        id: id(api).into(),
        api,
        base_url: "http://127.0.0.1:9".into(),
        connect_timeout: Duration::from_secs(1),
        idle_timeout: Duration::from_secs(1),
        headers: Vec::new(),
        account_header: None,
        stream_only: false,
    };
    let items = chunks
        .into_iter()
        .map(|c| Ok::<Bytes, std::io::Error>(Bytes::from(c)));
    let bytes = guarded_bytes(futures_util::stream::iter(items), settings.idle_timeout);
    let mut seen = String::new();
    let mut sink = |d: &str| seen.push_str(d);
    let r = RUNTIME.with(|rt| rt.block_on(read_stream(&settings, api, bytes, &mut sink)));
    (r, seen)
}

/// Header values as a server could send them (visible ASCII and obs-text).
fn header_value() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(prop_oneof![0x20u8..0x7f, 0x80u8..=0xff], 0..24),
        select(vec![
            "1e30",
            "-1",
            "NaN",
            "inf",
            "1e400",
            "0",
            "7",
            "1.5",
            "99999999999999999999",
            "Fri, 31 Dec 9999 23:59:59 GMT",
            "Thu, 01 Jan 1970 00:00:00 GMT",
            "Tue, 14 Nov 2023 22:13:50 GMT",
        ])
        .prop_map(|s| s.as_bytes().to_vec()),
    ]
}

proptest! {
    #[test]
    fn parse_reply_arbitrary_bytes(api in select(APIS.to_vec()), body in any::<Vec<u8>>()) {
        check(api, &parse(api, &body))?;
    }

    #[test]
    fn parse_reply_structured_json(api in select(APIS.to_vec()), body in json_text()) {
        let r = parse(api, &body);
        check(api, &r)?;
    }

    #[test]
    fn on_event_structured_json(
        api in select(APIS.to_vec()),
        events in prop::collection::vec(
            (select(WORDS), prop_oneof![json_text().prop_map(|b| String::from_utf8_lossy(&b).into_owned()), ".{0,30}"]),
            1..6,
        ),
    ) {
        let mut state = StreamState::default();
        for (event, data) in events {
            let r = on_event(api, event, &data, &mut state);
            check(api, &r)?;
            if r.is_err() {
                break;
            }
        }
    }

    #[test]
    fn sse_stream_arbitrary_bytes(
        api in select(APIS.to_vec()),
        body in any::<Vec<u8>>(),
        splits in prop::collection::vec(any::<Index>(), 0..6),
    ) {
        let (r, seen) = stream(api, chunked(body, &splits));
        check(api, &r)?;
        if let Ok(c) = r {
            prop_assert_eq!(c.text, seen);
        }
    }

    #[test]
    fn sse_stream_structured(api in select(APIS.to_vec()), chunks in sse_chunks()) {
        let (r, seen) = stream(api, chunks);
        check(api, &r)?;
        if let Ok(c) = r {
            prop_assert_eq!(c.text, seen);
        }
    }

    #[test]
    fn classify_any_reply(
        status in prop::option::of(any::<u16>()),
        hint in prop::option::of((any::<u64>(), 0u32..1_000_000_000).prop_map(|(s, n)| Duration::new(s, n))),
        body in prop_oneof![
            json_text().prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
            ".{0,80}",
            "[a-z ]{0,20}try again in [-+0-9.e]{0,12}(ms|s)?[a-z .]{0,10}",
        ],
    ) {
        let e = classify("p", status, hint, &body);
        prop_assert!(e.message.starts_with("p:"), "{}", e.message);
        prop_assert!(e.retry_after.is_none_or(|d| d <= MAX_RETRY_HINT));
        prop_assert_eq!(e.status, status);
    }

    #[test]
    fn responses_classify_http_any_reply(
        status in any::<u16>(),
        hint in prop::option::of((any::<u64>(), 0u32..1_000_000_000).prop_map(|(s, n)| Duration::new(s, n))),
        body in prop_oneof![
            json_text().prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
            ".{0,80}",
        ],
        now in any::<u64>(),
    ) {
        let now = std::time::UNIX_EPOCH.checked_add(Duration::from_secs(now)).unwrap_or(std::time::UNIX_EPOCH);
        let e = responses::classify_http_at("p", status, hint, &body, now);
        prop_assert!(e.message.starts_with("p:"), "{}", e.message);
        prop_assert!(e.retry_after.is_none_or(|d| d <= MAX_RETRY_HINT));
        prop_assert_eq!(e.status, Some(status));
    }

    #[test]
    fn retry_hint_headers(
        ms in prop::option::of(header_value()),
        secs in prop::option::of(header_value()),
        now in any::<u32>(),
    ) {
        let mut h = reqwest::header::HeaderMap::new();
        if let Some(v) = ms.and_then(|v| reqwest::header::HeaderValue::from_bytes(&v).ok()) {
            h.insert("retry-after-ms", v);
        }
        if let Some(v) = secs.and_then(|v| reqwest::header::HeaderValue::from_bytes(&v).ok()) {
            h.insert(reqwest::header::RETRY_AFTER, v);
        }
        let now = std::time::UNIX_EPOCH + Duration::from_secs(u64::from(now) * 2);
        let d = retry_after_header_at(&h, now);
        prop_assert!(d.is_none_or(|d| d <= MAX_RETRY_HINT));
    }
}

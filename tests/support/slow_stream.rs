//! A model that writes slowly: an OpenAI chat-completions SSE stream sent one delta per
//! frame with a pause before each, for the streaming tests of the chat channels.

use super::fake_provider::{Behavior, RawChunks};
use std::time::Duration;

/// The stream of `words` (one `delta.content` each), `gap` before every frame, then
/// `finish_reason: "stop"` and `[DONE]`.
pub fn openai_words(words: &[&str], gap: Duration) -> Behavior {
    let chunk = |delta: serde_json::Value, finish: Option<&str>| {
        let c = serde_json::json!({
            "id": "chatcmpl-slow", "object": "chat.completion.chunk", "created": 0,
            "model": "gpt-4o-mini",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        });
        format!("data: {c}\n\n").into_bytes()
    };
    let mut frames = vec![chunk(
        serde_json::json!({"role": "assistant", "content": ""}),
        None,
    )];
    frames.extend(
        words
            .iter()
            .map(|w| chunk(serde_json::json!({ "content": w }), None)),
    );
    frames.push(chunk(serde_json::json!({}), Some("stop")));
    frames.push(b"data: [DONE]\n\n".to_vec());
    let mut raw = RawChunks::sse(Vec::new());
    raw.frames = frames;
    raw.delay = gap;
    Behavior::RawChunks(raw)
}

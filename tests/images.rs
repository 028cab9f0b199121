//! Images to the models end to end (DESIGN §10): through `chat::handle` with
//! `Inbound.attachments` and through `/v1/chat/completions` `image_url` parts, to each of
//! the four wire APIs, streamed and not, against the fake provider (which validates image
//! parts like the real APIs). Plus history placeholders, `images = false`, the limits
//! and a provider's refusal. HTTP refusals of bad image parts are in `images_http.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support;

use bytes::Bytes;
use remoteclaw::chat::{Inbound, handle};
use remoteclaw::media::{Attachment, ImagePart};
use serde_json::{Value, json};
use support::fake_provider::images::{JPEG_MIN, PNG_1X1, data_url};
use support::fake_provider::{Api, Behavior, FakeProvider, SeenImage};
use support::gateway::{Gateway, sse_events};
use support::home::TestHome;

/// The four wire APIs: the model that speaks each, and the part index at which its
/// shape puts the image (Anthropic and Gemini: before the text; the OpenAI ones: after).
const WIRES: [(Api, &str, usize); 4] = [
    (Api::Anthropic, "anthropic/claude-x", 0),
    (Api::OpenAi, "openai/gpt-4o", 1),
    (Api::Google, "google/gemini-x", 0),
    (Api::Responses, "resp/gpt-5", 1),
];

const NO_EYES: &str = "openai/no-eyes";
const ASK: &str = "what is in this picture?";

fn config(fake: &FakeProvider, fallbacks: &str, defaults: &str) -> String {
    format!(
        r#"[agents.defaults]
{defaults}
[agents.defaults.model]
primary = "anthropic/claude-x"
fallbacks = [{fallbacks}]
[agents.defaults.models."anthropic/claude-x"]
[agents.defaults.models."openai/gpt-4o"]
[agents.defaults.models."google/gemini-x"]
[agents.defaults.models."resp/gpt-5"]
[agents.defaults.models."{NO_EYES}"]
images = false

[models.providers.anthropic]
baseUrl = "{a}"
[models.providers.openai]
baseUrl = "{o}"
[models.providers.google]
baseUrl = "{g}"
[models.providers.resp]
baseUrl = "{r}"
api = "openai-responses"
"#,
        a = fake.anthropic_base(),
        o = fake.openai_base(),
        g = fake.google_base(),
        r = fake.responses_base(),
    )
}

fn home_with(fake: &FakeProvider, fallbacks: &str, defaults: &str) -> TestHome {
    let mut home = TestHome::new(&config(fake, fallbacks, defaults));
    home.set("ANTHROPIC_API_KEY", "k-ant")
        .set("OPENAI_API_KEY", "k-oai")
        .set("GEMINI_API_KEY", "k-gem")
        .set("RESP_API_KEY", "k-resp");
    home
}

fn home(fake: &FakeProvider) -> TestHome {
    home_with(fake, "", "")
}

fn image(bytes: &'static [u8]) -> Attachment {
    Attachment::Image(ImagePart::from_bytes("photo", Bytes::from_static(bytes), 1 << 20).unwrap())
}

fn msg<'a>(session: &'a str, text: &'a str, attachments: &'a [Attachment]) -> Inbound<'a> {
    Inbound {
        session,
        text,
        owner: true,
        bot_username: None,
        agent: None,
        system_prompt: None,
        quoted: None,
        attachments,
    }
}

fn seen(part: usize, media_type: &str, bytes: &[u8]) -> SeenImage {
    SeenImage {
        message: 0,
        part,
        media_type: media_type.into(),
        data: bytes.to_vec(),
    }
}

/// One image sent through `chat::handle` to `model`, streamed or not: the reply, and the
/// request the fake saw.
async fn through_chat(
    fake: &FakeProvider,
    model: &str,
    bytes: &'static [u8],
    stream: bool,
) -> support::fake_provider::RecordedRequest {
    let h = home(fake);
    let app = h.app().await;
    let session = "web:images";
    let chose = handle(&app, msg(session, &format!("/model {model}"), &[]), None).await;
    assert!(!chose.is_error(), "{}", chose.reply_text());
    let before = fake.request_count();
    let atts = [image(bytes)];
    let mut streamed = String::new();
    let mut sink = |d: &str| streamed.push_str(d);
    let sink: Option<&mut (dyn FnMut(&str) + Send)> = if stream { Some(&mut sink) } else { None };
    let r = handle(&app, msg(session, ASK, &atts), sink).await;
    assert!(!r.is_error(), "{model}: {}", r.reply_text());
    assert_eq!(r.reply_text(), format!("fake reply to: {ASK}"), "{model}");
    if stream {
        assert_eq!(streamed, r.reply_text(), "{model}: the reply streamed");
    }
    let requests = fake.requests();
    assert_eq!(requests.len(), before + 1, "{model}: one call");
    requests.last().cloned().unwrap()
}

/// One image sent as an `image_url` part over HTTP to `model`: the request the fake saw.
async fn through_http(
    fake: &FakeProvider,
    model: &str,
    media_type: &str,
    bytes: &[u8],
    stream: bool,
) -> support::fake_provider::RecordedRequest {
    let gw = Gateway::start(home(fake), None).await;
    let before = fake.request_count();
    let body = json!({"model": model, "stream": stream, "messages": [{"role": "user", "content": [
        {"type": "text", "text": ASK},
        {"type": "image_url", "image_url": {"url": data_url(media_type, bytes), "detail": "low"}},
    ]}]});
    let r = reqwest::Client::new()
        .post(format!("{}/v1/chat/completions", gw.url))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{model}");
    let text = r.text().await.unwrap();
    let reply = if stream {
        sse_events(&text)
            .iter()
            .filter(|(_, d)| d != "[DONE]")
            .filter_map(|(_, d)| serde_json::from_str::<Value>(d).ok())
            .filter_map(|v| {
                v["choices"][0]["delta"]["content"]
                    .as_str()
                    .map(String::from)
            })
            .collect::<String>()
    } else {
        let v: Value = serde_json::from_str(&text).unwrap();
        v["choices"][0]["message"]["content"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(reply, format!("fake reply to: {ASK}"), "{model}: {text}");
    gw.shutdown().await;
    let requests = fake.requests();
    assert_eq!(requests.len(), before + 1, "{model}: one call");
    requests.last().cloned().unwrap()
}

/// PNG and JPEG, in-process and over HTTP, streamed and not: each arrives in the API's
/// shape (the fake decodes it from there) with its media type, exact bytes and the text.
async fn every_path_carries_the_image(api: Api) {
    let (_, model, part) = WIRES.iter().find(|w| w.0 == api).unwrap();
    let fake = FakeProvider::start().await;
    let cases = [
        (PNG_1X1, "image/png", false, false),
        (JPEG_MIN, "image/jpeg", true, false),
        (PNG_1X1, "image/png", true, true),
        (JPEG_MIN, "image/jpeg", false, true),
    ];
    for (bytes, media_type, stream, http) in cases {
        let r = if http {
            through_http(&fake, model, media_type, bytes, stream).await
        } else {
            through_chat(&fake, model, bytes, stream).await
        };
        let how = format!("{model} {media_type} stream={stream} http={http}");
        assert_eq!(r.api, api, "{how}");
        assert_eq!(r.stream, stream, "{how}");
        assert_eq!(r.images, [seen(*part, media_type, bytes)], "{how}");
        assert_eq!(r.user_text(), ASK, "{how}: the text goes with the image");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anthropic_gets_image_blocks() {
    every_path_carries_the_image(Api::Anthropic).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_completions_gets_image_url_parts() {
    every_path_carries_the_image(Api::OpenAi).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gemini_gets_inline_data() {
    every_path_carries_the_image(Api::Google).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn responses_gets_input_image() {
    every_path_carries_the_image(Api::Responses).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_next_turn_sends_the_placeholder_not_the_bytes() {
    let fake = FakeProvider::start().await;
    let h = home(&fake);
    let app = h.app().await;
    let atts = [image(PNG_1X1)];
    assert!(
        !handle(&app, msg("web:h", "first look", &atts), None)
            .await
            .is_error()
    );
    assert!(
        !handle(&app, msg("web:h", "and now?", &[]), None)
            .await
            .is_error()
    );
    let second = fake.requests().pop().unwrap();
    assert!(second.images.is_empty());
    assert_eq!(
        second.body["messages"][0],
        json!({"role": "user", "content": "first look\n[image: image/png]"})
    );
    let b64 = data_url("image/png", PNG_1X1);
    let b64 = b64.split(',').nth(1).unwrap();
    assert!(
        !second.body.to_string().contains(b64),
        "no bytes in history"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_image_without_a_caption_reaches_the_model() {
    let fake = FakeProvider::start().await;
    let h = home(&fake);
    let app = h.app().await;
    let atts = [image(JPEG_MIN)];
    let r = handle(&app, msg("web:c", "", &atts), None).await;
    assert!(r.turn.is_some(), "a photo alone runs a turn");
    assert!(!r.is_error(), "{}", r.reply_text());
    let req = fake.requests().pop().unwrap();
    assert_eq!(req.images, [seen(0, "image/jpeg", JPEG_MIN)]);
    assert_eq!(
        req.body["messages"][0]["content"].as_array().unwrap().len(),
        1
    );
}

const NO_EYES_REPLY: &str = "openai/no-eyes does not accept images — send text only, or switch to a model that does with `/model anthropic/claude-x`";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_without_images_says_so_and_is_not_called() {
    let fake = FakeProvider::start().await;
    let h = home(&fake);
    let app = h.app().await;
    assert!(
        !handle(&app, msg("web:n", &format!("/model {NO_EYES}"), &[]), None)
            .await
            .is_error()
    );
    let atts = [image(PNG_1X1)];
    let r = handle(&app, msg("web:n", ASK, &atts), None).await;
    assert!(r.is_error());
    assert_eq!(r.reply_text(), NO_EYES_REPLY);
    assert_eq!(fake.request_count(), 0, "no provider call");
    // Text alone still goes to that model.
    let r = handle(&app, msg("web:n", "just text", &[]), None).await;
    assert!(!r.is_error(), "{}", r.reply_text());
    assert_eq!(fake.requests()[0].model().as_deref(), Some("no-eyes"));

    let gw = Gateway::start(home(&fake), None).await;
    for stream in [false, true] {
        let r = reqwest::Client::new()
            .post(format!("{}/v1/chat/completions", gw.url))
            .json(&json!({"model": NO_EYES, "stream": stream, "messages": [{"role": "user", "content": [
                {"type": "text", "text": ASK},
                {"type": "image_url", "image_url": {"url": data_url("image/png", PNG_1X1)}},
            ]}]}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "stream={stream}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(
            v,
            json!({"error": {"message": NO_EYES_REPLY, "type": "invalid_request_error", "param": null, "code": "model_does_not_accept_images"}})
        );
    }
    assert_eq!(fake.request_count(), 1, "still only the text turn");
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fallback_without_images_is_skipped_for_a_turn_with_images() {
    let fake = FakeProvider::start().await;
    let h = home_with(&fake, &format!("\"{NO_EYES}\""), "");
    let app = h.app().await;
    fake.script("k-ant", [Behavior::Overloaded, Behavior::Overloaded]);
    // Text falls back to the second model…
    let r = handle(&app, msg("web:f", "hi", &[]), None).await;
    assert!(!r.is_error(), "{}", r.reply_text());
    assert_eq!(fake.request_count(), 2);
    // …an image does not: that model takes none.
    let atts = [image(PNG_1X1)];
    let r = handle(&app, msg("web:f2", ASK, &atts), None).await;
    assert!(r.is_error());
    let apis: Vec<Api> = fake.requests().into_iter().map(|r| r.api).collect();
    assert_eq!(apis, [Api::Anthropic, Api::OpenAi, Api::Anthropic]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_images_are_refused_before_any_call() {
    let fake = FakeProvider::start().await;
    let h = home(&fake);
    let app = h.app().await;
    let atts: Vec<Attachment> = (0..5).map(|_| image(PNG_1X1)).collect();
    let r = handle(&app, msg("web:5", ASK, &atts), None).await;
    assert_eq!(
        r.reply_text(),
        "a message may carry at most 4 images — send the others in another message"
    );
    assert_eq!(fake.request_count(), 0);
    let r = handle(&app, msg("web:4", ASK, &atts[..4]), None).await;
    assert!(!r.is_error(), "{}", r.reply_text());
    assert_eq!(fake.requests()[0].images.len(), 4);
}

/// Before: "anthropic: request or reply not understood (HTTP 400 invalid_request_error):
/// messages.0…" — as if RemoteClaw had failed to read the reply.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_image_refusal_is_not_reported_as_request_or_reply_not_understood() {
    let fake = FakeProvider::start().await;
    let h = home(&fake);
    let app = h.app().await;
    fake.script("k-ant", [Behavior::RefuseImage]);
    let atts = [image(PNG_1X1)];
    let r = handle(&app, msg("web:r", ASK, &atts), None).await;
    assert_eq!(
        r.reply_text(),
        "anthropic/claude-x refused the image (HTTP 400): messages.0.content.0.image.source.base64: image exceeds 5 MB maximum: 7340032 bytes > 5242880 bytes — send a smaller image (PNG or JPEG), or text only"
    );
    assert!(!r.reply_text().contains("k-ant"));
    assert_eq!(fake.request_count(), 1, "a refusal is not retried");

    let gw = Gateway::start(home(&fake), None).await;
    fake.script("k-oai", [Behavior::RefuseImage]);
    let r = reqwest::Client::new()
        .post(format!("{}/v1/chat/completions", gw.url))
        .json(
            &json!({"model": "openai/gpt-4o", "messages": [{"role": "user", "content": [
                {"type": "image_url", "image_url": {"url": data_url("image/png", PNG_1X1)}},
            ]}]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "image_refused");
    assert_eq!(
        v["error"]["message"],
        "openai/gpt-4o refused the image (HTTP 400): Invalid image: the image is too large. Images must be under 20 MB. — send a smaller image (PNG or JPEG), or text only"
    );
    gw.shutdown().await;
}

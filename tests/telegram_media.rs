//! Photos and files from Telegram to the model (DESIGN §10), end to end: the real
//! teloxide client against the loopback fake Bot API (`getFile`, the download route)
//! with the fake Anthropic provider behind it. The image reaches the model inline with
//! the media type of its bytes, sizes are checked before downloading, refusals are told
//! in the chat, albums go to the model together, and the bot token never shows.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support;

use crate::telegram_support;

#[path = "telegram_media/refusals.rs"]
mod refusals;

use base64::Engine;
use serde_json::Value;
use std::sync::Arc;
use support::fake_provider::{Behavior, FakeProvider};
use support::fake_telegram::{FakeFile, FakeTelegram, To};
use support::home::TestHome;
use telegram_support::{Binary, Setup, TOKEN, WAIT, config, inbox, start, wait_answered};

const PRIMARY: &str = "anthropic/claude-sonnet-4-5";
const GROUP: i64 = -1001234;

/// PNG bytes (signature, then `tag` so images differ).
fn png(tag: u8, len: usize) -> Vec<u8> {
    let mut b = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
    b.resize(len.max(b.len()), tag);
    b
}

fn jpeg(tag: u8, len: usize) -> Vec<u8> {
    let mut b = vec![0xFF, 0xD8, 0xFF, 0xE0, 0, 0x10, b'J', b'F', b'I', b'F'];
    b.resize(len.max(b.len()), tag);
    b
}

/// Users 42 and 43 may talk, group -1001234 is allowed; the model is Anthropic's.
/// `models` and `defaults` add config lines (model entries; `[agents.defaults]` keys).
async fn setup(models: &str, defaults: &str) -> Setup {
    let tg = FakeTelegram::start(TOKEN).await;
    let llm = FakeProvider::start().await;
    let home = home(&tg, &llm, models, defaults);
    let app = Arc::new(home.app().await);
    let (stop, task) = start(&app);
    Setup {
        tg,
        llm,
        app,
        stop,
        task,
        home,
    }
}

fn home(tg: &FakeTelegram, llm: &FakeProvider, models: &str, defaults: &str) -> TestHome {
    let telegram = format!("botToken = \"{TOKEN}\"\nallowFrom = [42, 43]\ngroups = [{GROUP}]\n");
    let mut c = config(llm, PRIMARY, models, &tg.api_url(), &telegram);
    if !defaults.is_empty() {
        c.push_str(&format!("[agents.defaults]\n{defaults}"));
    }
    let mut home = TestHome::new(&c);
    home.set("ANTHROPIC_API_KEY", "sk-ant");
    home
}

/// Images as (media type, length, bytes' fingerprint), for short failure messages.
fn summary(images: &[(String, Vec<u8>)]) -> Vec<(String, usize, u64)> {
    images
        .iter()
        .map(|(t, b)| {
            let sum = b
                .iter()
                .fold(0u64, |h, x| h.wrapping_mul(31).wrapping_add(u64::from(*x)));
            (t.clone(), b.len(), sum)
        })
        .collect()
}

/// The images of the last user message of an Anthropic request: (media type, bytes).
fn images(body: &Value) -> Vec<(String, Vec<u8>)> {
    let last_user = body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .find(|m| m["role"] == "user")
        .unwrap();
    last_user["content"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|b| b["type"] == "image")
        .map(|b| {
            assert_eq!(b["source"]["type"], "base64", "inline, never a URL: {b}");
            let data = base64::engine::general_purpose::STANDARD
                .decode(b["source"]["data"].as_str().unwrap())
                .unwrap();
            (
                b["source"]["media_type"].as_str().unwrap().to_string(),
                data,
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn photo_with_caption_reaches_the_model_as_an_image_block() {
    let s = setup("", "").await;
    let big = png(3, 3000);
    let sizes = [
        FakeFile::new(png(1, 100)),
        FakeFile::new(png(2, 800)),
        FakeFile::new(big.clone()),
    ];
    let id =
        s.tg.send_photo(To::Dm, 42, "alice", Some("what is this?"), &sizes);
    wait_answered(&s.tg, &inbox(&s.home), &[id]).await;
    let sent = s.tg.sent_messages();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].text, "fake reply to: what is this?");
    let reqs = s.llm.requests();
    assert_eq!(reqs.len(), 1);
    assert_eq!(
        summary(&images(&reqs[0].body)),
        summary(&[("image/png".into(), big)]),
        "the largest size, its exact bytes, the type of its bytes"
    );
    assert_eq!(reqs[0].user_text(), "what is this?");
    assert_eq!(s.tg.download_count(), 1, "only the size sent is downloaded");
    assert!(
        s.tg.file_downloads()[0].path.starts_with("photos/"),
        "{:?}",
        s.tg.file_downloads()
    );
}

/// Before: a photo without a caption has no text and was never answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn photo_without_caption_is_answered() {
    let s = setup("", "").await;
    s.llm.script("sk-ant", [Behavior::Reply("A cat.".into())]);
    let photo = jpeg(9, 500);
    let id =
        s.tg.send_photo(To::Dm, 42, "alice", None, &[FakeFile::new(photo.clone())]);
    wait_answered(&s.tg, &inbox(&s.home), &[id]).await;
    let sent = s.tg.sent_messages();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].text, "A cat.");
    let reqs = s.llm.requests();
    assert_eq!(
        summary(&images(&reqs[0].body)),
        summary(&[("image/jpeg".into(), photo)])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn image_document_goes_with_the_media_type_of_its_bytes() {
    let s = setup("", "").await;
    // The sender's client calls it a JPEG; the bytes are a PNG.
    let bytes = png(5, 700);
    let id = s.tg.send_document(
        To::Dm,
        42,
        "alice",
        Some("scan"),
        &FakeFile::new(bytes.clone())
            .named("scan.jpg")
            .typed("image/jpeg"),
    );
    wait_answered(&s.tg, &inbox(&s.home), &[id]).await;
    let reqs = s.llm.requests();
    assert_eq!(
        summary(&images(&reqs[0].body)),
        summary(&[("image/png".into(), bytes)])
    );
    assert_eq!(s.tg.sent_messages()[0].text, "fake reply to: scan");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_document_is_inlined_with_its_name() {
    let s = setup("", "").await;
    let id = s.tg.send_document(
        To::Dm,
        42,
        "alice",
        Some("summarise this"),
        &FakeFile::new("# Plan\n- ship it ünïcode".as_bytes())
            .named("notes.md")
            .typed("text/markdown"),
    );
    wait_answered(&s.tg, &inbox(&s.home), &[id]).await;
    let reqs = s.llm.requests();
    assert_eq!(reqs.len(), 1);
    let text = reqs[0].user_text();
    assert!(text.starts_with("summarise this"), "{text}");
    assert!(
        text.contains("[file: notes.md]\n# Plan\n- ship it ünïcode"),
        "{text}"
    );
    assert!(images(&reqs[0].body).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_album_goes_to_the_model_as_one_message_of_at_most_four_images() {
    let s = setup("", "").await;
    let photos: Vec<Vec<u8>> = (1..=5).map(|i| png(i, 100 + usize::from(i))).collect();
    let files: Vec<FakeFile> = photos.iter().cloned().map(FakeFile::new).collect();
    let ids =
        s.tg.send_album(To::Dm, 42, "alice", Some("which is best?"), &files);
    wait_answered(&s.tg, &inbox(&s.home), &ids).await;
    let texts: Vec<String> = s.tg.sent_messages().into_iter().map(|m| m.text).collect();
    assert_eq!(
        texts,
        [
            "A message may carry at most 4 images — send the others in another message",
            "fake reply to: which is best?",
        ]
    );
    let reqs = s.llm.requests();
    assert_eq!(reqs.len(), 1, "one turn for the album");
    let want: Vec<(String, Vec<u8>)> = photos[..4]
        .iter()
        .map(|p| ("image/png".to_string(), p.clone()))
        .collect();
    assert_eq!(
        summary(&images(&reqs[0].body)),
        summary(&want),
        "the first four, in order"
    );
    assert_eq!(s.tg.download_count(), 4, "the fifth is not fetched");
}

/// Before: only `text` was read for a mention, so a captioned photo in a group that
/// requires a mention was ignored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_photo_captioned_with_a_mention_is_answered_in_a_group() {
    let s = setup("", "").await;
    let caption = format!("@{} what is this?", s.tg.bot_username());
    let id = s.tg.send_photo(
        To::Group(GROUP),
        43,
        "bob",
        Some(&caption),
        &[FakeFile::new(png(1, 100))],
    );
    wait_answered(&s.tg, &inbox(&s.home), &[id]).await;
    let sent = s.tg.sent_messages();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].text, "fake reply to: what is this?");
    assert_eq!(images(&s.llm.requests()[0].body).len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_without_image_input_gets_no_call_and_a_clear_reply() {
    let models = format!("[agents.defaults.models.\"{PRIMARY}\"]\nimages = false\n");
    let s = setup(&models, "").await;
    let id = s.tg.send_photo(
        To::Dm,
        42,
        "alice",
        Some("what is this?"),
        &[FakeFile::new(png(1, 100))],
    );
    wait_answered(&s.tg, &inbox(&s.home), &[id]).await;
    let sent = s.tg.sent_messages();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert!(
        sent[0].text.contains(PRIMARY) && sent[0].text.contains("does not accept images"),
        "{}",
        sent[0].text
    );
    assert_eq!(s.llm.request_count(), 0);
}

/// The real binary at `RUST_LOG=trace` fetches a photo and fails to fetch another: the
/// token (in every file URL) is in no log line and no reply.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bot_token_is_in_no_log_or_reply_when_files_are_fetched() {
    let tg = FakeTelegram::start(TOKEN).await;
    let llm = FakeProvider::start().await;
    let mut home = home(&tg, &llm, "", "");
    home.set("RUST_LOG", "trace").set("NO_COLOR", "1");
    let mut gw = Binary::spawn(&home).await;
    let ok = tg.send_photo(
        To::Dm,
        42,
        "alice",
        Some("look"),
        &[FakeFile::new(png(1, 100))],
    );
    let gone = tg.send_photo(
        To::Dm,
        43,
        "bob",
        Some("look"),
        &[FakeFile::new(png(2, 100)).missing()],
    );
    let sent = tg.wait_for_messages(2, WAIT).await;
    assert_eq!(tg.download_count(), 1);
    assert_eq!(tg.file_downloads().len(), 2, "{:?}", (ok, gone));
    gw.signal(rustix::process::Signal::TERM);
    gw.exit(WAIT).await;
    let secret = TOKEN.split(':').nth(1).unwrap();
    let log = gw.log();
    assert!(log.contains("TRACE"), "a trace log");
    assert!(
        log.contains("downloading your photo from Telegram failed"),
        "{log}"
    );
    assert!(!log.contains(secret), "the token in the log");
    for m in sent {
        assert!(!m.text.contains(secret), "the token in a reply: {}", m.text);
    }
}

/// The fake itself: `getFile` answers with the Bot API's fields (method names in any
/// case), the file route serves the bytes to the bot's token only, 404 otherwise.
#[tokio::test]
async fn the_fake_serves_files_like_the_bot_api() {
    let tg = FakeTelegram::start(TOKEN).await;
    let bytes = png(1, 50);
    tg.send_photo(To::Dm, 42, "alice", None, &[FakeFile::new(bytes.clone())]);
    let update = &tg.updates()[0];
    let photo = &update["message"]["photo"][0];
    for field in ["file_id", "file_unique_id", "file_size", "width", "height"] {
        assert!(!photo[field].is_null(), "{field} in {photo}");
    }
    let http = reqwest::Client::new();
    let file: Value = http
        .post(tg.method_url("GETFILE"))
        .json(&serde_json::json!({"file_id": photo["file_id"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(file["ok"], true, "{file}");
    let path = file["result"]["file_path"].as_str().unwrap();
    assert_eq!(file["result"]["file_size"], 50);
    assert_eq!(file["result"]["file_unique_id"], photo["file_unique_id"]);
    let url = |token: &str, path: &str| format!("{}/file/bot{token}/{path}", tg.api_url());
    let got = http.get(url(TOKEN, path)).send().await.unwrap();
    assert_eq!(got.status(), 200);
    assert_eq!(got.bytes().await.unwrap().to_vec(), bytes);
    // teloxide sends the path as one segment, `/` encoded.
    let encoded = url(TOKEN, &path.replace('/', "%2F"));
    assert_eq!(http.get(encoded).send().await.unwrap().status(), 200);
    let other = http.get(url("1:other", path)).send().await.unwrap();
    assert_eq!(other.status(), 401);
    let unknown = http
        .get(url(TOKEN, "photos/nope.jpg"))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
    let bad: Value = http
        .post(tg.method_url("getFile"))
        .json(&serde_json::json!({"file_id": "nope"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(bad["description"], "Bad Request: invalid file_id");
    assert_eq!(tg.download_count(), 2);
    assert_eq!(tg.file_downloads().len(), 4);
}

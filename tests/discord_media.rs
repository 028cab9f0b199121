//! Discord attachments to the model (DESIGN §10), end to end: the real serenity client
//! against the loopback fake Discord, whose CDN route serves the attachment bytes, with
//! the fake OpenAI provider behind it. Images go inline (`image_url` data URLs) with the
//! media type of their bytes, text files are inlined with their names, the announced
//! size is checked before downloading, refusals are told, and no download carries the
//! bot token.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support;

use crate::discord::harness;

use base64::Engine;
use harness::*;
use serde_json::Value;
use std::process::Stdio;
use support::fake_discord::{FakeAttachment, FakeDiscord};
use support::fake_provider::{Behavior, FakeProvider};
use support::home::TestHome;

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

/// The images of the last user message of an OpenAI request: (media type, bytes).
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
        .filter(|p| p["type"] == "image_url")
        .map(|p| {
            let url = p["image_url"]["url"].as_str().unwrap();
            let (head, data) = url
                .strip_prefix("data:")
                .and_then(|u| u.split_once(";base64,"))
                .unwrap_or_else(|| panic!("inline, never a URL: {url}"));
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(data)
                .unwrap();
            (head.to_string(), bytes)
        })
        .collect()
}

/// A DM from the owner with these attachments.
fn dm(dc: &FakeDiscord, content: &str, files: &[FakeAttachment]) -> u64 {
    dc.send_message_with_attachments(DM_CHANNEL, None, OWNER, "alice", content, false, files)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn image_attachment_reaches_the_model_inline() {
    let s = setup().await;
    let bytes = png(7, 1500);
    // Discord guessed JPEG from the name; the bytes are a PNG.
    let cat = FakeAttachment::new("cat.jpg", Some("image/jpeg"), bytes.clone());
    dm(&s.dc, "what is this?", &[cat]);
    let sent = s.dc.wait_for_channel_messages(DM_CHANNEL, 1, WAIT).await;
    assert_eq!(sent[0]["content"], "fake reply to: what is this?");
    let reqs = s.llm.requests();
    assert_eq!(reqs.len(), 1);
    assert_eq!(
        summary(&images(&reqs[0].body)),
        summary(&[("image/png".into(), bytes)])
    );
    assert_eq!(reqs[0].user_text(), "what is this?");
    let downloads = s.dc.cdn_downloads();
    assert_eq!(downloads.len(), 1);
    assert_eq!(downloads[0].status, 200);
    assert_eq!(
        downloads[0].header("authorization"),
        None,
        "the bot token never goes to the CDN"
    );
    s.finish().await;
}

/// Before: a message with no text was dropped, attachments or not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attachment_without_text_is_answered() {
    let s = setup().await;
    s.llm.script("sk-oa", [Behavior::Reply("A dog.".into())]);
    let bytes = jpeg(3, 900);
    dm(
        &s.dc,
        "",
        &[FakeAttachment::new("dog.jpeg", None, bytes.clone())],
    );
    let sent = s.dc.wait_for_channel_messages(DM_CHANNEL, 1, WAIT).await;
    assert_eq!(sent[0]["content"], "A dog.");
    assert_eq!(
        summary(&images(&s.llm.requests()[0].body)),
        summary(&[("image/jpeg".into(), bytes)])
    );
    s.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversize_attachment_is_refused_before_download() {
    let s = setup().await;
    let big = FakeAttachment::new("big.png", Some("image/png"), png(1, 100)).announcing(6 << 20);
    dm(&s.dc, "look at this", &[big]);
    let sent = s.dc.wait_for_channel_messages(DM_CHANNEL, 1, WAIT).await;
    let s = s.finish().await;
    assert_eq!(
        sent[0]["content"],
        "big.png is 6291456 bytes, over the 5242880-byte limit for images — send a smaller or compressed image"
    );
    assert_eq!(s.dc.channel_messages(DM_CHANNEL).len(), 1, "no other reply");
    assert!(s.dc.cdn_downloads().is_empty(), "nothing fetched");
    assert_eq!(s.llm.request_count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_attachment_is_inlined_with_its_name() {
    let s = setup().await;
    let log = FakeAttachment::new(
        "build.log",
        Some("text/plain; charset=utf-8"),
        "error[E0308]: mismatched types\n".as_bytes(),
    );
    dm(&s.dc, "why does this fail?", &[log]);
    s.dc.wait_for_channel_messages(DM_CHANNEL, 1, WAIT).await;
    let text = s.llm.requests()[0].user_text();
    assert!(
        text.starts_with("why does this fail?\n\n[file: build.log]\nerror[E0308]"),
        "{text}"
    );
    s.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_images_go_and_the_person_hears_about_the_rest() {
    let s = setup().await;
    let pngs: Vec<Vec<u8>> = (1..=5).map(|i| png(i, 200 + usize::from(i))).collect();
    let mut files: Vec<FakeAttachment> = pngs
        .iter()
        .enumerate()
        .map(|(i, b)| FakeAttachment::new(&format!("p{i}.png"), Some("image/png"), b.clone()))
        .collect();
    files.push(FakeAttachment::new(
        "spec.pdf",
        Some("application/pdf"),
        b"%PDF".to_vec(),
    ));
    dm(&s.dc, "compare", &files);
    let sent = s.dc.wait_for_channel_messages(DM_CHANNEL, 2, WAIT).await;
    assert_eq!(
        sent[0]["content"],
        "A message may carry at most 4 images — send the others in another message\nspec.pdf is not a plain-text file — send text files (UTF-8) or images"
    );
    assert_eq!(sent[1]["content"], "fake reply to: compare");
    let want: Vec<(String, Vec<u8>)> = pngs[..4]
        .iter()
        .map(|p| ("image/png".to_string(), p.clone()))
        .collect();
    assert_eq!(summary(&images(&s.llm.requests()[0].body)), summary(&want));
    assert_eq!(
        s.dc.cdn_downloads().len(),
        4,
        "the fifth image and the PDF are not fetched"
    );
    s.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_attachment_is_told_and_not_guessed_at() {
    let s = setup().await;
    let gone = FakeAttachment::new("gone.png", Some("image/png"), png(1, 10)).missing();
    dm(&s.dc, "what is this?", &[gone]);
    let sent = s.dc.wait_for_channel_messages(DM_CHANNEL, 1, WAIT).await;
    let s = s.finish().await;
    assert_eq!(
        sent[0]["content"],
        "Could not download gone.png: Discord's CDN answered HTTP 404 — send it again"
    );
    assert_eq!(
        s.llm.request_count(),
        0,
        "the caption alone is not answered"
    );
}

/// The real binary at `RUST_LOG=trace` fetches an attachment and fails on another:
/// the bot token is in no log line and no reply.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bot_token_is_in_no_log_or_reply_when_attachments_are_fetched() {
    let dc = FakeDiscord::start(TOKEN).await;
    let llm = FakeProvider::start().await;
    let models = "[agents.defaults.models.\"openai/gpt-4o-mini\"]\n";
    let mut home = TestHome::new(&config(
        &llm,
        "openai/gpt-4o-mini",
        models,
        &dc.api_base(),
        &default_body(),
    ));
    home.set("OPENAI_API_KEY", "sk-oa")
        .set("DISCORD_BOT_TOKEN", TOKEN)
        .set("RUST_LOG", "trace")
        .set("NO_COLOR", "1");
    let log_path = home.dir.path().join("gateway.log");
    let log_file = std::fs::File::create(&log_path).unwrap();
    let mut child = home
        .command(&["gateway", "--port", "0"])
        .stdout(Stdio::from(log_file.try_clone().unwrap()))
        .stderr(Stdio::from(log_file))
        .spawn()
        .unwrap();
    assert!(dc.wait_ready(WAIT).await, "the gateway's Discord connects");
    dc.register_channel(DM_CHANNEL, None, OWNER);
    dm(
        &dc,
        "look",
        &[
            FakeAttachment::new("ok.png", Some("image/png"), png(1, 100)),
            FakeAttachment::new("gone.png", Some("image/png"), png(2, 100)).missing(),
        ],
    );
    let sent = dc.wait_for_channel_messages(DM_CHANNEL, 2, WAIT).await;
    assert_eq!(dc.cdn_download_count(), 1);
    let pid = child.id().unwrap().to_string();
    std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    let _ = tokio::time::timeout(WAIT, child.wait()).await;
    let _ = child.start_kill();
    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(log.contains("TRACE"), "a trace log");
    assert!(log.contains("Discord's CDN answered HTTP 404"), "{log}");
    assert!(!log.contains(TOKEN), "the token in the log");
    for m in sent {
        let text = m["content"].as_str().unwrap();
        assert!(!text.contains(TOKEN), "the token in a reply: {text}");
    }
}

/// The fake itself: MESSAGE_CREATE carries complete attachment objects whose `url`
/// the CDN route serves without a token; anything else there is 404.
#[tokio::test]
async fn the_fake_cdn_serves_attachments_like_discord() {
    let dc = FakeDiscord::start(TOKEN).await;
    let bytes = png(1, 64);
    let id = dm(
        &dc,
        "hi",
        &[FakeAttachment::new(
            "a.png",
            Some("image/png"),
            bytes.clone(),
        )],
    );
    let msg = dc.message(id).unwrap();
    let a = &msg["attachments"][0];
    for field in ["id", "filename", "size", "url", "proxy_url", "content_type"] {
        assert!(!a[field].is_null(), "{field} in {a}");
    }
    assert_eq!(a["size"], 64);
    let http = reqwest::Client::new();
    let got = http.get(a["url"].as_str().unwrap()).send().await.unwrap();
    assert_eq!(got.status(), 200);
    assert_eq!(got.bytes().await.unwrap().to_vec(), bytes);
    let missing = format!("{}/attachments/1/2/nope.png", dc.api_base());
    assert_eq!(http.get(missing).send().await.unwrap().status(), 404);
    assert_eq!(dc.cdn_download_count(), 1);
    assert_eq!(dc.cdn_downloads().len(), 2);
}

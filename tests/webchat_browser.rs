//! The web chat page in a real headless Chromium (DESIGN §10, issue 12), driven over the
//! DevTools protocol against an in-process gateway and the fake provider: a reply's
//! Markdown renders (`<strong>`, `<pre><code>` with a copy button) while a hostile
//! `<img onerror>` in it creates no element and runs nothing; images are picked and
//! pasted, shown as thumbnails, sent, refused with a message in the chat, and their
//! placeholders come back with the history after a reload.
//!
//! Ignored by default (a fresh `cargo test` needs no browser):
//! `cargo test --test integration webchat_browser:: -- --ignored` (.ci/run installs Chromium).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "webchat_browser/cdp.rs"]
mod cdp;
use crate::support;

use base64::Engine;
use cdp::Browser;
use serde_json::{Value, json};
use support::fake_provider::{Behavior, FakeProvider};
use support::gateway::Gateway;
use support::home::TestHome;

/// Runs before the page's scripts: records CSP violations.
const PRELUDE: &str = "window.__csp = []; document.addEventListener('securitypolicyviolation', (e) => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));";

/// A valid 1×1 PNG (so the page can draw its thumbnail).
const DOT_PNG: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==";

async fn gateway(fake: &FakeProvider) -> Gateway {
    let config = TestHome::config_for_fake("openai/gpt-4o-mini", fake);
    let mut home = TestHome::new(&config);
    home.set("OPENAI_API_KEY", "browser-key");
    Gateway::start(home, None).await
}

/// Open the chat and wait until its history has loaded (the Send button is enabled).
async fn open_chat(gw: &Gateway) -> Browser {
    let mut b = Browser::launch().await;
    b.open(&format!("{}/", gw.url), PRELUDE).await;
    ready(&mut b).await;
    b
}

async fn ready(b: &mut Browser) {
    b.wait_for(
        "document.readyState === 'complete' && window.__csp && !document.getElementById('send').disabled",
        "the page to load its history",
    )
    .await;
}

/// Type `text` and press Send.
async fn say(b: &mut Browser, text: &str) {
    b.eval(&format!(
        "document.getElementById('input').value = {}; document.getElementById('composer').requestSubmit(); true",
        json!(text)
    ))
    .await;
}

/// Paste a file made in the page from base64 `data` into the message box.
async fn paste(b: &mut Browser, name: &str, mime: &str, data: &str) {
    b.eval(&format!(
        "(() => {{
           const bytes = Uint8Array.from(atob({data}), (c) => c.charCodeAt(0));
           const dt = new DataTransfer();
           dt.items.add(new File([bytes], {name}, {{ type: {mime} }}));
           const e = new ClipboardEvent('paste', {{ clipboardData: dt, bubbles: true, cancelable: true }});
           document.getElementById('input').dispatchEvent(e);
           return true;
         }})()",
        data = json!(data),
        name = json!(name),
        mime = json!(mime),
    ))
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Chromium: cargo test --test integration webchat_browser:: -- --ignored"]
async fn markdown_renders_and_a_hostile_img_creates_nothing_and_runs_nothing() {
    let fake = FakeProvider::start().await;
    fake.set_default(Behavior::Reply(
        "Here is **bold** and a [link](https://example.com/?q=\"x\") and [bad](javascript:window.__pwned=2).\n\n\
         ```rust\nfn main() { println!(\"<&>\"); }\n```\n\n\
         <img src=x onerror=\"window.__pwned=1\">\n\n\
         ![remote](http://127.0.0.1:9/cat.png)"
            .into(),
    ));
    let gw = gateway(&fake).await;
    let mut b = open_chat(&gw).await;
    let origin = gw.url.clone();
    b.call(
        "Browser.grantPermissions",
        json!({"origin": origin, "permissions": ["clipboardReadWrite", "clipboardSanitizedWrite"]}),
    )
    .await;
    say(&mut b, "show me").await;
    b.wait_for(
        "document.querySelector('.msg.assistant .bubble.md')",
        "the rendered reply",
    )
    .await;
    let seen = b
        .eval(
            "(() => {
               const q = (s) => document.querySelector(s);
               const bubble = q('.msg.assistant .bubble');
               return {
                 strong: q('.assistant strong')?.textContent,
                 code: q('.assistant .codeblock pre > code')?.textContent,
                 lang: q('.assistant .codeblock .lang')?.textContent,
                 copy: q('.assistant .codeblock button.copy')?.textContent,
                 imgs: document.querySelectorAll('img, image, picture, iframe, object, embed').length,
                 scripts: document.querySelectorAll('script').length,
                 pwned: typeof window.__pwned,
                 links: Array.from(bubble.querySelectorAll('a'), (a) => [a.getAttribute('href'), a.rel, a.textContent]),
                 rawShownAsText: bubble.textContent.includes('<img src=x onerror=\"window.__pwned=1\">'),
                 csp: window.__csp,
                 model: q('.msg.assistant .meta')?.textContent,
               };
             })()",
        )
        .await;
    assert_eq!(seen["strong"], "bold", "{seen}");
    assert_eq!(seen["code"], "fn main() { println!(\"<&>\"); }", "{seen}");
    assert_eq!(seen["lang"], "rust");
    assert_eq!(seen["copy"], "Copy");
    assert_eq!(
        seen["imgs"], 0,
        "no image element, not even for ![remote](…)"
    );
    assert_eq!(seen["scripts"], 1, "only the page's own /app.js");
    assert_eq!(seen["pwned"], "undefined");
    assert_eq!(
        seen["links"],
        json!([
            [
                "https://example.com/?q=%22x%22",
                "noopener noreferrer",
                "link"
            ],
            [
                "http://127.0.0.1:9/cat.png",
                "noopener noreferrer",
                "remote"
            ],
        ]),
        "javascript: is no link; the Markdown image is a link"
    );
    assert_eq!(seen["rawShownAsText"], true);
    assert_eq!(seen["csp"], json!([]), "nothing the CSP had to block");
    assert_eq!(seen["model"], "openai/gpt-4o-mini");

    // The copy button puts the code on the clipboard (or says how to copy it).
    b.eval("document.querySelector('.assistant .codeblock button.copy').click(); true")
        .await;
    b.wait_for(
        "document.querySelector('.assistant .codeblock button.copy').textContent !== 'Copy'",
        "the copy button's answer",
    )
    .await;
    let copied = b
        .eval("document.querySelector('.assistant .codeblock button.copy').textContent")
        .await;
    assert_eq!(copied, "Copied");
    let clip = b.eval("navigator.clipboard.readText()").await;
    assert_eq!(clip, "fn main() { println!(\"<&>\"); }");
    assert!(b.exceptions.is_empty(), "{:?}", b.exceptions);
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Chromium: cargo test --test integration webchat_browser:: -- --ignored"]
async fn picked_and_pasted_images_are_sent_refused_ones_named_and_history_shows_placeholders() {
    let fake = FakeProvider::start().await;
    let gw = gateway(&fake).await;
    let dir = tempfile::tempdir().unwrap();
    let png = base64::engine::general_purpose::STANDARD
        .decode(DOT_PNG)
        .unwrap();
    let picked = dir.path().join("picked.png");
    std::fs::write(&picked, &png).unwrap();
    let mut b = open_chat(&gw).await;

    // Pick one, paste two, remove the second pasted one: two thumbnails wait.
    b.set_files("#file", &[&picked]).await;
    paste(&mut b, "pasted.png", "image/png", DOT_PNG).await;
    paste(&mut b, "extra.png", "image/png", DOT_PNG).await;
    b.wait_for(
        "document.querySelectorAll('#thumbs .thumb canvas[data-drawn]').length === 3",
        "three drawn thumbnails",
    )
    .await;
    b.eval("document.querySelectorAll('#thumbs .thumb-remove')[2].click(); true")
        .await;
    let names = b
        .eval("Array.from(document.querySelectorAll('#thumbs .thumb'), (t) => t.title)")
        .await;
    assert_eq!(names, json!(["picked.png", "pasted.png"]));
    // Not an image at all: the page says so in the chat and attaches nothing.
    paste(&mut b, "notes.txt", "text/plain", "aGVsbG8=").await;
    b.wait_for(
        "document.querySelector('.msg.notice .bubble.error')",
        "the refusal of notes.txt",
    )
    .await;
    let said = b
        .eval("document.querySelector('.msg.notice .bubble.error').textContent")
        .await;
    assert_eq!(
        said,
        "notes.txt is not a PNG, JPEG, GIF or WebP image — send it in one of those formats"
    );

    say(&mut b, "two images").await;
    b.wait_for(
        "document.querySelector('.msg.assistant .bubble.md')",
        "the reply",
    )
    .await;
    let shown = b
        .eval(
            "({ mine: document.querySelectorAll('.msg.user .thumbs canvas').length,
                waiting: document.querySelectorAll('#thumbs .thumb').length,
                hidden: document.getElementById('thumbs').hidden,
                imgs: document.querySelectorAll('img').length,
                csp: window.__csp })",
        )
        .await;
    assert_eq!(
        shown,
        json!({"mine": 2, "waiting": 0, "hidden": true, "imgs": 0, "csp": []})
    );
    let reqs = fake.requests();
    assert_eq!(reqs.len(), 1);
    assert!(reqs[0].user_text().contains("two images"));
    let sent: Vec<_> = reqs[0].images.iter().map(|i| i.data.clone()).collect();
    assert_eq!(
        sent,
        [png.clone(), png.clone()],
        "both images reached the provider"
    );
    let history: Value = reqwest::get(format!(
        "{}/api/history?session={}",
        gw.url,
        b.eval("localStorage.getItem('remoteclaw.session')")
            .await
            .as_str()
            .unwrap()
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(
        history["messages"][0]["text"], "two images\n[image: image/png]\n[image: image/png]",
        "the gateway received both images as attachments"
    );

    // An image the gateway refuses (its bytes are no PNG): its words in the chat, the
    // image back in the composer, nothing sent to the model.
    paste(&mut b, "fake.png", "image/png", "bm90IGEgcG5n").await;
    b.wait_for("document.querySelector('#thumbs .thumb')", "the thumbnail")
        .await;
    say(&mut b, "bad").await;
    b.wait_for(
        "document.querySelectorAll('.msg.assistant .bubble.error').length === 1 && !document.getElementById('send').disabled",
        "the gateway's refusal",
    )
    .await;
    let refused = b
        .eval(
            "({ said: Array.from(document.querySelectorAll('.msg.assistant .bubble.error')).pop().textContent,
                back: Array.from(document.querySelectorAll('#thumbs .thumb'), (t) => t.title),
                text: document.getElementById('input').value })",
        )
        .await;
    assert_eq!(
        refused,
        json!({
            "said": "fake.png is not a PNG, JPEG, GIF or WebP image — send it in one of those formats",
            "back": ["fake.png"],
            "text": "bad",
        })
    );
    assert_eq!(fake.request_count(), 1);

    // Reopened, the page shows the history: the placeholders, the rendered reply.
    b.reload().await;
    ready(&mut b).await;
    let after = b
        .eval(
            "({ user: Array.from(document.querySelectorAll('.msg.user .bubble'), (e) => e.textContent),
                reply: document.querySelector('.msg.assistant .bubble.md')?.textContent })",
        )
        .await;
    assert_eq!(
        after,
        json!({
            "user": ["two images\n[image: image/png]\n[image: image/png]"],
            "reply": "fake reply to: two images",
        })
    );
    assert!(b.exceptions.is_empty(), "{:?}", b.exceptions);
    gw.shutdown().await;
}

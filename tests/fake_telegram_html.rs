//! The fake Telegram's HTML mode (tests/support/fake_telegram/markup) follows the Bot API's
//! documented rules: it accepts the documented tags and refuses what the docs rule out.

use crate::support::fake_telegram::markup;

fn telegram_accepts(html: &str) -> Result<String, String> {
    markup::render(Some("HTML"), html)
}

#[test]
fn fake_telegram_html_accepts_the_documented_tags() {
    let ok = [
        "<b>b</b><strong>s</strong><i>i</i><em>e</em><u>u</u><ins>n</ins><s>s</s><strike>k</strike><del>d</del>",
        "<span class=\"tg-spoiler\">x</span><tg-spoiler>y</tg-spoiler>",
        "<a href='https://x.y/?a&amp;b'>l <b>b</b></a>",
        "<tg-emoji emoji-id=\"5368324170671202286\">👍</tg-emoji>",
        "<pre><code class=\"language-python\">x</code></pre><pre>y</pre><code>z</code>",
        "<blockquote>q <a href=\"https://x\">l</a><pre>p</pre></blockquote><blockquote expandable>e</blockquote>",
        "<b>bold <i>it <u>u <s>s <tg-spoiler>sp</tg-spoiler></s></u></i></b>",
        "a & b &#x1F600; &#65; &nbsp;",
    ];
    for html in ok {
        telegram_accepts(html).unwrap_or_else(|e| panic!("{html:?}: {e}"));
    }
    assert_eq!(
        telegram_accepts("x &nbsp; &#65;&quot;").unwrap(),
        "x &nbsp; A\""
    );
}

#[test]
fn fake_telegram_html_refuses_what_telegram_documents_as_invalid() {
    let refused = [
        ("<br>", "Unsupported start tag \"br\""),
        (
            "<b class=\"x\">a</b>",
            "Unsupported attribute \"class\" of tag \"b\"",
        ),
        ("<a>x</a>", "must have attribute \"href\""),
        (
            "<a href=\"h\" title=\"t\">x</a>",
            "Unsupported attribute \"title\"",
        ),
        ("<span>x</span>", "must have class \"tg-spoiler\""),
        ("<tg-emoji>x</tg-emoji>", "must have attribute \"emoji-id\""),
        (
            "<code class=\"language-rust\">x</code>",
            "Unsupported attribute \"class\" of tag \"code\"",
        ),
        (
            "<pre><code class=\"rust\">x</code></pre>",
            "only class \"language-",
        ),
        (
            "<b><code>x</code></b>",
            "Entity \"code\" can't be inside \"b\"",
        ),
        (
            "<i><pre>x</pre></i>",
            "Entity \"pre\" can't be inside \"i\"",
        ),
        (
            "<code><b>x</b></code>",
            "Entity \"b\" can't be inside \"code\"",
        ),
        (
            "<pre><code class=\"language-x\"><i>x</i></code></pre>",
            "Entity \"i\" can't be inside",
        ),
        (
            "<a href=\"h\"><code>x</code></a>",
            "Entity \"code\" can't be inside \"a\"",
        ),
        (
            "<a href=\"h\"><a href=\"g\">x</a></a>",
            "Entity \"a\" can't be inside \"a\"",
        ),
        (
            "<blockquote><blockquote>x</blockquote></blockquote>",
            "Entity \"blockquote\" can't be inside",
        ),
        ("<b><i>x</b></i>", "Unmatched end tag"),
        (
            "<b>x",
            "Can't find end tag corresponding to start tag \"b\"",
        ),
        ("x</b>", "Unexpected end tag"),
        ("a <3", "Unclosed start tag"),
        ("<a href=\"h>x</a>", "Unclosed value of attribute \"href\""),
    ];
    for (html, want) in refused {
        match telegram_accepts(html) {
            Ok(v) => panic!("{html:?} was accepted as {v:?}"),
            Err(e) => {
                assert!(e.starts_with("Bad Request: can't parse entities: "), "{e}");
                assert!(e.contains(want), "{html:?}: {e} (wanted {want:?})");
            }
        }
    }
}

//! The Markdown → Telegram HTML renderer and the tag-balanced HTML chunker
//! (`remoteclaw::format`), checked against the fake Telegram's HTML-mode rules.

use crate::support::fake_telegram::markup;

use proptest::prelude::*;
use remoteclaw::channels::chunk::{Limit, Measure, TELEGRAM};
use remoteclaw::format::html_chunk::split;
use remoteclaw::format::telegram_html::{markdown_literal, plain, render};

/// The visible text Telegram would show for `html`, or why it refuses it.
fn telegram_accepts(html: &str) -> Result<String, String> {
    markup::render(Some("HTML"), html)
}

/// Every `&` starts one of the entities Telegram documents (the fake, like Telegram,
/// lets a bare `&` through; our output must not rely on that).
fn strict_entities(html: &str) -> bool {
    html.match_indices('&').all(|(i, _)| {
        let rest = &html[i + 1..];
        ["amp;", "lt;", "gt;", "quot;", "#"]
            .iter()
            .any(|e| rest.starts_with(e))
    })
}

fn utf16(s: &str) -> usize {
    s.encode_utf16().count()
}

const CASES: &[(&str, &str, &str)] = &[
    (
        "nesting",
        "**bold *both* bold**",
        "<b>bold <i>both</i> bold</b>",
    ),
    ("strikethrough", "~~gone~~ here", "<s>gone</s> here"),
    (
        "underscore emphasis",
        "_it_ and __bold__",
        "<i>it</i> and <b>bold</b>",
    ),
    (
        "inline code escapes",
        "use `a<b && c>d`",
        "use <code>a&lt;b &amp;&amp; c&gt;d</code>",
    ),
    (
        "code inside bold closes and reopens",
        "**a `x` b**",
        "<b>a </b><code>x</code><b> b</b>",
    ),
    (
        "fenced code with language",
        "```rust\nif a < b && c {}\n```",
        "<pre><code class=\"language-rust\">if a &lt; b &amp;&amp; c {}</code></pre>",
    ),
    (
        "fenced code without language",
        "```\nx & y\n```",
        "<pre>x &amp; y</pre>",
    ),
    (
        "hostile language is filtered",
        "```ru\"st><script\nx\n```",
        "<pre><code class=\"language-rustscript\">x</code></pre>",
    ),
    ("indented code", "    let x = 1;", "<pre>let x = 1;</pre>"),
    (
        "link with quotes in url and text",
        "[a \"q\"](https://e.x/?q=\"1\"&r=2)",
        "<a href=\"https://e.x/?q=&quot;1&quot;&amp;r=2\">a \"q\"</a>",
    ),
    ("javascript link is text", "[x](javascript:alert(1))", "x"),
    ("relative link is text", "see [x](/path)", "see x"),
    (
        "tg and mailto links",
        "[me](tg://user?id=1) [m](mailto:a@b.c)",
        "<a href=\"tg://user?id=1\">me</a> <a href=\"mailto:a@b.c\">m</a>",
    ),
    (
        "code inside link is plain",
        "[`c` **b**](https://a.b)",
        "<a href=\"https://a.b\">c <b>b</b></a>",
    ),
    (
        "autolink",
        "<https://a.b/c>",
        "<a href=\"https://a.b/c\">https://a.b/c</a>",
    ),
    ("heading", "# Title\ntext", "<b>Title</b>\n\ntext"),
    ("heading with code", "## a `b`", "<b>a </b><code>b</code>"),
    (
        "bullet list nested",
        "- a\n- b\n  - c\n\nafter",
        "• a\n• b\n   • c\n\nafter",
    ),
    ("ordered list from 3", "3. x\n4. y", "3. x\n4. y"),
    ("loose list", "- a\n\n- b", "• a\n• b"),
    (
        "blockquote",
        "> q **b**",
        "<blockquote>q <b>b</b></blockquote>",
    ),
    (
        "nested blockquote flattened",
        "> a\n>\n> > b",
        "<blockquote>a\n\nb</blockquote>",
    ),
    (
        "code in blockquote",
        "> ```\n> x\n> ```",
        "<blockquote><pre>x</pre></blockquote>",
    ),
    (
        "table aligned",
        "| a | bb |\n|:-|--:|\n| ccc | d |",
        "<pre>a   | bb\n----+---\nccc |  d</pre>",
    ),
    (
        "table escapes",
        "| <x> |\n|-|\n| **&** |",
        "<pre>&lt;x&gt;\n---\n&amp;</pre>",
    ),
    ("unbalanced stars", "**open and *half", "**open and *half"),
    (
        "unclosed fence",
        "```py\nprint(1)",
        "<pre><code class=\"language-py\">print(1)</code></pre>",
    ),
    (
        "raw inline html escaped",
        "a <b>hi</b> <img src=x onerror=y>",
        "a &lt;b&gt;hi&lt;/b&gt; &lt;img src=x onerror=y&gt;",
    ),
    (
        "raw html block escaped",
        "<div>\n*x*\n</div>",
        "&lt;div&gt;\n*x*\n&lt;/div&gt;",
    ),
    (
        "entities in markdown",
        "a &amp; b &lt; c &copy;",
        "a &amp; b &lt; c ©",
    ),
    ("emoji", "**héllo 🌍👩‍💻**", "<b>héllo 🌍👩‍💻</b>"),
    (
        "image",
        "![a cat](https://x/c.png)",
        "a cat (https://x/c.png)",
    ),
    ("breaks", "a  \nb\nc", "a\nb\nc"),
    ("paragraphs", "a\n\n\n\nb", "a\n\nb"),
    ("rule", "a\n\n---\n\nb", "a\n\n——————\n\nb"),
    ("empty", "", ""),
];

#[test]
fn render_cases() {
    for (name, markdown, want) in CASES {
        let got = render(markdown);
        assert_eq!(&got, want, "case {name}: {markdown:?}");
        telegram_accepts(&got).unwrap_or_else(|e| panic!("case {name}: {got:?}: {e}"));
        assert!(strict_entities(&got), "case {name}: {got:?}");
    }
}

#[test]
fn plain_is_the_visible_text() {
    let html =
        "<b>a &lt;b&gt;</b> <a href=\"https://x?a&amp;b\">l &amp; &quot;q&quot; &#128512;</a> a&b";
    assert_eq!(plain(html), "a <b> l & \"q\" 😀 a&b");
    assert_eq!(plain("a <3"), "a <3");
    assert_eq!(plain(html), telegram_accepts(html).unwrap());
}

fn limit(max: usize) -> Limit {
    Limit {
        max,
        measure: Measure::Utf16Units,
    }
}

#[test]
fn split_counts_visible_text_only() {
    let html = "<b>x</b>".repeat(4096);
    assert_eq!(split(&html, TELEGRAM), vec![html.clone()]);
    let html = "&amp;".repeat(4096);
    assert_eq!(split(&html, TELEGRAM).len(), 1);
    assert_eq!(split(&format!("{html}&amp;"), TELEGRAM).len(), 2);
}

#[test]
fn split_closes_and_reopens_tags() {
    assert_eq!(
        split("<b>aaaa<i>aaaa</i>aa</b>", limit(4)),
        ["<b>aaaa</b>", "<b><i>aaaa</i></b>", "<b>aa</b>"]
    );
    assert_eq!(
        split("<a href=\"https://x.y/?a&amp;b\">one two</a>", limit(4)),
        [
            "<a href=\"https://x.y/?a&amp;b\">one</a>",
            "<a href=\"https://x.y/?a&amp;b\">two</a>"
        ]
    );
}

#[test]
fn split_reopens_pre_with_its_language() {
    let html = "<pre><code class=\"language-rust\">line1\nline2</code></pre>";
    assert_eq!(
        split(html, limit(8)),
        [
            "<pre><code class=\"language-rust\">line1</code></pre>",
            "<pre><code class=\"language-rust\">line2</code></pre>"
        ]
    );
}

#[test]
fn split_never_splits_an_entity_or_a_surrogate_pair() {
    assert_eq!(split("&amp;&lt;&gt;", limit(2)), ["&amp;&lt;", "&gt;"]);
    assert_eq!(split("🌍🌍🌍", limit(3)), ["🌍", "🌍", "🌍"]);
    // A limit below one character sends it alone rather than looping.
    assert_eq!(split("🌍a", limit(1)), ["🌍", "a"]);
}

#[test]
fn split_prefers_paragraph_then_line_then_space() {
    assert_eq!(
        split("aaa bbb\n\nccc ddd", limit(12)),
        ["aaa bbb", "ccc ddd"]
    );
    assert_eq!(split("aa bb\ncc dd", limit(9)), ["aa bb", "cc dd"]);
    assert_eq!(split("aa bb cc", limit(6)), ["aa bb", "cc"]);
    assert_eq!(split("  \n \n", limit(6)), Vec::<String>::new());
}

/// Markdown-ish input: fragments models write, hostile ones and free text.
fn markdownish() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("**"),
        Just("*"),
        Just("_"),
        Just("~~"),
        Just("`"),
        Just("```rust\n"),
        Just("```\n"),
        Just("\n"),
        Just("\n\n"),
        Just("> "),
        Just("> > "),
        Just("- "),
        Just("  - "),
        Just("1. "),
        Just("# "),
        Just("[l](https://a.b/\"q\"&x)"),
        Just("[j](javascript:x)"),
        Just("[x]("),
        Just(")"),
        Just("!["),
        Just("]"),
        Just("|a|b|\n|-|:-:|\n|c|d|\n"),
        Just("<b>"),
        Just("</i>"),
        Just("<pre>"),
        Just("&amp;"),
        Just("&"),
        Just("<"),
        Just(">"),
        Just("\""),
        Just("🌍"),
        Just("e\u{301}"),
        Just("👩‍💻"),
        Just("    "),
        Just("  \n"),
        Just("<https://x.y>"),
        Just("---\n"),
    ]
    .prop_map(str::to_owned);
    let piece = prop_oneof![3 => piece, 2 => "[a-z ]{1,8}", 1 => any::<String>()];
    prop::collection::vec(piece, 0..40).prop_map(|v| v.concat())
}

fn no_space(s: &str) -> String {
    s.chars().filter(|c| !c.is_whitespace()).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    /// RemoteClaw's own words put before a model reply show exactly as written: no
    /// Markdown in them takes effect (leading spaces show as no-break spaces; a line's
    /// trailing spaces and a run of blank lines fold, as Markdown folds them).
    #[test]
    fn markdown_literal_shows_as_written(text in prop_oneof![markdownish(), "[ -~\n]{0,80}", any::<String>()]) {
        let text: String = text.chars().filter(|c| *c != '\r' && !c.is_control() || *c == '\n').collect();
        let html = render(&markdown_literal(&text));
        let visible = telegram_accepts(&html);
        prop_assert!(visible.is_ok(), "{text:?} → {html:?}: {visible:?}");
        let shown: Vec<String> = visible.unwrap().replace('\u{a0}', " ").lines().map(|l| l.trim_end().to_string()).collect();
        let want: Vec<String> = text.replace('\u{a0}', " ").lines().map(|l| l.trim_end().to_string()).collect();
        // Markdown folds a run of blank lines into one paragraph break.
        let fold = |lines: Vec<String>| {
            let mut out: Vec<String> = Vec::new();
            for l in lines {
                if !(l.is_empty() && out.last().is_some_and(String::is_empty)) {
                    out.push(l);
                }
            }
            out.join("\n")
        };
        let (shown, want) = (fold(shown), fold(want));
        prop_assert_eq!(shown.trim(), want.trim(), "{:?} → {:?}", text, html);
    }

    #[test]
    fn render_output_passes_telegram_rules(md in prop_oneof![markdownish(), any::<String>()]) {
        let html = render(&md);
        let visible = telegram_accepts(&html);
        prop_assert!(visible.is_ok(), "{md:?} → {html:?}: {visible:?}");
        prop_assert!(strict_entities(&html), "{md:?} → {html:?}");
        prop_assert_eq!(plain(&html), visible.unwrap());
    }

    #[test]
    fn split_parts_pass_telegram_rules_and_fit(md in markdownish(), max in 2usize..80) {
        let html = render(&md);
        let parts = split(&html, limit(max));
        let mut joined = String::new();
        for part in &parts {
            let visible = telegram_accepts(part);
            prop_assert!(visible.is_ok(), "{html:?} part {part:?}: {visible:?}");
            let visible = visible.unwrap();
            prop_assert!(utf16(&visible) <= max, "part {part:?} is {} > {max}", utf16(&visible));
            prop_assert!(!visible.trim().is_empty(), "empty part {part:?}");
            prop_assert!(strict_entities(part), "{part:?}");
            joined.push_str(&visible);
        }
        prop_assert_eq!(no_space(&joined), no_space(&plain(&html)));
    }
}

//! Cases of the Markdown → web chat tree builder, compared as the JSON the page gets.

use super::*;
use serde_json::{Value, json};

fn tree(md: &str) -> Value {
    serde_json::to_value(render(md)).unwrap()
}

/// Every `kind` in the tree, depth first.
fn kinds(nodes: &Value, out: &mut Vec<String>) {
    for n in nodes.as_array().unwrap() {
        out.push(n["kind"].as_str().unwrap().to_string());
        if let Some(c) = n.get("children") {
            kinds(c, out);
        }
    }
}

fn all_kinds(md: &str) -> Vec<String> {
    let mut out = Vec::new();
    kinds(&tree(md), &mut out);
    out
}

#[test]
fn inline_styles_nest() {
    assert_eq!(
        tree("**bold _both_** ~~gone~~ and `x`"),
        json!([{"kind": "p", "children": [
            {"kind": "strong", "children": [
                {"kind": "text", "text": "bold "},
                {"kind": "em", "children": [{"kind": "text", "text": "both"}]},
            ]},
            {"kind": "text", "text": " "},
            {"kind": "del", "children": [{"kind": "text", "text": "gone"}]},
            {"kind": "text", "text": " and "},
            {"kind": "code", "text": "x"},
        ]}])
    );
}

#[test]
fn code_keeps_lt_and_amp_as_text_and_its_language() {
    assert_eq!(
        tree("```rust\nif a < b && c > d { \"&amp;\" }\n```"),
        json!([{"kind": "pre", "lang": "rust", "text": "if a < b && c > d { \"&amp;\" }"}])
    );
    assert_eq!(
        tree("`<b>&lt;</b>`"),
        json!([{"kind": "p", "children": [{"kind": "code", "text": "<b>&lt;</b>"}]}])
    );
    // An info string is cut to a plain language name; none at all for indented code.
    assert_eq!(
        tree("```c\"><x\nint;\n```")[0]["lang"],
        json!("cx"),
        "only [A-Za-z0-9_+#.-] is kept"
    );
    assert_eq!(
        tree("    indented\n"),
        json!([{"kind": "pre", "text": "indented"}])
    );
}

#[test]
fn links_keep_quotes_in_their_href_and_only_allowed_schemes() {
    assert_eq!(
        tree(r#"[say "hi"](https://example.com/?q="x"&a=1 "title")"#),
        json!([{"kind": "p", "children": [
            // Quotes stay in the URL: the page sets it as a property, never in markup.
            {"kind": "a", "href": "https://example.com/?q=\"x\"&a=1", "children": [
                {"kind": "text", "text": "say \"hi\""},
            ]},
        ]}])
    );
    assert_eq!(
        tree("[mail](mailto:a@b.example) [web](HTTP://x.example)"),
        json!([{"kind": "p", "children": [
            {"kind": "a", "href": "mailto:a@b.example", "children": [{"kind": "text", "text": "mail"}]},
            {"kind": "text", "text": " "},
            {"kind": "a", "href": "HTTP://x.example", "children": [{"kind": "text", "text": "web"}]},
        ]}])
    );
}

#[test]
fn javascript_and_other_links_are_dropped_to_their_text() {
    for md in [
        "[click](javascript:alert(1))",
        "[click](JavaScript:alert(1))",
        "[click](<java\tscript:alert(1)>)",
        "[click](data:text/html,<script>alert(1)</script>)",
        "[click](vbscript:x)",
        "[click](tg://resolve?domain=x)",
        "[click](/relative)",
        "[click](<  javascript:alert(1)>)",
    ] {
        assert_eq!(
            tree(md),
            json!([{"kind": "p", "children": [{"kind": "text", "text": "click"}]}]),
            "{md}"
        );
    }
    assert_eq!(
        tree("<javascript:alert(1)>"),
        json!([{"kind": "p", "children": [{"kind": "text", "text": "javascript:alert(1)"}]}])
    );
}

#[test]
fn raw_html_is_text() {
    assert_eq!(
        tree(r#"hi <img src=x onerror="window.__pwned=1"> there"#),
        json!([{"kind": "p", "children": [
            {"kind": "text", "text": r#"hi <img src=x onerror="window.__pwned=1"> there"#},
        ]}])
    );
    assert_eq!(
        tree("<script>alert(1)</script>\n\nafter"),
        json!([
            {"kind": "p", "children": [{"kind": "text", "text": "<script>alert(1)</script>"}]},
            {"kind": "p", "children": [{"kind": "text", "text": "after"}]},
        ])
    );
}

#[test]
fn images_become_links_never_images() {
    assert_eq!(
        tree("![a cat](https://x.example/cat.png)"),
        json!([{"kind": "p", "children": [
            {"kind": "a", "href": "https://x.example/cat.png", "children": [{"kind": "text", "text": "a cat"}]},
        ]}])
    );
    assert_eq!(
        tree("![](https://x.example/c.png)")[0]["children"][0]["children"][0]["text"],
        json!("https://x.example/c.png"),
        "no alt text: the URL is the label"
    );
    // Inside a link, an image is its alt text; a refused URL leaves the alt text alone.
    assert_eq!(
        tree("[![alt](https://i.example/a.png)](https://l.example)"),
        json!([{"kind": "p", "children": [
            {"kind": "a", "href": "https://l.example", "children": [{"kind": "text", "text": "alt"}]},
        ]}])
    );
    assert_eq!(
        tree("![x](javascript:alert(1))"),
        json!([{"kind": "p", "children": [{"kind": "text", "text": "x"}]}])
    );
}

#[test]
fn blocks_lists_quotes_headings_and_tables() {
    assert_eq!(
        tree("# Title\n\n> quoted\n> > deeper\n\n3. three\n4. four\n   - sub\n\n---"),
        json!([
            {"kind": "h1", "children": [{"kind": "text", "text": "Title"}]},
            {"kind": "blockquote", "children": [
                {"kind": "p", "children": [{"kind": "text", "text": "quoted"}]},
                {"kind": "blockquote", "children": [
                    {"kind": "p", "children": [{"kind": "text", "text": "deeper"}]},
                ]},
            ]},
            {"kind": "ol", "start": 3, "children": [
                {"kind": "li", "children": [{"kind": "text", "text": "three"}]},
                {"kind": "li", "children": [
                    {"kind": "text", "text": "four"},
                    {"kind": "ul", "children": [
                        {"kind": "li", "children": [{"kind": "text", "text": "sub"}]},
                    ]},
                ]},
            ]},
            {"kind": "hr"},
        ])
    );
    assert_eq!(
        tree("| a | b |\n|---|--:|\n| 1 | **2** |\n| 3 | 4 |"),
        json!([{"kind": "table", "children": [
            {"kind": "thead", "children": [{"kind": "tr", "children": [
                {"kind": "th", "children": [{"kind": "text", "text": "a"}]},
                {"kind": "th", "children": [{"kind": "text", "text": "b"}]},
            ]}]},
            {"kind": "tbody", "children": [
                {"kind": "tr", "children": [
                    {"kind": "td", "children": [{"kind": "text", "text": "1"}]},
                    {"kind": "td", "children": [{"kind": "strong", "children": [{"kind": "text", "text": "2"}]}]},
                ]},
                {"kind": "tr", "children": [
                    {"kind": "td", "children": [{"kind": "text", "text": "3"}]},
                    {"kind": "td", "children": [{"kind": "text", "text": "4"}]},
                ]},
            ]},
        ]}])
    );
}

#[test]
fn soft_breaks_are_newlines_and_hard_breaks_br() {
    assert_eq!(
        tree("one\ntwo  \nthree"),
        json!([{"kind": "p", "children": [
            {"kind": "text", "text": "one\ntwo"},
            {"kind": "br"},
            {"kind": "text", "text": "three"},
        ]}])
    );
}

#[test]
fn unbalanced_and_empty_input() {
    assert_eq!(tree(""), json!([]));
    assert_eq!(
        tree("**open _never closed"),
        json!([{"kind": "p", "children": [{"kind": "text", "text": "**open _never closed"}]}])
    );
    assert_eq!(
        tree("```\nunterminated <fence>"),
        json!([{"kind": "pre", "text": "unterminated <fence>"}])
    );
}

#[test]
fn deep_nesting_is_flattened_at_max_depth() {
    let md = format!("{}deep", "> ".repeat(10_000));
    let k = all_kinds(&md);
    assert_eq!(
        k.iter().filter(|k| *k == "blockquote").count(),
        MAX_DEPTH,
        "{k:?}"
    );
    assert_eq!(k.last().map(String::as_str), Some("text"));
    // The JSON of a deep list serializes without overflowing the stack.
    let list = "- ".repeat(5_000) + "x";
    assert!(serde_json::to_string(&render(&list)).unwrap().len() < 10_000);
}

#[test]
fn a_huge_reply_is_one_text_node() {
    let md = "*a* ".repeat(MAX_RENDER_BYTES / 4 + 1);
    let t = render(&md);
    assert_eq!(t, vec![Node::text(md.clone())]);
}

#[test]
fn only_element_names_from_the_fixed_set_are_sent() {
    let md = "# h\n## h\n###### h\n\n*e* **s** ~~d~~ `c` [a](https://a) ![i](https://i)  \nx\n\n> q\n\n- u\n1. o\n\n```\np\n```\n\n***\n\n|t|\n|-|\n|d|\n<div>html</div>\n\n- [x] done";
    let allowed = [
        "text",
        "p",
        "h1",
        "h2",
        "h6",
        "strong",
        "em",
        "del",
        "code",
        "a",
        "br",
        "blockquote",
        "ul",
        "ol",
        "li",
        "pre",
        "hr",
        "table",
        "thead",
        "tbody",
        "tr",
        "th",
        "td",
    ];
    let seen = all_kinds(md);
    for k in &seen {
        assert!(allowed.contains(&k.as_str()), "{k} in {seen:?}");
    }
    for k in allowed {
        assert!(seen.iter().any(|s| s == k), "{k} not produced: {seen:?}");
    }
}

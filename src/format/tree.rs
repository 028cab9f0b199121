//! Model Markdown → a small document tree for the web chat (DESIGN §10 "Formatting").
//!
//! Owns [`render`]: CommonMark with strikethrough and tables, parsed by `pulldown-cmark`,
//! turned into [`Node`]s whose `kind` is one of a fixed set of HTML element names (or
//! `text`). The page builds DOM nodes from the tree with `createElement`/`textContent`,
//! so no model text is ever parsed as HTML: raw HTML in the Markdown arrives as text.
//! Links are kept only for `http`, `https` and `mailto` URLs (others become their text),
//! and a Markdown image becomes a link to its URL labelled with its alt text, never an
//! image element. Nesting deeper than [`MAX_DEPTH`] is flattened into the level above.
//!
//! Pure: no I/O. The gateway's web chat (`gateway::web`) sends the tree with a reply.

use pulldown_cmark::{CodeBlockKind, Event, Options, Parser, Tag};
use serde::Serialize;

use super::tags::language;

/// URL schemes a link may use in the web chat; any other link becomes its text alone.
const LINK_SCHEMES: [&str; 3] = ["http", "https", "mailto"];

/// Elements nested deeper than this are flattened into their parent.
pub const MAX_DEPTH: usize = 24;

/// Replies longer than this (in bytes) are sent as one text node, not parsed.
pub const MAX_RENDER_BYTES: usize = 256 * 1024;

/// What a node is: an HTML element name from this fixed set, or `text`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A text node: `text` holds it.
    Text,
    P,
    H1,
    H2,
    H3,
    H4,
    H5,
    H6,
    Strong,
    Em,
    Del,
    /// Inline code: `text` holds it.
    Code,
    /// A link: `href` holds its (allowed) URL.
    A,
    Br,
    Blockquote,
    Ul,
    /// An ordered list: `start` holds its first number.
    Ol,
    Li,
    /// A code block: `text` holds the code, `lang` its language if given.
    Pre,
    Hr,
    Table,
    Thead,
    Tbody,
    Tr,
    Th,
    Td,
    /// Never sent: a node whose children join its parent (a refused link, an image
    /// inside a link, anything past `MAX_DEPTH`).
    #[serde(skip)]
    Fragment,
}

/// One node of the tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Node {
    pub kind: Kind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub href: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lang: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start: Option<u64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub children: Vec<Node>,
}

impl Node {
    pub fn new(kind: Kind) -> Node {
        Node {
            kind,
            text: None,
            href: None,
            lang: None,
            start: None,
            children: Vec::new(),
        }
    }

    /// A text node.
    pub fn text(text: impl Into<String>) -> Node {
        Node {
            text: Some(text.into()),
            ..Node::new(Kind::Text)
        }
    }

    /// An element holding one text node (a paragraph of plain text, say).
    pub fn with_text(kind: Kind, text: impl Into<String>) -> Node {
        Node {
            children: vec![Node::text(text)],
            ..Node::new(kind)
        }
    }
}

/// Whether a link to `url` is kept (`http`, `https`, `mailto`, in any case).
pub fn link_allowed(url: &str) -> bool {
    url.split_once(':')
        .is_some_and(|(scheme, _)| LINK_SCHEMES.iter().any(|s| s.eq_ignore_ascii_case(scheme)))
}

/// Parse the model's Markdown into the web chat's tree (see the module docs).
pub fn render(markdown: &str) -> Vec<Node> {
    if markdown.len() > MAX_RENDER_BYTES {
        return vec![Node::text(markdown)];
    }
    let options = Options::ENABLE_STRIKETHROUGH | Options::ENABLE_TABLES;
    let mut b = Builder {
        root: Vec::new(),
        open: Vec::new(),
    };
    for event in Parser::new_ext(markdown, options) {
        b.event(event);
    }
    // Events are balanced, so nothing is left open; close anything that is.
    while !b.open.is_empty() {
        b.close();
    }
    b.root
}

/// Builds the tree: every `Start` event opens exactly one node (maybe a fragment) and
/// every `End` closes the innermost one.
struct Builder {
    /// The top-level nodes done so far.
    root: Vec<Node>,
    /// Open nodes, outermost first.
    open: Vec<Node>,
}

impl Builder {
    /// Where the next node goes: the innermost open node's children, or the top level.
    fn children(&mut self) -> &mut Vec<Node> {
        match self.open.last_mut() {
            Some(n) => &mut n.children,
            None => &mut self.root,
        }
    }

    fn inside(&self, kind: Kind) -> bool {
        self.open.iter().any(|n| n.kind == kind)
    }

    fn event(&mut self, event: Event) {
        match event {
            Event::Start(tag) => self.start(tag),
            Event::End(_) => self.close(),
            Event::Text(t) | Event::Html(t) | Event::InlineHtml(t) => self.text(&t),
            Event::Code(c) => self.leaf(Node {
                text: Some(c.into_string()),
                ..Node::new(Kind::Code)
            }),
            Event::SoftBreak => self.text("\n"),
            Event::HardBreak => self.leaf(Node::new(Kind::Br)),
            Event::Rule => self.leaf(Node::new(Kind::Hr)),
            Event::InlineMath(t) | Event::DisplayMath(t) | Event::FootnoteReference(t) => {
                self.text(&t)
            }
            Event::TaskListMarker(done) => self.text(if done { "[x] " } else { "[ ] " }),
        }
    }

    fn start(&mut self, tag: Tag) {
        let node = match tag {
            Tag::Paragraph | Tag::HtmlBlock => Node::new(Kind::P),
            Tag::Heading { level, .. } => Node::new(match level as u8 {
                1 => Kind::H1,
                2 => Kind::H2,
                3 => Kind::H3,
                4 => Kind::H4,
                5 => Kind::H5,
                _ => Kind::H6,
            }),
            Tag::BlockQuote(_) => Node::new(Kind::Blockquote),
            Tag::CodeBlock(kind) => Node {
                text: Some(String::new()),
                lang: match kind {
                    CodeBlockKind::Fenced(info) => language(&info),
                    CodeBlockKind::Indented => None,
                },
                ..Node::new(Kind::Pre)
            },
            Tag::List(Some(first)) => Node {
                start: Some(first),
                ..Node::new(Kind::Ol)
            },
            Tag::List(None) => Node::new(Kind::Ul),
            Tag::Item => Node::new(Kind::Li),
            Tag::Table(_) => Node::new(Kind::Table),
            Tag::TableHead => Node::new(Kind::Thead),
            Tag::TableRow => Node::new(Kind::Tr),
            Tag::TableCell if self.open.last().is_some_and(|n| n.kind == Kind::Thead) => {
                Node::new(Kind::Th)
            }
            Tag::TableCell => Node::new(Kind::Td),
            Tag::Emphasis => Node::new(Kind::Em),
            Tag::Strong => Node::new(Kind::Strong),
            Tag::Strikethrough => Node::new(Kind::Del),
            Tag::Link { dest_url, .. } | Tag::Image { dest_url, .. }
                if !self.inside(Kind::A) && link_allowed(&dest_url) =>
            {
                Node {
                    href: Some(dest_url.into_string()),
                    ..Node::new(Kind::A)
                }
            }
            _ => Node::new(Kind::Fragment),
        };
        let node = if self.open.len() >= MAX_DEPTH {
            Node::new(Kind::Fragment)
        } else {
            node
        };
        self.open.push(node);
    }

    /// Close the innermost open node and add it to its parent.
    fn close(&mut self) {
        let Some(mut node) = self.open.pop() else {
            return;
        };
        match node.kind {
            Kind::Pre => {
                if let Some(code) = &mut node.text
                    && code.ends_with('\n')
                {
                    code.pop();
                }
            }
            Kind::P => trim_trailing_newlines(&mut node.children),
            // An image link with no alt text shows its URL.
            Kind::A if node.children.is_empty() => {
                node.children
                    .push(Node::text(node.href.clone().unwrap_or_default()));
            }
            // The header cells sit directly in `thead`: give them their row.
            Kind::Thead => {
                let cells = std::mem::take(&mut node.children);
                node.children.push(Node {
                    children: cells,
                    ..Node::new(Kind::Tr)
                });
            }
            // Body rows go into one `tbody` after the `thead`.
            Kind::Table => {
                let (head, rows): (Vec<Node>, Vec<Node>) = std::mem::take(&mut node.children)
                    .into_iter()
                    .partition(|n| n.kind == Kind::Thead);
                node.children = head;
                if !rows.is_empty() {
                    node.children.push(Node {
                        children: rows,
                        ..Node::new(Kind::Tbody)
                    });
                }
            }
            _ => {}
        }
        if node.kind == Kind::Fragment {
            for child in node.children {
                self.push_child(child);
            }
        } else {
            self.children().push(node);
        }
    }

    /// Add `child` to the innermost node, joining it to a text node just before it.
    fn push_child(&mut self, child: Node) {
        let siblings = self.children();
        if child.kind == Kind::Text
            && let Some(last) = siblings.last_mut()
            && last.kind == Kind::Text
            && let (Some(a), Some(b)) = (&mut last.text, &child.text)
        {
            a.push_str(b);
            return;
        }
        siblings.push(child);
    }

    fn leaf(&mut self, node: Node) {
        self.push_child(node);
    }

    fn text(&mut self, text: &str) {
        if let Some(Node {
            kind: Kind::Pre,
            text: Some(code),
            ..
        }) = self.open.last_mut()
        {
            code.push_str(text);
            return;
        }
        self.push_child(Node::text(text));
    }
}

/// A raw HTML block's text ends with its newline: drop it (and any before it).
fn trim_trailing_newlines(children: &mut [Node]) {
    if let Some(Node {
        kind: Kind::Text,
        text: Some(t),
        ..
    }) = children.last_mut()
    {
        let kept = t.trim_end_matches('\n').len();
        t.truncate(kept);
    }
}

#[cfg(test)]
mod tests;

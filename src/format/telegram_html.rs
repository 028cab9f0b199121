//! Model Markdown → Telegram HTML (DESIGN §10 "Formatting"), and back to plain text.
//!
//! Owns [`render`]: CommonMark with strikethrough and tables, parsed by `pulldown-cmark`,
//! written with only the tags Telegram's HTML mode accepts (`b`, `i`, `s`, `code`, `pre`,
//! `pre><code class="language-…"`, `a href`, `blockquote`) and everything else escaped.
//! Headings become bold lines, lists "• item" / "1. item" lines indented by depth, tables a
//! `<pre>` block with aligned columns, images their alt text and URL, raw HTML plain text.
//!
//! The output keeps Telegram's documented nesting rules whatever the input: tags are
//! always balanced and properly nested; nothing is inside `code`/`pre` but the
//! `pre><code>` pair; inline code closes the styles around it and they reopen after it;
//! nothing but bold/italic/strikethrough is inside a link (inline code there is plain
//! text); block quotes are never nested (an inner quote's text joins the outer one). Links
//! are kept only for `http`, `https`, `tg` and `mailto` URLs, otherwise their text alone.
//!
//! Also owns [`plain`]: the visible text of Telegram HTML, for resending a part Telegram
//! refused to parse.

use pulldown_cmark::{Alignment, CodeBlockKind, Event, Options, Parser, Tag, TagEnd};

use super::html_chunk::{Token, tokens};
pub use super::tags::escape;
use super::tags::{Style, language, link_allowed};

/// `text` as Telegram HTML that shows it exactly as written (no Markdown).
pub fn literal(text: &str) -> String {
    super::tags::escape(text)
}

/// `text` as CommonMark that [`render`] shows exactly as written: every ASCII
/// punctuation character backslash-escaped (CommonMark allows that for all of them),
/// and leading spaces kept as non-breaking ones, so nothing starts a code block.
pub fn markdown_literal(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for (n, line) in text.split('\n').enumerate() {
        if n > 0 {
            // A line break shows as one (the renderer keeps soft breaks).
            out.push('\n');
        }
        let body = line.trim_start_matches(' ');
        for _ in 0..line.len() - body.len() {
            out.push('\u{a0}');
        }
        for c in body.chars() {
            if c.is_ascii_punctuation() {
                out.push('\\');
            }
            out.push(c);
        }
    }
    out
}

/// Render the model's Markdown as Telegram HTML (see the module docs).
pub fn render(markdown: &str) -> String {
    let options = Options::ENABLE_STRIKETHROUGH | Options::ENABLE_TABLES;
    let mut r = Renderer::default();
    for event in Parser::new_ext(markdown, options) {
        r.event(event);
    }
    r.finish()
}

/// The text Telegram shows for `html`: tags removed, entities decoded. A `<` or `&` that
/// starts no tag or entity is kept as it is.
pub fn plain(html: &str) -> String {
    tokens(html)
        .into_iter()
        .filter_map(|t| match t {
            Token::Char { ch, .. } => Some(ch),
            _ => None,
        })
        .collect()
}

/// What separates the next block from the text before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
enum Sep {
    #[default]
    None,
    Line,
    Blank,
}

/// A table being collected: its alignments, rows of cell texts, and whether the first
/// row is the header.
#[derive(Debug, Default)]
struct Table {
    align: Vec<Alignment>,
    rows: Vec<Vec<String>>,
    header: bool,
}

/// A code block being collected: its opening tags, text and closing tags.
#[derive(Debug)]
struct CodeBlock {
    open: String,
    body: String,
    close: &'static str,
}

#[derive(Debug, Default)]
struct Renderer {
    out: String,
    /// Styles wanted, outermost first; the first `opened` of them are written.
    styles: Vec<Style>,
    opened: usize,
    sep: Sep,
    /// Nothing visible written since the start or the last block opening (a quote, a
    /// list bullet): a pending separator is dropped.
    fresh: bool,
    quote_depth: usize,
    /// Inside a code block.
    code: Option<CodeBlock>,
    /// A list bullet was the last thing written.
    bullet: bool,
    /// Open lists, each with the number of its next item (`None`: bullets).
    lists: Vec<Option<u64>>,
    table: Option<Table>,
    /// URLs of the images being written (their alt text is the text).
    images: Vec<String>,
}

impl Renderer {
    fn event(&mut self, event: Event) {
        match event {
            Event::Start(tag) => self.start(tag),
            Event::End(tag) => self.end(tag),
            Event::Text(t) | Event::Html(t) | Event::InlineHtml(t) => self.text(&t),
            Event::Code(c) => self.inline_code(&c),
            Event::SoftBreak | Event::HardBreak => {
                let br = if self.table.is_some() { " " } else { "\n" };
                self.text(br);
            }
            Event::Rule => {
                self.block(Sep::Blank);
                self.text("——————");
            }
            Event::InlineMath(t) | Event::DisplayMath(t) | Event::FootnoteReference(t) => {
                self.text(&t)
            }
            Event::TaskListMarker(done) => self.text(if done { "[x] " } else { "[ ] " }),
        }
    }

    fn start(&mut self, tag: Tag) {
        match tag {
            Tag::Paragraph | Tag::HtmlBlock => self.block(Sep::Blank),
            Tag::Heading { .. } => {
                self.block(Sep::Blank);
                self.styles.push(Style::Bold);
            }
            Tag::BlockQuote(_) => {
                self.block(Sep::Blank);
                self.quote_depth += 1;
                if self.quote_depth == 1 {
                    self.flush_sep();
                    self.close_styles();
                    self.out.push_str("<blockquote>");
                    self.fresh = true;
                }
            }
            Tag::CodeBlock(kind) => {
                self.block(Sep::Blank);
                let lang = match kind {
                    CodeBlockKind::Fenced(info) => language(&info),
                    CodeBlockKind::Indented => None,
                };
                let (open, close) = match lang {
                    Some(l) => (
                        format!("<pre><code class=\"language-{l}\">"),
                        "</code></pre>",
                    ),
                    None => ("<pre>".to_owned(), "</pre>"),
                };
                self.code = Some(CodeBlock {
                    open,
                    body: String::new(),
                    close,
                });
            }
            Tag::List(first) => {
                self.block(if self.lists.is_empty() {
                    Sep::Blank
                } else {
                    Sep::Line
                });
                self.lists.push(first);
            }
            Tag::Item => self.item(),
            Tag::Table(align) => {
                self.block(Sep::Blank);
                self.table = Some(Table {
                    align,
                    ..Table::default()
                });
            }
            Tag::TableHead | Tag::TableRow => {
                if let Some(t) = &mut self.table {
                    t.rows.push(Vec::new());
                }
            }
            Tag::TableCell => {
                if let Some(row) = self.table.as_mut().and_then(|t| t.rows.last_mut()) {
                    row.push(String::new());
                }
            }
            Tag::Emphasis => self.styles.push(Style::Italic),
            Tag::Strong => self.styles.push(Style::Bold),
            Tag::Strikethrough => self.styles.push(Style::Strike),
            Tag::Link { dest_url, .. } => {
                let in_link = self.styles.iter().any(|s| matches!(s, Style::Link(_)));
                let style = if !in_link && self.images.is_empty() && link_allowed(&dest_url) {
                    Style::Link(dest_url.into_string())
                } else {
                    Style::Plain
                };
                self.styles.push(style);
            }
            Tag::Image { dest_url, .. } => {
                self.images.push(dest_url.into_string());
                self.styles.push(Style::Plain);
            }
            _ => {}
        }
    }

    fn end(&mut self, tag: TagEnd) {
        match tag {
            TagEnd::Heading(_)
            | TagEnd::Emphasis
            | TagEnd::Strong
            | TagEnd::Strikethrough
            | TagEnd::Link => self.pop_style(),
            TagEnd::Image => {
                self.pop_style();
                if let Some(url) = self.images.pop().filter(|u| !u.is_empty()) {
                    self.text(&format!(" ({url})"));
                }
            }
            TagEnd::BlockQuote(_) => {
                if self.quote_depth == 1 {
                    self.close_styles();
                    self.trim_newlines();
                    self.out.push_str("</blockquote>");
                    self.fresh = false;
                }
                self.quote_depth = self.quote_depth.saturating_sub(1);
            }
            TagEnd::CodeBlock => {
                if let Some(code) = self.code.take() {
                    // A code block's text without the newline that ends its last line.
                    let body = code.body.strip_suffix('\n').unwrap_or(&code.body);
                    self.preformatted(&code.open, body, code.close);
                }
            }
            TagEnd::List(_) => {
                self.lists.pop();
            }
            TagEnd::TableHead => {
                if let Some(t) = &mut self.table {
                    t.header = true;
                }
            }
            TagEnd::Table => {
                if let Some(t) = self.table.take() {
                    let text = super::table::layout(&t.rows, &t.align, t.header);
                    self.preformatted("<pre>", &text, "</pre>");
                }
            }
            _ => {}
        }
    }

    fn block(&mut self, sep: Sep) {
        self.sep = self.sep.max(sep);
    }

    fn trim_newlines(&mut self) {
        let kept = self.out.trim_end_matches('\n').len();
        self.out.truncate(kept);
    }

    /// Write the pending separator, unless nothing was written since a block opened.
    fn flush_sep(&mut self) {
        let sep = std::mem::take(&mut self.sep);
        if self.fresh || self.out.is_empty() || sep == Sep::None {
            return;
        }
        self.trim_newlines();
        self.out
            .push_str(if sep == Sep::Line { "\n" } else { "\n\n" });
    }

    fn close_styles(&mut self) {
        for style in self.styles[..self.opened].iter().rev() {
            self.out.push_str(style.close());
        }
        self.opened = 0;
    }

    fn pop_style(&mut self) {
        if self.opened > 0 && self.opened == self.styles.len() {
            if let Some(style) = self.styles.last() {
                self.out.push_str(style.close());
            }
            self.opened -= 1;
        }
        self.styles.pop();
    }

    fn text(&mut self, text: &str) {
        if text.is_empty() {
            return;
        }
        if let Some(cell) = self
            .table
            .as_mut()
            .and_then(|t| t.rows.last_mut())
            .and_then(|r| r.last_mut())
        {
            cell.push_str(text);
            return;
        }
        if let Some(code) = &mut self.code {
            code.body.push_str(text);
            return;
        }
        self.flush_sep();
        for style in &self.styles[self.opened..] {
            self.out.push_str(&style.open());
        }
        self.opened = self.styles.len();
        self.out.push_str(&escape(text));
        self.fresh = false;
        self.bullet = false;
    }

    fn inline_code(&mut self, code: &str) {
        let in_link = self.styles.iter().any(|s| matches!(s, Style::Link(_)));
        if in_link || self.table.is_some() || self.code.is_some() {
            self.text(code);
        } else {
            self.preformatted("<code>", code, "</code>");
        }
    }

    /// `open` + escaped `body` + `close`, outside every inline style. Nothing for an
    /// empty body.
    fn preformatted(&mut self, open: &str, body: &str, close: &str) {
        if body.is_empty() {
            return;
        }
        self.flush_sep();
        self.close_styles();
        self.out.push_str(open);
        self.out.push_str(&escape(body));
        self.out.push_str(close);
        self.fresh = false;
        self.bullet = false;
    }

    fn item(&mut self) {
        if self.bullet {
            // The item before was empty: its bullet is on the line before this one.
            self.fresh = false;
        }
        self.block(Sep::Line);
        self.flush_sep();
        self.close_styles();
        let depth = self.lists.len().saturating_sub(1);
        let marker = match self.lists.last_mut() {
            Some(Some(n)) => {
                let m = format!("{n}. ");
                *n = n.saturating_add(1);
                m
            }
            _ => "• ".to_owned(),
        };
        self.out.push_str(&"   ".repeat(depth));
        self.out.push_str(&marker);
        self.fresh = true;
        self.bullet = true;
    }

    fn finish(mut self) -> String {
        self.close_styles();
        let kept = self.out.trim_end().len();
        self.out.truncate(kept);
        self.out
    }
}

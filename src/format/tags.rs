//! The pieces of Telegram HTML the renderer writes: text and attribute escaping, the
//! inline style tags, and which links and code-block languages are kept.

/// URL schemes a link may use; any other link becomes its text alone.
const LINK_SCHEMES: [&str; 4] = ["http", "https", "tg", "mailto"];

/// Longest language name kept on a code block (`class="language-…"`).
const MAX_LANGUAGE: usize = 32;

/// Escape text for Telegram HTML.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            c => out.push(c),
        }
    }
    out
}

/// Escape an attribute value written between double quotes.
pub(super) fn escape_attr(value: &str) -> String {
    escape(value).replace('"', "&quot;")
}

/// The `class="language-…"` name of a fenced block's info string, if any is left after
/// keeping only `[A-Za-z0-9_+#.-]`.
pub(super) fn language(info: &str) -> Option<String> {
    let word = info.split_whitespace().next().unwrap_or_default();
    let lang: String = word
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || "_+#.-".contains(*c))
        .take(MAX_LANGUAGE)
        .collect();
    (!lang.is_empty()).then_some(lang)
}

pub(super) fn link_allowed(url: &str) -> bool {
    url.split_once(':')
        .is_some_and(|(scheme, _)| LINK_SCHEMES.iter().any(|s| s.eq_ignore_ascii_case(scheme)))
}

/// An inline style wanted at this point of the text; opened lazily before the next text.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Style {
    Bold,
    Italic,
    Strike,
    Link(String),
    /// A style that writes nothing (a refused link, an image, a link inside a link).
    Plain,
}

impl Style {
    pub(super) fn open(&self) -> String {
        match self {
            Style::Bold => "<b>".into(),
            Style::Italic => "<i>".into(),
            Style::Strike => "<s>".into(),
            Style::Link(href) => format!("<a href=\"{}\">", escape_attr(href)),
            Style::Plain => String::new(),
        }
    }

    pub(super) fn close(&self) -> &'static str {
        match self {
            Style::Bold => "</b>",
            Style::Italic => "</i>",
            Style::Strike => "</s>",
            Style::Link(_) => "</a>",
            Style::Plain => "",
        }
    }
}

//! `parse_mode` handling: validates text the way the Bot API rejects it and
//! returns the visible text (what Telegram stores as `Message.text`).
//!
//! Not a full re-implementation of MarkdownV2: it checks what bots get wrong in
//! practice (unescaped reserved characters, unclosed entities) and approximates
//! the visible text. HTML mode follows the Bot API's documented rules closely:
//! see `html_rules`.

// Explicit path: the same file whether this module is reached through
// `support::fake_telegram` or loaded alone with `#[path]` by a test.
#[path = "markup/html_rules.rs"]
mod html_rules;

/// Characters MarkdownV2 requires to be escaped outside entities' markup.
const RESERVED_V2: &str = "_*[]()~`>#+-=|{}.!";

/// `Ok(visible text)` or `Err(full error description)`.
pub fn render(parse_mode: Option<&str>, text: &str) -> Result<String, String> {
    let detail = |d: String| format!("Bad Request: can't parse entities: {d}");
    match parse_mode.map(str::to_ascii_lowercase).as_deref() {
        None | Some("") => Ok(text.to_string()),
        Some("markdownv2") => markdown_v2(text).map_err(detail),
        Some("markdown") => markdown_legacy(text).map_err(detail),
        Some("html") => html(text).map_err(detail),
        Some(_) => Err("Bad Request: unsupported parse_mode".to_string()),
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Ent {
    Bold,
    Italic,
    Underline,
    Strikethrough,
    Spoiler,
    TextUrl,
    CustomEmoji,
}

impl Ent {
    fn name(self) -> &'static str {
        match self {
            Ent::Bold => "Bold",
            Ent::Italic => "Italic",
            Ent::Underline => "Underline",
            Ent::Strikethrough => "Strikethrough",
            Ent::Spoiler => "Spoiler",
            Ent::TextUrl => "TextUrl",
            Ent::CustomEmoji => "CustomEmoji",
        }
    }
}

fn reserved(c: char) -> String {
    format!("Character '{c}' is reserved and must be escaped with the preceding '\\'")
}

fn unclosed(e: Ent, off: usize) -> String {
    format!("Can't find end of {} entity at byte offset {off}", e.name())
}

/// Opens `e`, or closes its most recent open occurrence.
fn toggle(open: &mut Vec<(Ent, usize)>, e: Ent, off: usize) {
    match open.iter().rposition(|(x, _)| *x == e) {
        Some(pos) => {
            open.remove(pos);
        }
        None => open.push((e, off)),
    }
}

/// Body of a code (`pre == false`) or pre block starting at char index `from`;
/// returns the content and the index after the closing backticks.
fn scan_code(chars: &[(usize, char)], from: usize, pre: bool) -> Option<(String, usize)> {
    let tick = |i: usize| chars.get(i).map(|&(_, c)| c) == Some('`');
    let mut out = String::new();
    let mut j = from;
    while j < chars.len() {
        match chars[j].1 {
            '\\' if j + 1 < chars.len() => {
                out.push(chars[j + 1].1);
                j += 2;
            }
            '`' if !pre => return Some((out, j + 1)),
            '`' if tick(j + 1) && tick(j + 2) => return Some((out, j + 3)),
            c => {
                out.push(c);
                j += 1;
            }
        }
    }
    None
}

fn markdown_v2(text: &str) -> Result<String, String> {
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let n = chars.len();
    let at = |i: usize| chars.get(i).map(|&(_, c)| c);
    let mut out = String::new();
    let mut open: Vec<(Ent, usize)> = Vec::new();
    let mut i = 0;
    while i < n {
        let (off, c) = chars[i];
        let line_start = i == 0 || chars[i - 1].1 == '\n';
        match c {
            '\\' => match at(i + 1) {
                Some(e) if (1..=126).contains(&(e as u32)) => {
                    out.push(e);
                    i += 2;
                }
                Some(_) => {
                    out.push('\\');
                    i += 1;
                }
                None => return Err(reserved('\\')),
            },
            '`' if at(i + 1) == Some('`') && at(i + 2) == Some('`') => {
                let (body, next) = scan_code(&chars, i + 3, true)
                    .ok_or_else(|| format!("Can't find end of Pre entity at byte offset {off}"))?;
                // A first line without spaces is the language of the block.
                match body.split_once('\n') {
                    Some((lang, rest)) if !lang.contains(' ') => out.push_str(rest),
                    _ => out.push_str(&body),
                }
                i = next;
            }
            '`' => {
                let (body, next) = scan_code(&chars, i + 1, false)
                    .ok_or_else(|| format!("Can't find end of Code entity at byte offset {off}"))?;
                out.push_str(&body);
                i = next;
            }
            '*' if line_start && at(i + 1) == Some('*') && at(i + 2) == Some('>') => i += 3,
            '*' => {
                toggle(&mut open, Ent::Bold, off);
                i += 1;
            }
            '_' if at(i + 1) == Some('_') => {
                toggle(&mut open, Ent::Underline, off);
                i += 2;
            }
            '_' => {
                toggle(&mut open, Ent::Italic, off);
                i += 1;
            }
            '~' => {
                toggle(&mut open, Ent::Strikethrough, off);
                i += 1;
            }
            '|' if at(i + 1) == Some('|') => {
                toggle(&mut open, Ent::Spoiler, off);
                i += 2;
            }
            '[' => {
                open.push((Ent::TextUrl, off));
                i += 1;
            }
            '!' if at(i + 1) == Some('[') => {
                open.push((Ent::CustomEmoji, off));
                i += 2;
            }
            ']' => {
                let Some(pos) = open
                    .iter()
                    .rposition(|(e, _)| matches!(e, Ent::TextUrl | Ent::CustomEmoji))
                else {
                    return Err(reserved(']'));
                };
                if let Some(&(inner, inner_off)) = open.get(pos + 1) {
                    return Err(unclosed(inner, inner_off));
                }
                let (link, link_off) = open[pos];
                open.truncate(pos);
                if at(i + 1) == Some('(') {
                    let mut j = i + 2;
                    loop {
                        match at(j) {
                            None => {
                                return Err(format!(
                                    "Can't find end of a URL at byte offset {}",
                                    chars[i + 1].0
                                ));
                            }
                            Some('\\') => j += 2,
                            Some(')') => break,
                            Some(_) => j += 1,
                        }
                    }
                    i = j + 1;
                } else if link == Ent::CustomEmoji {
                    return Err(unclosed(link, link_off));
                } else {
                    i += 1;
                }
            }
            '>' if line_start => i += 1,
            c if RESERVED_V2.contains(c) => return Err(reserved(c)),
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    match open.first() {
        Some(&(e, off)) => Err(unclosed(e, off)),
        None => Ok(out),
    }
}

fn markdown_legacy(text: &str) -> Result<String, String> {
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let n = chars.len();
    let at = |i: usize| chars.get(i).map(|&(_, c)| c);
    let find = |from: usize, c: char| (from..n).find(|&j| chars[j].1 == c);
    let mut out = String::new();
    let mut i = 0;
    while i < n {
        let (off, c) = chars[i];
        let unclosed = || format!("Can't find end of the entity starting at byte offset {off}");
        match c {
            '\\' if matches!(at(i + 1), Some('_' | '*' | '`' | '[')) => {
                out.extend(at(i + 1));
                i += 2;
            }
            '*' | '_' => {
                let end = find(i + 1, c).ok_or_else(unclosed)?;
                out.extend(chars[i + 1..end].iter().map(|&(_, c)| c));
                i = end + 1;
            }
            '`' if at(i + 1) == Some('`') && at(i + 2) == Some('`') => {
                let end = (i + 3..n)
                    .find(|&j| {
                        at(j) == Some('`') && at(j + 1) == Some('`') && at(j + 2) == Some('`')
                    })
                    .ok_or_else(unclosed)?;
                out.extend(chars[i + 3..end].iter().map(|&(_, c)| c));
                i = end + 3;
            }
            '`' => {
                let end = find(i + 1, '`').ok_or_else(unclosed)?;
                out.extend(chars[i + 1..end].iter().map(|&(_, c)| c));
                i = end + 1;
            }
            '[' => {
                let end = find(i + 1, ']').ok_or_else(unclosed)?;
                out.extend(chars[i + 1..end].iter().map(|&(_, c)| c));
                i = end + 1;
                if at(i) == Some('(') {
                    i = find(i, ')').ok_or_else(unclosed)? + 1;
                }
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    Ok(out)
}

fn html(text: &str) -> Result<String, String> {
    html_rules::html(text)
}

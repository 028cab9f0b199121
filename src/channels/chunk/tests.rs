//! Tests of reply splitting: fixed cases, a 10,000-character mixed reply, and properties.
use super::*;
use proptest::prelude::*;

const TINY: Limit = Limit {
    max: 50,
    measure: Measure::Utf16Units,
};

fn chars(max: usize) -> Limit {
    Limit {
        max,
        measure: Measure::Chars,
    }
}

fn fence_lines(s: &str) -> usize {
    s.lines()
        .filter(|l| l.trim_start().starts_with("```"))
        .count()
}

/// Checks every promise of `split` and returns the messages. `balanced` says the input's
/// fences are well formed, so every message must be too.
fn check(text: &str, limit: Limit, balanced: bool) -> Vec<String> {
    let pieces = pieces(text, limit);
    let chunks = split(text, limit);
    assert_eq!(chunks.len(), pieces.len());
    let mut pos = 0;
    for (piece, chunk) in pieces.iter().zip(&chunks) {
        assert_eq!(*chunk, piece.render(text));
        let len = measure(chunk, limit.measure);
        assert!(len <= limit.max, "{len} > {}: {chunk:?}", limit.max);
        assert!(!chunk.trim().is_empty(), "empty message");
        assert_eq!(chunk.trim_end(), chunk, "trailing whitespace");
        // Reassembly: bodies are the reply in order, separated only by whitespace.
        assert!(piece.body.start >= pos, "overlap at {pos}");
        assert!(text[pos..piece.body.start].trim().is_empty(), "lost text");
        let body = &text[piece.body.clone()];
        assert!(!body.trim().is_empty());
        assert_eq!(body.trim_end(), body);
        pos = piece.body.end;
        // Added text is only fence lines.
        assert!(piece.prefix.is_empty() || opening_ticks(piece.prefix.trim_end()).is_some());
        assert!(
            piece.suffix.is_empty()
                || piece
                    .suffix
                    .trim_start_matches('\n')
                    .bytes()
                    .all(|b| b == b'`')
        );
        if balanced {
            assert_eq!(fence_lines(chunk) % 2, 0, "unbalanced: {chunk:?}");
        }
        // An empty block we made (reopen + close) is allowed only when nothing else fits,
        // which needs a limit near the length of a fence line plus one code line.
        let added = !(piece.prefix.is_empty() && piece.suffix.is_empty());
        if balanced && added && limit.max >= 32 {
            let only_fences = chunk
                .lines()
                .all(|l| l.trim().is_empty() || l.trim_start().starts_with("```"));
            assert!(!only_fences, "empty block: {chunk:?}");
        }
    }
    assert!(text[pos..].trim().is_empty(), "lost the end");
    chunks
}

fn big_reply() -> String {
    let prose = [
        "The quick brown fox says héllo to the 🌍 and a café crème. ",
        "日本語の文章と中文的句子混在しています。これは長い行です。",
        "Ünïcödé àccents: naïve résumé, Ångström, señor, Zürich 🌍🌍. ",
        "Short line.",
        "Dev 👩\u{200D}💻 at work, e\u{301}toile; ",
    ];
    let mut out = String::new();
    let paragraph = |out: &mut String, n: usize| {
        for line in 0..n {
            for k in 0..=(line % 4) {
                out.push_str(prose[(line + k) % prose.len()]);
            }
            out.push('\n');
        }
        out.push('\n');
    };
    while out.chars().count() < 2500 {
        paragraph(&mut out, 7);
    }
    out.push_str("```rust\n");
    for n in 0..80 {
        out.push_str(&format!(
            "    let v{n} = \"données 🌍 {n}\"; // 注释 comment\n"
        ));
        if n % 17 == 16 {
            out.push('\n');
        }
    }
    out.push_str("```\n\n");
    paragraph(&mut out, 9);
    out.push_str("```\n");
    for n in 0..20 {
        out.push_str(&format!("echo 'ligne {n} — 🌍'\n"));
    }
    out.push_str("```\n");
    let long_line: Vec<&str> = (0..40).map(|i| prose[i % 3].trim_end()).collect();
    out.push_str(&long_line.join(" "));
    out.push_str("\n\n");
    while out.chars().count() < 10_000 {
        paragraph(&mut out, 5);
    }
    out
}

#[test]
fn ten_thousand_mixed_characters_fit_every_limit() {
    let text = big_reply();
    assert!(text.chars().count() >= 10_000);
    assert_eq!(fence_lines(&text), 4);
    for limit in [TELEGRAM, DISCORD, TINY, chars(50)] {
        let chunks = check(&text, limit, true);
        assert!(chunks.len() > 1);
    }
    // Cuts inside the rust block reopen it with its language tag.
    for limit in [DISCORD, TINY] {
        assert!(pieces(&text, limit).iter().any(|p| p.prefix == "```rust\n"));
    }
}

#[test]
fn empty_and_whitespace_give_nothing() {
    assert!(split("", TELEGRAM).is_empty());
    assert!(split(" \n\t\n  ", DISCORD).is_empty());
    assert_eq!(split("\n\n  hi  \n\n", DISCORD), ["  hi"]);
}

#[test]
fn short_text_is_one_message() {
    assert_eq!(split("hello\n\nworld", TELEGRAM), ["hello\n\nworld"]);
}

#[test]
fn long_word_is_hard_cut() {
    let word = "a".repeat(5000);
    let chunks = check(&word, TELEGRAM, true);
    assert_eq!(
        chunks.iter().map(String::len).collect::<Vec<_>>(),
        [4096, 904]
    );
    let chunks = check(&word, DISCORD, true);
    assert_eq!(
        chunks.iter().map(String::len).collect::<Vec<_>>(),
        [2000, 2000, 1000]
    );
}

#[test]
fn emoji_line_never_splits_a_surrogate_pair() {
    let line = "🌍".repeat(3000);
    for max in [4096, 51, 3, 2] {
        let limit = Limit {
            max,
            measure: Measure::Utf16Units,
        };
        let chunks = check(&line, limit, true);
        for chunk in &chunks {
            assert!(chunk.chars().all(|c| c == '🌍'));
        }
        assert_eq!(chunks[0].chars().count(), max / 2);
    }
    assert_eq!(measure("🌍a", Measure::Utf16Units), 3);
    assert_eq!(measure("🌍a", Measure::Chars), 2);
}

#[test]
fn joiners_and_combining_marks_stay_with_their_base() {
    // "e" + combining acute is 2 chars; a cut after 3 chars would orphan the accent.
    assert_eq!(split("abe\u{301}cd", chars(3)), ["ab", "e\u{301}c", "d"]);
    assert_eq!(split("ab👩\u{200D}💻", chars(4)), ["ab", "👩\u{200D}💻"]);
}

#[test]
fn paragraph_break_is_preferred_over_line_break() {
    let text = "aaaa aaaa.\n\nbbbb\ncccc\ndddd";
    assert_eq!(
        check(text, chars(20), true),
        ["aaaa aaaa.", "bbbb\ncccc\ndddd"]
    );
}

#[test]
fn line_break_is_preferred_over_space() {
    let text = "aaaa aaaa\nbbbb cccc dddd";
    assert_eq!(
        check(text, chars(16), true),
        ["aaaa aaaa", "bbbb cccc dddd"]
    );
    assert_eq!(
        check("aaaa bbbb cccc", chars(12), true),
        ["aaaa bbbb", "cccc"]
    );
}

#[test]
fn indentation_after_a_line_cut_is_kept() {
    let text = "intro line\n    indented code";
    assert_eq!(
        check(text, chars(20), true),
        ["intro line", "    indented code"]
    );
    // Indentation wider than the limit is dropped instead of overflowing.
    let text = format!("a\n{}b", " ".repeat(20));
    assert_eq!(check(&text, chars(8), true), ["a", "b"]);
}

#[test]
fn a_cut_inside_a_block_closes_and_reopens_it() {
    let text = "```rust\nline one\nline two\nline three\n```";
    assert_eq!(
        check(text, chars(30), true),
        [
            "```rust\nline one\nline two\n```",
            "```rust\nline three\n```"
        ]
    );
}

#[test]
fn no_empty_block_before_a_closing_fence() {
    let text = "```\naaaa\nbbbb\n```\nafter";
    assert_eq!(
        check(text, chars(16), true),
        ["```\naaaa\n```", "```\nbbbb\n```", "after"]
    );
}

#[test]
fn unclosed_block_is_closed_in_its_last_message() {
    assert_eq!(
        split("text\n```py\nprint(1)", TELEGRAM),
        ["text\n```py\nprint(1)\n```"]
    );
}

#[test]
fn reopen_line_longer_than_the_limit_drops_the_tag() {
    let mut text = String::from("```a-very-long-language-tag-name\n");
    for n in 0..30 {
        text.push_str(&format!("code line {n}\n"));
    }
    text.push_str("```\n");
    // The opening line fits, but repeating it would take more than half the limit.
    let chunks = check(&text, chars(60), true);
    assert!(chunks[0].starts_with("```a-very-long-language-tag-name\ncode line 0"));
    assert!(chunks[1].starts_with("```\ncode line"));
}

#[test]
fn degenerate_limits_terminate() {
    let text = "```rust\nfn main() {}\n```\n🌍 é\n".repeat(5);
    for max in [0, 1, 2, 5, 7, 8, 15] {
        for measure in [Measure::Utf16Units, Measure::Chars] {
            let chunks = split(&text, Limit { max, measure });
            assert!(!chunks.is_empty());
            for chunk in &chunks {
                // Only a character wider than the limit may exceed it, and then alone.
                assert!(
                    super::measure(chunk, measure) <= max || chunk.chars().count() == 1,
                    "{chunk:?} with max {max}"
                );
            }
        }
    }
    for max in [8, 15] {
        check(&text, chars(max), false);
    }
}

const ALPHABET: [&str; 6] = ["\n", " ", "```", "é", "🌍", "a"];

fn any_measure() -> impl Strategy<Value = Measure> {
    prop_oneof![Just(Measure::Utf16Units), Just(Measure::Chars)]
}

proptest! {
    #[test]
    fn any_text_any_limit(
        parts in prop::collection::vec(prop::sample::select(&ALPHABET[..]), 0..400),
        max in 8usize..300,
        measure in any_measure(),
    ) {
        check(&parts.concat(), Limit { max, measure }, false);
    }

    #[test]
    fn well_formed_blocks_stay_balanced(
        lines in prop::collection::vec(
            prop::sample::select(&["```rust", "```", "a b c", "🌍🌍 é", "", "    x = 1"][..]),
            0..120,
        ),
        max in 16usize..300,
        measure in any_measure(),
    ) {
        // Inside a block every fence line closes it, as in well-formed Markdown.
        let mut inside = false;
        let mut text = String::new();
        for line in lines {
            let line = if inside && line.starts_with("```") { "```" } else { line };
            inside ^= line.starts_with("```");
            text.push_str(line);
            text.push('\n');
        }
        if inside {
            text.push_str("```\n");
        }
        check(&text, Limit { max, measure }, true);
    }
}

//! Directive parser benchmark: time per `parse` call on typical directives and on ordinary
//! messages (which must stay on the `no '/'` fast path or be rejected quickly).
//!
//! ```text
//! cargo bench --bench directive
//! ```

use std::collections::BTreeSet;
use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use remoteclaw::directive::{ParseContext, parse};

fn bench_parse(c: &mut Criterion) {
    let aliases: BTreeSet<String> = ["opus", "sonnet", "gpt-4o", "flash"]
        .iter()
        .map(|a| (*a).to_owned())
        .collect();
    let ctx = ParseContext {
        bot_username: Some("RemoteClawBot"),
        aliases: &aliases,
    };
    let paragraph = "The quick brown fox jumps over the lazy dog, and then it keeps running \
                     through the fields until the sun goes down. "
        .repeat(5);
    let paragraph = &paragraph[..500];

    let inputs: [(&str, &str); 9] = [
        ("model_alias", "/model opus"),
        (
            "model_pinned",
            "/model anthropic/claude-opus-4-5@anthropic:work",
        ),
        ("model_list", "/model list"),
        ("model_in_sentence", "please /model opus then answer"),
        ("alias_shortcut", "/opus"),
        ("bot_suffix", "/model@RemoteClawBot opus"),
        ("plain_short", "hello there, how are you?"),
        ("plain_500_chars", paragraph),
        ("plain_with_url", "see https://example.com/a/b"),
    ];

    let mut group = c.benchmark_group("directive_parse");
    for (name, text) in inputs {
        group.bench_function(name, |b| b.iter(|| parse(black_box(text), black_box(&ctx))));
    }
    group.finish();
}

criterion_group!(benches, bench_parse);
criterion_main!(benches);

//! Files Telegram sends that do not reach the model: over the size limit (by the
//! message's `file_size`, by `getFile`'s, or by the bytes themselves), of a type that
//! is neither an image nor text, or that cannot be downloaded. Each is told in the chat,
//! by name, and none costs a model call.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_limit_photo_is_refused_without_a_download_or_a_model_call() {
    let s = setup("", "maxImageBytes = 1000\n").await;
    let sizes = [FakeFile::new(png(1, 1500)), FakeFile::new(png(2, 4000))];
    let id = s.tg.send_photo(To::Dm, 42, "alice", Some("look"), &sizes);
    wait_answered(&s.tg, &inbox(&s.home), &[id]).await;
    let sent = s.tg.sent_messages();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(
        sent[0].text,
        "Your photo is 1500 bytes, over the 1000-byte limit for images — send a smaller or compressed image"
    );
    assert_eq!(s.tg.download_count(), 0);
    assert!(s.tg.calls_of("getFile").is_empty(), "not even getFile");
    assert_eq!(s.llm.request_count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_size_only_getfile_announces_is_checked_before_downloading() {
    let s = setup("", "maxImageBytes = 1000\n").await;
    let photo = FakeFile::new(png(1, 200))
        .without_size()
        .get_file_announcing(50_000);
    let id = s.tg.send_photo(To::Dm, 42, "alice", Some("look"), &[photo]);
    wait_answered(&s.tg, &inbox(&s.home), &[id]).await;
    let sent = s.tg.sent_messages();
    assert!(
        sent[0]
            .text
            .starts_with("Your photo is 50000 bytes, over the 1000-byte limit"),
        "{}",
        sent[0].text
    );
    assert_eq!(s.tg.calls_of("getFile").len(), 1);
    assert_eq!(s.tg.download_count(), 0);
    assert_eq!(s.llm.request_count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_that_lies_about_its_size_is_read_no_further_than_the_limit() {
    let s = setup("", "maxImageBytes = 1000\n").await;
    let photo = FakeFile::new(png(1, 200_000)).announcing(900);
    let id = s.tg.send_photo(To::Dm, 42, "alice", Some("look"), &[photo]);
    wait_answered(&s.tg, &inbox(&s.home), &[id]).await;
    let sent = s.tg.sent_messages();
    assert!(
        sent[0].text.starts_with("Your photo is ") && sent[0].text.contains("1000-byte limit"),
        "{}",
        sent[0].text
    );
    assert_eq!(s.llm.request_count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pdf_and_binary_documents_are_refused_with_the_file_named() {
    let s = setup("", "").await;
    let pdf = s.tg.send_document(
        To::Dm,
        42,
        "alice",
        Some("read this"),
        &FakeFile::new(b"%PDF-1.7".to_vec())
            .named("report.pdf")
            .typed("application/pdf"),
    );
    wait_answered(&s.tg, &inbox(&s.home), &[pdf]).await;
    assert_eq!(s.tg.download_count(), 0, "refused by its type, not fetched");
    let blob = s.tg.send_document(
        To::Dm,
        42,
        "alice",
        None,
        &FakeFile::new(vec![0u8, 1, 2, 0xFF]).named("data.bin"),
    );
    wait_answered(&s.tg, &inbox(&s.home), &[blob]).await;
    let texts: Vec<String> = s.tg.sent_messages().into_iter().map(|m| m.text).collect();
    assert_eq!(
        texts,
        [
            "report.pdf is not a plain-text file — send text files (UTF-8) or images",
            "data.bin is not a plain-text file — send text files (UTF-8) or images",
        ]
    );
    assert_eq!(s.llm.request_count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_download_is_told_without_the_token() {
    let s = setup("", "").await;
    let id = s.tg.send_photo(
        To::Dm,
        42,
        "alice",
        Some("look"),
        &[FakeFile::new(png(1, 100)).missing()],
    );
    wait_answered(&s.tg, &inbox(&s.home), &[id]).await;
    let sent = s.tg.sent_messages();
    assert_eq!(
        sent[0].text,
        "Could not download your photo: Telegram answered HTTP 404 — send it again"
    );
    assert_eq!(s.tg.file_downloads().len(), 1);
    assert!(s.tg.file_downloads()[0].authorized, "the bot's own token");
    assert_eq!(s.llm.request_count(), 0);
}

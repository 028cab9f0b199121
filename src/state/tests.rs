//! Tests of the state database: migrations, data_version, readers beside a waiting
//! writer, and `Recheck`.

use super::*;

#[test]
fn migrates_to_current_version_and_refuses_newer() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let db = StateDb::open(&path).unwrap();
    assert_eq!(db.schema_version().unwrap(), SCHEMA_VERSION);
    drop(db);
    assert_eq!(
        StateDb::open(&path).unwrap().schema_version().unwrap(),
        SCHEMA_VERSION,
        "reopening is a no-op"
    );
    Connection::open(&path)
        .unwrap()
        .pragma_update(None, "user_version", 99)
        .unwrap();
    assert!(
        StateDb::open(&path)
            .unwrap_err()
            .to_string()
            .contains("upgrade RemoteClaw")
    );
}

/// A v6 database (cooldowns keyed by credential and model) moves to v7 (and by secret
/// fingerprint) with its rows.
#[test]
fn cooldown_rows_survive_the_move_to_one_row_per_secret() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    {
        let mut c = Connection::open(&path).unwrap();
        let tx = c.transaction().unwrap();
        for (i, sql) in MIGRATIONS.iter().take(6).enumerate() {
            tx.execute_batch(sql).unwrap();
            tx.pragma_update(None, "user_version", (i + 1) as i64)
                .unwrap();
        }
        tx.execute(
            "INSERT INTO credential_state VALUES ('anthropic:x', 'm', 'fpA', 'rate_limit', 60000, 1, 5)",
            [],
        )
        .unwrap();
        tx.commit().unwrap();
    }
    let db = StateDb::open(&path).unwrap();
    assert_eq!(db.schema_version().unwrap(), SCHEMA_VERSION);
    let rows: Vec<(String, String, String, i64)> = db
        .read(|c| {
            let mut stmt =
                c.prepare("SELECT credential, model, fingerprint, until_ms FROM credential_state")?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?;
            rows.collect()
        })
        .unwrap();
    assert_eq!(
        rows,
        [("anthropic:x".into(), "m".into(), "fpA".into(), 60_000)]
    );
    // A second secret of the same id and model is a row of its own now.
    db.write(|c| {
        c.execute(
            "INSERT INTO credential_state VALUES ('anthropic:x', 'm', 'fpB', 'rate_limit', 60000, 1, 6)",
            [],
        )
    })
    .unwrap();
}

#[test]
fn data_version_moves_when_another_connection_commits() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let a = StateDb::open(&path).unwrap();
    let b = StateDb::open(&path).unwrap();
    let v = a.data_version().unwrap();
    b.with(|c| c.execute("INSERT INTO meta (key, value) VALUES ('x', 'y')", []))
        .unwrap();
    assert_ne!(a.data_version().unwrap(), v);
    let v = a.data_version().unwrap();
    a.write(|c| c.execute("INSERT INTO meta (key, value) VALUES ('z', 'y')", []))
        .unwrap();
    assert_ne!(
        a.data_version().unwrap(),
        v,
        "our own writes count too: the writer is another connection"
    );
}

#[test]
fn a_reader_is_not_blocked_behind_a_writer_waiting_for_another_process() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let db = StateDb::open(&path).unwrap();
    db.write(|c| c.execute("INSERT INTO meta (key, value) VALUES ('a', '1')", []))
        .unwrap();
    // "Another process" (SQLite locks the file per connection) holds the write lock.
    let other = Connection::open(&path).unwrap();
    other
        .execute_batch("BEGIN IMMEDIATE; INSERT INTO meta (key, value) VALUES ('b', '2');")
        .unwrap();
    // Our writer queues behind it (inside SQLite's busy wait, up to 5 s).
    let (waiting_tx, waiting) = std::sync::mpsc::channel();
    let writer = {
        let db = db.clone();
        std::thread::spawn(move || {
            let _ = waiting_tx.send(());
            db.write(|c| c.execute("INSERT INTO meta (key, value) VALUES ('c', '3')", []))
        })
    };
    waiting.recv().unwrap();
    // Give it time to reach SQLite's busy wait (the assertion below holds either way).
    std::thread::sleep(Duration::from_millis(50));
    // Reads (and the staleness check) answer meanwhile, from the last commit.
    let keys: Vec<String> = db
        .read(|c| {
            c.prepare("SELECT key FROM meta ORDER BY key")?
                .query_map([], |r| r.get(0))?
                .collect()
        })
        .unwrap();
    db.data_version().unwrap();
    assert!(
        !writer.is_finished(),
        "the read answered only after the writer gave up: reads wait behind writes"
    );
    assert_eq!(keys, ["a"]);
    other.execute_batch("COMMIT").unwrap();
    writer.join().unwrap().unwrap();
    let n: i64 = db
        .read(|c| c.query_row("SELECT COUNT(*) FROM meta", [], |r| r.get(0)))
        .unwrap();
    assert_eq!(n, 3, "the writer went through once the lock was free");
}

#[test]
fn reads_cannot_write() {
    let dir = tempfile::tempdir().unwrap();
    let db = StateDb::open(&dir.path().join("state.db")).unwrap();
    assert!(
        db.read(|c| c.execute("INSERT INTO meta (key, value) VALUES ('a', '1')", []))
            .is_err()
    );
}

#[test]
fn recheck_is_due_first_and_then_after_its_interval() {
    let r = Recheck::new(Duration::from_secs(3600));
    assert!(r.due());
    r.done(Instant::now());
    assert!(!r.due());
    let r = Recheck::new(Duration::ZERO);
    r.done(Instant::now());
    assert!(r.due());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_writes_commit_together_and_a_failing_one_rolls_back_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let db = StateDb::open(&path).unwrap();
    // Many writes at once: some fail half-way (after their first insert).
    let writes = (0..200).map(|i| {
        let db = db.clone();
        tokio::spawn(async move {
            db.write_async(false, move |c| {
                c.execute(
                    "INSERT INTO meta (key, value) VALUES (?1, 'a')",
                    [format!("k{i}")],
                )?;
                if i % 10 == 3 {
                    // A duplicate key: this write fails after its first statement.
                    c.execute(
                        "INSERT INTO meta (key, value) VALUES (?1, 'b')",
                        [format!("k{i}")],
                    )?;
                }
                Ok(i)
            })
            .await
        })
    });
    let results = futures_util::future::join_all(writes).await;
    for (i, r) in results.into_iter().enumerate() {
        let r = r.unwrap();
        if i % 10 == 3 {
            assert!(r.unwrap_err().to_string().contains("UNIQUE"), "write {i}");
        } else {
            assert_eq!(r.unwrap(), i, "write {i}");
        }
    }
    // Committed (seen by another connection), and the failed ones left nothing.
    let other = Connection::open(&path).unwrap();
    let n: i64 = other
        .query_row("SELECT COUNT(*) FROM meta WHERE key LIKE 'k%'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(n, 180);
    let failed: i64 = other
        .query_row("SELECT COUNT(*) FROM meta WHERE key = 'k3'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(failed, 0);
    // The synchronous path still works beside it, and nests savepoints.
    db.write(|c| {
        let sp = c.savepoint()?;
        sp.execute("INSERT INTO meta (key, value) VALUES ('sync', '1')", [])?;
        sp.commit()
    })
    .unwrap();
    assert!(
        db.write(|c| c.execute("INSERT INTO meta (key, value) VALUES ('sync', '2')", []))
            .is_err()
    );
}

/// Holds the writer thread inside a write (its own batch) until the returned sender
/// fires: writes queued meanwhile run as one batch after it.
async fn hold_writer(
    db: &Arc<StateDb>,
) -> (
    tokio::task::JoinHandle<Result<usize, StoreError>>,
    std::sync::mpsc::Sender<()>,
) {
    let (started_tx, started_rx) = std::sync::mpsc::channel();
    let (gate_tx, gate_rx) = std::sync::mpsc::channel::<()>();
    let db = db.clone();
    let gate = tokio::spawn(async move {
        db.write_async(false, move |c| {
            let _ = started_tx.send(());
            let _ = gate_rx.recv();
            c.execute("INSERT INTO meta (key, value) VALUES ('gate', '1')", [])
        })
        .await
    });
    tokio::task::spawn_blocking(move || started_rx.recv())
        .await
        .unwrap()
        .unwrap();
    (gate, gate_tx)
}

/// Poll each future once (each queues its write), then let the writer go.
async fn queue_then_release<F: std::future::Future + Unpin>(
    writes: &mut [F],
    gate: std::sync::mpsc::Sender<()>,
) {
    std::future::poll_fn(|cx| {
        for w in writes.iter_mut() {
            assert!(std::pin::Pin::new(w).poll(cx).is_pending());
        }
        std::task::Poll::Ready(())
    })
    .await;
    gate.send(()).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_one_statement_write_leaves_nothing_and_its_batch_commits() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let db = StateDb::open(&path).unwrap();
    // One-statement writes (no savepoint) mixed with ordinary ones, all in one batch.
    // Every 7th one-statement write inserts two rows of one key: the statement fails
    // on its second row, after its first row was written.
    let (gate, release) = hold_writer(&db).await;
    let mut writes: Vec<_> = (0..300)
        .map(|i| {
            let db = db.clone();
            Box::pin(async move {
                if i % 2 == 0 {
                    db.write_one_async(move |c| {
                        let sql = if i % 7 == 0 {
                            "INSERT INTO meta (key, value) VALUES (?1, 'a'), (?1, 'b')"
                        } else {
                            "INSERT INTO meta (key, value) VALUES (?1, 'a')"
                        };
                        c.execute(sql, [format!("k{i}")])
                    })
                    .await
                } else {
                    db.write_async(false, move |c| {
                        c.execute(
                            "INSERT INTO meta (key, value) VALUES (?1, 'a')",
                            [format!("k{i}")],
                        )?;
                        c.execute(
                            "INSERT INTO meta (key, value) VALUES (?1, 'b')",
                            [format!("x{i}")],
                        )
                    })
                    .await
                }
            })
        })
        .collect();
    queue_then_release(&mut writes, release).await;
    gate.await.unwrap().unwrap();
    let results: Vec<_> = futures_util::future::join_all(writes)
        .await
        .into_iter()
        .map(Ok::<_, ()>)
        .collect();
    let mut failed = 0;
    for (i, r) in results.into_iter().enumerate() {
        match r.unwrap() {
            Err(e) => {
                assert!(i % 2 == 0 && i % 7 == 0, "write {i}: {e}");
                assert!(e.to_string().contains("UNIQUE"), "write {i}: {e}");
                failed += 1;
            }
            Ok(_) => assert!(!(i % 2 == 0 && i % 7 == 0), "write {i} should fail"),
        }
    }
    assert_eq!(failed, 22);
    let other = Connection::open(&path).unwrap();
    let count = |sql: &str| -> i64 { other.query_row(sql, [], |r| r.get(0)).unwrap() };
    // Everything else committed; the failed statements left not even their first row.
    assert_eq!(
        count("SELECT COUNT(*) FROM meta WHERE key LIKE 'k%'"),
        300 - 22
    );
    assert_eq!(count("SELECT COUNT(*) FROM meta WHERE key LIKE 'x%'"), 150);
    assert_eq!(
        count("SELECT COUNT(*) FROM meta WHERE key IN ('k0', 'k14', 'k294')"),
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_one_statement_write_rolls_back_its_whole_batch() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let db = StateDb::open(&path).unwrap();
    let insert = "INSERT INTO meta (key, value) VALUES (?1, '1')";
    let (gate, release) = hold_writer(&db).await;
    // One batch: a one-statement write, one that panics after its statement ran, and an
    // ordinary one.
    let a = db.write_one_async(move |c| c.execute(insert, ["a"]));
    let p = db.write_one_async(move |c| -> rusqlite::Result<usize> {
        c.execute(insert, ["p"])?;
        panic!("a bug in a write")
    });
    let b = db.write_async(false, move |c| c.execute(insert, ["b"]));
    let (mut a, mut p, mut b) = (Box::pin(a), Box::pin(p), Box::pin(b));
    std::future::poll_fn(|cx| {
        use std::future::Future;
        assert!(a.as_mut().poll(cx).is_pending());
        assert!(p.as_mut().poll(cx).is_pending());
        assert!(b.as_mut().poll(cx).is_pending());
        std::task::Poll::Ready(())
    })
    .await;
    release.send(()).unwrap();
    assert!(gate.await.unwrap().is_ok());
    let (a, p, b) = (a.await, p.await, b.await);
    assert!(
        a.unwrap_err().to_string().contains("nothing was saved"),
        "a write before the panic is told it was not saved"
    );
    assert!(p.unwrap_err().to_string().contains("writer thread stopped"));
    assert!(b.unwrap_err().to_string().contains("nothing was saved"));
    let other = Connection::open(&path).unwrap();
    let keys: Vec<String> = other
        .prepare("SELECT key FROM meta WHERE key IN ('gate', 'a', 'p', 'b') ORDER BY key")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        keys,
        ["gate"],
        "the panicking write's statement is not committed"
    );
    // The writer goes on with the next batch.
    db.write_one_async(move |c| c.execute(insert, ["after"]))
        .await
        .unwrap();
}

#[tokio::test]
async fn an_async_write_waits_for_the_lock_and_then_commits() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let db = StateDb::open(&path).unwrap();
    let other = Connection::open(&path).unwrap();
    other
        .execute_batch("BEGIN IMMEDIATE; INSERT INTO meta (key, value) VALUES ('x', '1');")
        .unwrap();
    let write = tokio::spawn({
        let db = db.clone();
        async move {
            db.write_async(true, |c| {
                c.execute("INSERT INTO meta (key, value) VALUES ('y', '2')", [])
            })
            .await
        }
    });
    // Reads answer meanwhile, from the last commit.
    let n: i64 = db
        .read(|c| c.query_row("SELECT COUNT(*) FROM meta", [], |r| r.get(0)))
        .unwrap();
    assert_eq!(n, 0);
    other.execute_batch("COMMIT").unwrap();
    assert_eq!(write.await.unwrap().unwrap(), 1);
    let n: i64 = db
        .read(|c| c.query_row("SELECT COUNT(*) FROM meta", [], |r| r.get(0)))
        .unwrap();
    assert_eq!(n, 2);
}

#[test]
fn a_refused_password_points_at_the_password_not_the_server() {
    let refused = super::backend_text(
        "redis at 127.0.0.1:6390",
        "state store unavailable: Password authentication failed- AuthenticationFailed",
    );
    assert!(
        refused.contains("password in session.redisUrl"),
        "{refused}"
    );
    assert!(!refused.contains("running"), "{refused}");
    let down = super::backend_text(
        "redis at 127.0.0.1:6390",
        "state store unavailable: Connection refused (os error 111)",
    );
    assert!(
        down.ends_with("Check that the server is running and reachable."),
        "{down}"
    );
}

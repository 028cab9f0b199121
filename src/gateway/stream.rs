//! Running a turn in its own task while its reply streams to an HTTP response: the
//! task pushes `StreamEvent`s into a channel that the response body drains. If the
//! client goes away, the turn still finishes (its result is simply not delivered).

use std::future::Future;
use tokio::sync::mpsc;

#[derive(Debug)]
pub enum StreamEvent<T> {
    Delta(String),
    Done(Box<T>),
}

/// A sink that forwards deltas into the channel.
pub struct Sink<T>(mpsc::UnboundedSender<StreamEvent<T>>);

impl<T> Sink<T> {
    pub fn send(&self, d: &str) {
        let _ = self.0.send(StreamEvent::Delta(d.to_string()));
    }
}

/// Spawn `run` with a sink for deltas; its result arrives last, as `Done`.
pub fn spawn_streaming<T, F, Fut>(run: F) -> mpsc::UnboundedReceiver<StreamEvent<T>>
where
    T: Send + 'static,
    F: FnOnce(Sink<T>) -> Fut + Send + 'static,
    Fut: Future<Output = T> + Send + 'static,
{
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let result = run(Sink(tx.clone())).await;
        let _ = tx.send(StreamEvent::Done(Box::new(result)));
    });
    rx
}

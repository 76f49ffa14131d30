//! Messages on their way to one client's event stream (an SSE response).
//!
//! A client reads its stream at its own pace. Notifications a server sends
//! unasked go through [`Outbox::offer`], which queues at most [`MAX_QUEUED`]
//! of them: beyond that the client is too far behind, and the rest are
//! dropped (counted, and logged now and then) so that a server flooding a
//! slow client cannot make Warden hold them all. What a client asked for
//! (a call's progress and answer, already bounded per call) goes through
//! [`Outbox::send`], which always queues.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};

use tokio::sync::mpsc;

/// Unread messages a client may have waiting before notifications to it are
/// dropped.
pub const MAX_QUEUED: usize = 4096;

/// The sending side; cloning shares the queue.
#[derive(Clone)]
pub struct Outbox {
    tx: mpsc::UnboundedSender<String>,
    queued: Arc<AtomicUsize>,
    dropped: Arc<AtomicU64>,
}

/// The client's side, read by the listener as the response body.
pub struct Inbox {
    rx: mpsc::UnboundedReceiver<String>,
    queued: Arc<AtomicUsize>,
}

/// What became of an offered message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offer {
    Queued,
    /// The client is [`MAX_QUEUED`] messages behind; this one was dropped.
    Dropped,
    /// The client went away.
    Gone,
}

/// Takes one place in a queue of at most `limit` messages whose length is
/// `queued` (the reader gives places back). When it is full the message is
/// to be dropped: `Err(n)`, `n` being how many were dropped before it, so
/// that callers log the first drop and every 10,000th, not each one.
pub fn reserve(queued: &AtomicUsize, limit: usize, dropped: &AtomicU64) -> Result<(), u64> {
    if queued.fetch_add(1, Ordering::AcqRel) >= limit {
        queued.fetch_sub(1, Ordering::AcqRel);
        return Err(dropped.fetch_add(1, Ordering::Relaxed));
    }
    Ok(())
}

pub fn outbox() -> (Outbox, Inbox) {
    let (tx, rx) = mpsc::unbounded_channel();
    let queued = Arc::new(AtomicUsize::new(0));
    (
        Outbox {
            tx,
            queued: queued.clone(),
            dropped: Arc::default(),
        },
        Inbox { rx, queued },
    )
}

impl Outbox {
    /// Queues a notification unless the client is too far behind.
    pub fn offer(&self, message: String) -> Offer {
        if self.tx.is_closed() {
            return Offer::Gone;
        }
        if let Err(before) = reserve(&self.queued, MAX_QUEUED, &self.dropped) {
            if before.is_multiple_of(10_000) {
                tracing::warn!(
                    "a client reads its event stream slower than servers send notifications; dropping some"
                );
            }
            return Offer::Dropped;
        }
        match self.tx.send(message) {
            Ok(()) => Offer::Queued,
            Err(_) => {
                self.queued.fetch_sub(1, Ordering::AcqRel);
                Offer::Gone
            }
        }
    }

    /// Queues a message the client asked for. `false` when it went away.
    pub fn send(&self, message: String) -> bool {
        self.queued.fetch_add(1, Ordering::AcqRel);
        if self.tx.send(message).is_ok() {
            true
        } else {
            self.queued.fetch_sub(1, Ordering::AcqRel);
            false
        }
    }
}

impl futures::Stream for Inbox {
    type Item = String;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<String>> {
        let polled = self.rx.poll_recv(cx);
        if let Poll::Ready(Some(_)) = &polled {
            self.queued.fetch_sub(1, Ordering::AcqRel);
        }
        polled
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;

    #[tokio::test]
    async fn a_slow_reader_gets_the_first_messages_and_the_rest_are_dropped() {
        let (out, mut inbox) = outbox();
        for i in 0..MAX_QUEUED {
            assert_eq!(out.offer(format!("n{i}")), Offer::Queued);
        }
        assert_eq!(out.offer("one too many".into()), Offer::Dropped);
        // What a client asked for always goes through.
        assert!(out.send("answer".into()));
        assert_eq!(inbox.next().await.as_deref(), Some("n0"));
        // The answer took the room the first read made; a second read makes
        // room for one more notification.
        assert_eq!(out.offer("still too many".into()), Offer::Dropped);
        assert_eq!(inbox.next().await.as_deref(), Some("n1"));
        assert_eq!(out.offer("later".into()), Offer::Queued);
        let rest: Vec<String> = inbox.by_ref().take(MAX_QUEUED).collect().await;
        assert_eq!(rest.len(), MAX_QUEUED);
        assert_eq!(rest[0], "n2");
        assert_eq!(rest[MAX_QUEUED - 2], "answer");
        assert_eq!(rest[MAX_QUEUED - 1], "later");
        drop(inbox);
        assert_eq!(out.offer("gone".into()), Offer::Gone);
        assert!(!out.send("gone".into()));
    }
}

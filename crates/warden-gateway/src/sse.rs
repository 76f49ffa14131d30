//! Server-sent events as Warden reads them: from remote servers' streams,
//! and in `warden connect` from Warden's own. The event-stream format
//! (WHATWG) is decoded by `sse-stream`; Warden adds two things on top:
//!
//! - a bound: the bytes read since the last complete event may not exceed
//!   `max_event`, so a server that never ends an event cannot grow Warden
//!   (bytes of the chunk an event ends in are not counted again, so one
//!   event can take up to about twice the bound; invalid UTF-8 in a field
//!   ends the stream);
//! - the browser's dispatch rules the crate leaves to its callers: the last
//!   event id carries over to later events, and a block without data (only
//!   an id or a retry) updates the id but is not an event.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use futures::{Stream, StreamExt};

#[derive(Debug, Default, Clone, PartialEq)]
pub struct Event {
    /// The last event id seen on the stream, this event's or an earlier one's.
    pub id: Option<String>,
    pub event: Option<String>,
    pub data: String,
}

/// Why a stream of events ended early.
#[derive(Debug, thiserror::Error)]
enum Ended {
    #[error("an event exceeded {0} bytes")]
    TooLarge(usize),
    #[error("{0}")]
    Body(String),
}

/// A stream of events decoded from `body`; it ends with an error when an
/// event grows past `max_event` bytes, the body fails, or the stream is not
/// valid UTF-8 where it must be.
pub fn events<S, E>(
    body: S,
    max_event: usize,
) -> Pin<Box<dyn Stream<Item = Result<Event, String>> + Send>>
where
    S: Stream<Item = Result<Bytes, E>> + Send + 'static,
    E: std::fmt::Display + Send + 'static,
{
    let unread = Arc::new(AtomicUsize::new(0));
    let counted = unread.clone();
    let bounded = body.map(move |chunk| match chunk {
        Ok(bytes) => {
            let total = counted.fetch_add(bytes.len(), Ordering::Relaxed) + bytes.len();
            if total > max_event {
                Err(Ended::TooLarge(max_event))
            } else {
                Ok(bytes)
            }
        }
        Err(e) => Err(Ended::Body(e.to_string())),
    });
    let mut last_id: Option<String> = None;
    let decoded = sse_stream::SseByteStream::new(bounded).filter_map(move |block| {
        let out = match block {
            Err(e) => Some(Err(e.to_string())),
            Ok(block) => {
                unread.store(0, Ordering::Relaxed);
                if block.id.is_some() {
                    last_id = block.id;
                }
                block.data.map(|data| {
                    Ok(Event {
                        id: last_id.clone(),
                        event: block.event,
                        data,
                    })
                })
            }
        };
        std::future::ready(out)
    });
    Box::pin(decoded)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunks(parts: &[&'static [u8]]) -> impl Stream<Item = Result<Bytes, String>> + use<> {
        let parts: Vec<Result<Bytes, String>> =
            parts.iter().map(|p| Ok(Bytes::from_static(p))).collect();
        futures::stream::iter(parts)
    }

    async fn all(parts: &[&'static [u8]], max: usize) -> Vec<Result<Event, String>> {
        events(chunks(parts), max).collect().await
    }

    #[tokio::test]
    async fn parses_events_split_across_chunks_and_line_endings() {
        let evs = all(
            &[
                b"id: 7\r\nevent: message\r\ndata: {\"a\":",
                b"1}\r\n\r\n: comment\n\ndata: x\ndata: y\n\nid: 8\n\n",
                b"retry: 10\rdata: z\r\r",
            ],
            1 << 20,
        )
        .await;
        let evs: Vec<Event> = evs.into_iter().map(|e| e.expect("event")).collect();
        assert_eq!(evs.len(), 3, "{evs:?}");
        assert_eq!(evs[0].data, "{\"a\":1}");
        assert_eq!(evs[0].id.as_deref(), Some("7"));
        assert_eq!(evs[0].event.as_deref(), Some("message"));
        assert_eq!(evs[1].data, "x\ny");
        assert_eq!(
            evs[1].id.as_deref(),
            Some("7"),
            "the last event id carries over"
        );
        assert_eq!(evs[2].data, "z");
        assert_eq!(
            evs[2].id.as_deref(),
            Some("8"),
            "a block with only an id is no event, but moves the id"
        );
    }

    #[tokio::test]
    async fn refuses_oversized_events_but_not_long_streams() {
        let evs = all(&[&[b'a'; 64]], 16).await;
        assert!(
            matches!(evs.last(), Some(Err(e)) if e.contains("16 bytes")),
            "{evs:?}"
        );
        // Many small events add up to more than the bound: still fine.
        let evs = all(&[&b"data: 1234\n\n"[..]; 10], 16).await;
        assert_eq!(evs.len(), 10);
        assert!(evs.iter().all(|e| e.is_ok()), "{evs:?}");
    }

    #[tokio::test]
    async fn a_failing_body_ends_the_stream_with_its_error() {
        let parts: Vec<Result<Bytes, String>> = vec![
            Ok(Bytes::from_static(b"data: 1\n\n")),
            Err("connection reset".into()),
        ];
        let evs: Vec<_> = events(futures::stream::iter(parts), 1024).collect().await;
        assert_eq!(evs.len(), 2);
        assert!(matches!(&evs[1], Err(e) if e.contains("connection reset")));
    }
}

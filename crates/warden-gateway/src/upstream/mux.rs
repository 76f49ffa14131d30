//! Request multiplexing over one upstream connection: the gateway numbers its
//! own requests, matches each answer to its caller, and routes what the server
//! sends unasked (notifications, its own requests) to the call it belongs to
//! or to the server's general event channel.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use parking_lot::Mutex;
use serde_json::value::RawValue;
use tokio::sync::{mpsc, oneshot};

use crate::jsonrpc::{Envelope, Kind};

/// A message from the server that was not an answer to one of our requests.
#[derive(Debug)]
pub struct Incoming {
    pub env: Envelope,
}

pub type Sink = mpsc::UnboundedSender<Incoming>;

/// The server's answer: a result or an error object, both raw.
#[derive(Debug)]
pub enum Reply {
    Result(Box<RawValue>),
    Error(Box<RawValue>),
}

struct Pending {
    reply: oneshot::Sender<Reply>,
    sink: Option<Sink>,
}

pub struct Mux {
    pending: Mutex<HashMap<u64, Pending>>,
    progress: Mutex<HashMap<String, Sink>>,
    next_id: AtomicU64,
    events: Sink,
    /// Messages sent to `events` and not yet taken; the connection's loop
    /// takes one off for each it receives.
    queued: Arc<AtomicUsize>,
    dropped: AtomicU64,
}

/// Messages from a server for no call in particular, waiting to be handled;
/// past this a flooding server's notifications are dropped, so Warden's
/// memory does not grow with the flood.
pub const MAX_QUEUED: usize = 4096;

impl Mux {
    pub fn new(events: Sink) -> Mux {
        Mux {
            pending: Mutex::new(HashMap::new()),
            progress: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            events,
            queued: Arc::default(),
            dropped: AtomicU64::new(0),
        }
    }

    /// The count of messages waiting in `events`.
    pub fn queued(&self) -> Arc<AtomicUsize> {
        self.queued.clone()
    }

    /// Sends to `events`; a notification over the limit is dropped (a
    /// request always goes, so the server gets an answer).
    fn to_events(&self, env: Envelope, droppable: bool) {
        if !droppable {
            self.queued.fetch_add(1, Ordering::Relaxed);
        } else if let Err(before) = crate::outbox::reserve(&self.queued, MAX_QUEUED, &self.dropped)
        {
            if before.is_multiple_of(10_000) {
                tracing::warn!(
                    "a server sends notifications faster than Warden handles them; dropping some"
                );
            }
            return;
        }
        if self.events.send(Incoming { env }).is_err() {
            self.queued.fetch_sub(1, Ordering::Relaxed);
        }
    }

    pub fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    pub fn register(&self, id: u64, sink: Option<Sink>) -> oneshot::Receiver<Reply> {
        let (tx, rx) = oneshot::channel();
        self.pending.lock().insert(id, Pending { reply: tx, sink });
        rx
    }

    pub fn forget(&self, id: u64) {
        self.pending.lock().remove(&id);
    }

    pub fn register_progress(&self, token: String, sink: Sink) {
        self.progress.lock().insert(token, sink);
    }

    pub fn forget_progress(&self, token: &str) {
        self.progress.lock().remove(token);
    }

    pub fn sink_for(&self, id: u64) -> Option<Sink> {
        self.pending.lock().get(&id).and_then(|p| p.sink.clone())
    }

    /// Fails every waiting call: the connection is gone.
    pub fn close(&self) {
        self.pending.lock().clear();
        self.progress.lock().clear();
    }

    /// Routes one message from the server. `related` is the call whose HTTP
    /// response stream carried it, where the transport knows.
    pub fn dispatch(&self, env: Envelope, related: Option<u64>) {
        match env.kind() {
            Some(Kind::Response) => {
                let Some(id) = env
                    .id
                    .as_ref()
                    .and_then(|i| serde_json::from_str::<u64>(i.get()).ok())
                else {
                    tracing::debug!("upstream answered an id the gateway never sent");
                    return;
                };
                let Some(p) = self.pending.lock().remove(&id) else {
                    return;
                };
                let reply = match (env.result, env.error) {
                    (Some(r), _) => Reply::Result(r),
                    (None, Some(e)) => Reply::Error(e),
                    (None, None) => return,
                };
                let _ = p.reply.send(reply);
            }
            Some(Kind::Notification) => {
                if env.method.as_deref() == Some("notifications/progress") {
                    let token = env
                        .params
                        .as_ref()
                        .and_then(|p| crate::jsonrpc::Params::parse(p.get()).ok())
                        .and_then(|p| p.0.get("progressToken").map(|t| t.get().to_string()));
                    if let Some(sink) = token.and_then(|t| self.progress.lock().get(&t).cloned()) {
                        let _ = sink.send(Incoming { env });
                        return;
                    }
                }
                if let Some(sink) = related.and_then(|id| self.sink_for(id)) {
                    let _ = sink.send(Incoming { env });
                    return;
                }
                self.to_events(env, true);
            }
            Some(Kind::Request) => {
                // A server request on a call's own stream belongs to that call.
                // Only when exactly one call is in flight can it be told
                // whose question this is; otherwise nobody gets it (the
                // server is answered that no client can).
                let sink = related.and_then(|id| self.sink_for(id)).or_else(|| {
                    let pending = self.pending.lock();
                    let mut carriers = pending.values().filter_map(|p| p.sink.clone());
                    match (carriers.next(), carriers.next()) {
                        (Some(only), None) => Some(only),
                        _ => None,
                    }
                });
                match sink {
                    Some(sink) => {
                        let _ = sink.send(Incoming { env });
                    }
                    None => self.to_events(env, false),
                }
            }
            None => tracing::debug!("upstream sent a message that is not JSON-RPC 2.0"),
        }
    }
}

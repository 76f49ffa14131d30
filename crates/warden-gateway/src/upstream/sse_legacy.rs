//! The deprecated HTTP+SSE transport (protocol 2024-11-05), which older remote
//! servers still speak: a GET opens an event stream whose first `endpoint`
//! event names where to POST messages; every answer comes back on the stream.
//!
//! The POST endpoint must be on the same origin as the stream: a server cannot
//! send Warden's messages (or the headers that go with them) elsewhere.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap};
use tokio_util::sync::CancellationToken;

use super::PeerError;
use super::mux::Mux;
use crate::jsonrpc::Envelope;
use crate::sse;

const MAX_EVENT: usize = 64 * 1024 * 1024;

pub struct SseLink {
    client: reqwest::Client,
    post_url: url::Url,
    headers: HeaderMap,
    pub closed: CancellationToken,
}

impl SseLink {
    /// Opens the stream and waits for the `endpoint` event.
    pub async fn connect(
        url: url::Url,
        headers: HeaderMap,
        mux: Arc<Mux>,
    ) -> Result<Arc<SseLink>, PeerError> {
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| PeerError::Start(format!("could not build the HTTP client: {e}")))?;
        let resp = client
            .get(url.clone())
            .headers(headers.clone())
            .header(ACCEPT, "text/event-stream")
            .send()
            .await
            .map_err(|e| PeerError::Transport(format!("could not open the event stream: {e}")))?;
        if !resp.status().is_success() {
            return Err(PeerError::Http {
                status: resp.status().as_u16(),
                detail: String::new(),
            });
        }
        let mut events = sse::events(resp.bytes_stream(), MAX_EVENT);
        let mut pending = Vec::new();
        let endpoint = tokio::time::timeout(Duration::from_secs(10), async {
            while let Some(ev) = events.next().await {
                let ev = ev.map_err(PeerError::Protocol)?;
                if ev.event.as_deref() == Some("endpoint") {
                    return Ok(ev.data);
                }
                pending.push(ev);
            }
            Err(PeerError::Protocol(
                "the event stream ended before naming its endpoint".into(),
            ))
        })
        .await
        .map_err(|_| {
            PeerError::Protocol("the server sent no endpoint event within 10 seconds".into())
        })??;
        let post_url = url.join(endpoint.trim()).map_err(|_| {
            PeerError::Protocol(format!("the endpoint {endpoint:?} is not a valid URL"))
        })?;
        if post_url.origin() != url.origin() {
            return Err(PeerError::Protocol(format!(
                "the server named an endpoint on another origin ({}); refused",
                post_url.origin().ascii_serialization()
            )));
        }
        let link = Arc::new(SseLink {
            client,
            post_url,
            headers,
            closed: CancellationToken::new(),
        });
        let closed = link.closed.clone();
        tokio::spawn(async move {
            let dispatch = |ev: sse::Event| {
                if ev.event.as_deref().is_none_or(|e| e == "message")
                    && let Ok(env) = Envelope::parse(ev.data.as_bytes())
                {
                    mux.dispatch(env, None);
                }
            };
            pending.into_iter().for_each(dispatch);
            loop {
                tokio::select! {
                    _ = closed.cancelled() => break,
                    ev = events.next() => {
                        let Some(Ok(ev)) = ev else { break };
                        dispatch(ev);
                    }
                }
            }
            mux.close();
            closed.cancel();
        });
        Ok(link)
    }

    pub async fn send(&self, body: String) -> Result<(), PeerError> {
        let resp = self
            .client
            .post(self.post_url.clone())
            .headers(self.headers.clone())
            .header(CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await
            .map_err(|e| PeerError::Transport(format!("the request failed: {e}")))?;
        if !resp.status().is_success() {
            return Err(PeerError::Http {
                status: resp.status().as_u16(),
                detail: String::new(),
            });
        }
        Ok(())
    }
}

//! Record: the stage after which a message may leave for a server.
//!
//! [`Receipt`] is the only way gateway code gets a [`Permit`] to send what an
//! agent asked for, and this file is the only place that makes one: after the
//! activity row describing the message is committed. A receipt names one
//! server and one method, and is spent by the send.

use super::*;
use crate::upstream::Permit;

/// Proof that the row for one message to one server is committed.
pub struct Receipt {
    server: String,
    method: String,
}

impl Receipt {
    pub fn server(&self) -> &str {
        &self.server
    }

    pub fn method(&self) -> &str {
        &self.method
    }

    /// Spends the receipt on the send it was made for.
    pub fn permit(self) -> Permit {
        Permit::Recorded(self)
    }
}

impl Gateway {
    /// Commits `event` (whose `server` names where the message goes) and
    /// returns the receipt that lets `method` go there. Fails closed: no
    /// commit, no receipt.
    pub(super) async fn commit(
        &self,
        event: NewEvent,
        method: &str,
    ) -> std::result::Result<Receipt, warden_store::Error> {
        let server = event.server.clone().unwrap_or_default();
        self.inner.store.activity().append(event).await?;
        Ok(Receipt {
            server,
            method: method.to_string(),
        })
    }
    /// Records a request a server made of a client (sampling, elicitation,
    /// roots), attributed like a tool call: the agent whose call it came
    /// with, and the person that agent acts for.
    pub(super) async fn record_server_request(
        &self,
        server: &str,
        method: &str,
        agent: Option<&AgentRef>,
        outcome: &str,
    ) -> Option<Receipt> {
        let event = NewEvent {
            kind: "server_request".into(),
            server: Some(server.to_string()),
            tool: Some(method.to_string()),
            agent: agent.map(|a| a.name.clone()),
            on_behalf_of: agent.and_then(|a| a.owner.clone()),
            outcome: Some(outcome.into()),
            ..Default::default()
        };
        match self.commit(event, upstream::RESPONSE).await {
            Ok(receipt) => Some(receipt),
            Err(e) => {
                tracing::error!(error = %e, "could not record a server's request");
                None
            }
        }
    }
}

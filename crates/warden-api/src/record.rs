//! The rows the API writes for its own changes: who changed what, what it
//! was and what it became, and every refusal.

use warden_store::NewEvent;

use crate::{Api, ApiResult, Request};

impl Api {
    pub(crate) async fn record(
        &self,
        kind: &str,
        server: Option<&str>,
        agent: Option<&str>,
        detail: Option<String>,
    ) -> ApiResult<()> {
        self.store
            .activity()
            .append(NewEvent {
                kind: kind.into(),
                server: server.map(String::from),
                agent: agent.map(String::from),
                // Who made the change.
                on_behalf_of: self.actor.clone(),
                detail,
                ..Default::default()
            })
            .await?;
        Ok(())
    }

    /// A refused request: which call, and why.
    pub(crate) async fn record_refusal(&self, req: &Request, why: &str) -> ApiResult<()> {
        let call = serde_json::to_value(req)
            .ok()
            .and_then(|v| v["call"].as_str().map(String::from));
        self.record(
            "access.refused",
            None,
            None,
            Some(serde_json::json!({"call": call, "why": why}).to_string()),
        )
        .await
    }

    /// A change to one server's tool, with the server and tool in their
    /// own columns, so `warden log --server S --tool T` finds it.
    pub(crate) async fn record_tool_change(
        &self,
        kind: &str,
        server: &str,
        tool: &str,
        before: Option<serde_json::Value>,
        after: Option<serde_json::Value>,
    ) -> ApiResult<()> {
        let detail = serde_json::json!({"target": format!("{server}/{tool}"), "before": before, "after": after});
        self.store
            .activity()
            .append(NewEvent {
                kind: kind.into(),
                server: Some(server.to_string()),
                tool: Some(tool.to_string()),
                on_behalf_of: self.actor.clone(),
                detail: Some(detail.to_string()),
                ..Default::default()
            })
            .await?;
        Ok(())
    }

    /// A change to an identity or role, with what it was and became.
    pub(crate) async fn record_change(
        &self,
        kind: &str,
        target: &str,
        before: Option<serde_json::Value>,
        after: Option<serde_json::Value>,
    ) -> ApiResult<()> {
        let detail = serde_json::json!({"target": target, "before": before, "after": after});
        self.record(kind, None, None, Some(detail.to_string()))
            .await
    }
}

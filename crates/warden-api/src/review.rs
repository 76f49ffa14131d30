//! The access review: every person and agent with their roles, what they can
//! reach, when they were last used and when they expire, with flags for what
//! an admin should look at. Reviews are recorded; one is due when the review
//! interval (90 days by default) has passed since the last.

use serde::{Deserialize, Serialize};
use warden_store::roles::GrantRow;
use warden_store::{ActivityFilter, ActivityLog, AgentStatus};

use crate::{Api, ApiResult, blocking};

/// An agent not used for this long is flagged.
pub const UNUSED_AFTER_DAYS: i64 = 30;
/// An agent expiring within this many days is flagged, so its owner can rotate it.
pub const EXPIRING_WITHIN_DAYS: i64 = 7;

#[derive(Debug, Clone, Serialize, Deserialize, ts_rs::TS)]
pub struct Review {
    pub generated_at_us: i64,
    pub last_review_at_us: Option<i64>,
    pub interval_days: i64,
    /// Whether the interval has passed since the last recorded review.
    pub due: bool,
    pub people: Vec<PersonReview>,
    pub agents: Vec<AgentReview>,
    /// Said when a part of the review could not be made, and why.
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ts_rs::TS)]
pub struct PersonReview {
    pub name: String,
    pub role: String,
    pub status: String,
    pub last_login_us: Option<i64>,
    pub agents: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize, ts_rs::TS)]
pub struct AgentReview {
    pub name: String,
    pub owner: Option<String>,
    pub status: AgentStatus,
    pub roles: Vec<String>,
    pub grants: Vec<GrantRow>,
    pub last_used_us: Option<i64>,
    pub expires_at_us: Option<i64>,
    /// unused, expired, expiring, orphaned, over_privileged.
    pub flags: Vec<String>,
    /// High-risk tools its grants allow that it has never called.
    pub unused_high_risk_tools: Vec<String>,
}

impl Api {
    pub(crate) async fn review(&self, record: bool) -> ApiResult<Review> {
        let now_us = self.clock.now() * 1_000_000;
        let interval_days: i64 = self
            .store
            .setting("review_interval_days")?
            .and_then(|v| v.parse().ok())
            .unwrap_or(90);
        // What each server offers, when the gateway runs: the high-risk tools.
        let mut catalog: Vec<(String, String)> = Vec::new();
        if let Some(gw) = &self.gateway {
            for s in gw.servers() {
                let tools = gw.server_tools(&s.name).await.unwrap_or_default();
                catalog.extend(
                    tools
                        .into_iter()
                        .filter(|t| t["warden"]["risk"].as_str() != Some("low"))
                        .filter_map(|t| {
                            t["name"].as_str().map(|n| (s.name.clone(), n.to_string()))
                        }),
                );
            }
        }
        let gateway_running = self.gateway.is_some();
        let store = self.store.clone();
        let mut review = blocking(move || {
            let conn = store.connect()?;
            let users = warden_store::users::list(&conn)?;
            let agents = warden_store::agent::list(&conn)?;
            let last_review = ActivityLog::query(&conn, &ActivityFilter { kind: Some("review.recorded".into()), limit: 1, ..Default::default() })?
                .first()
                .map(|r| r.time_us);
            let mut out = Vec::new();
            for a in &agents {
                let owner = a.owner_id.and_then(|id| users.iter().find(|u| u.id == id));
                let roles = warden_store::roles::roles_of_agent(&conn, a.id)?;
                let grants = warden_store::roles::grants_of_agent(&conn, a.id)?;
                let mut flags = Vec::new();
                let day = 86_400 * 1_000_000;
                let unused_since = now_us - UNUSED_AFTER_DAYS * day;
                if a.last_used_at_us.map_or(a.created_at_us < unused_since, |t| t < unused_since) {
                    flags.push("unused".to_string());
                }
                match a.expires_at_us {
                    Some(e) if e <= now_us => flags.push("expired".into()),
                    Some(e) if e <= now_us + EXPIRING_WITHIN_DAYS * day => flags.push("expiring".into()),
                    _ => {}
                }
                if owner.is_none_or(|o| o.status != "active") {
                    flags.push("orphaned".into());
                }
                let mut unused_high_risk = Vec::new();
                if gateway_running {
                    let access = warden_policy::Access::new(
                        grants
                            .iter()
                            .filter_map(|g| Some(warden_policy::Grant { server: g.server.clone(), pattern: g.pattern.clone(), effect: warden_policy::Effect::parse(&g.effect)?, explicit: g.explicit }))
                            .collect(),
                    );
                    let used: std::collections::HashSet<(String, String)> = ActivityLog::query(
                        &conn,
                        &ActivityFilter { agent: Some(a.name.clone()), kind: Some("tool_call.completed".into()), limit: 10_000, ..Default::default() },
                    )?
                    .into_iter()
                    .filter_map(|r| Some((r.event.server?, r.event.tool?)))
                    .collect();
                    for (server, tool) in &catalog {
                        let reachable = access.decide(server, warden_policy::Target::Tool(tool)) != warden_policy::Effect::Deny;
                        if reachable && !used.contains(&(server.clone(), tool.clone())) {
                            unused_high_risk.push(format!("{server}__{tool}"));
                        }
                    }
                    if !unused_high_risk.is_empty() {
                        flags.push("over_privileged".into());
                    }
                }
                out.push(AgentReview {
                    name: a.name.clone(),
                    owner: owner.map(|o| o.name.clone()),
                    status: a.status,
                    roles,
                    grants,
                    last_used_us: a.last_used_at_us,
                    expires_at_us: a.expires_at_us,
                    flags,
                    unused_high_risk_tools: unused_high_risk,
                });
            }
            let people = users
                .iter()
                .map(|u| PersonReview {
                    name: u.name.clone(),
                    role: u.role.clone(),
                    status: u.status.clone(),
                    last_login_us: u.last_login_us,
                    agents: agents.iter().filter(|a| a.owner_id == Some(u.id)).count(),
                })
                .collect();
            let due = last_review.is_none_or(|t| t < now_us - interval_days * 86_400 * 1_000_000);
            let mut notes = Vec::new();
            if !gateway_running {
                notes.push("over-privilege is checked against the servers' tools, which needs the gateway running (warden serve)".to_string());
            }
            Ok(Review { generated_at_us: now_us, last_review_at_us: last_review, interval_days, due, people, agents: out, notes })
        })
        .await?;
        if record {
            let flagged: Vec<_> = review
                .agents
                .iter()
                .filter(|a| !a.flags.is_empty())
                .map(|a| (&a.name, &a.flags))
                .collect();
            self.record(
                "review.recorded",
                None,
                None,
                Some(serde_json::json!({"flagged": flagged}).to_string()),
            )
            .await?;
            review.last_review_at_us = Some(now_us);
            review.due = false;
        }
        Ok(review)
    }
}

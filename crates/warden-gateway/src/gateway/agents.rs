use super::*;

impl Gateway {
    /// Re-reads the agents that may authenticate. Called after any change.
    pub fn reload_agents(&self) -> Result<()> {
        let conn = self.inner.store.connect()?;
        let keys = warden_store::agent::active_keys(&conn)?;
        let owners = warden_store::agent::owners(&conn)?;
        let mut map = HashMap::with_capacity(keys.len());
        for k in keys {
            let grants = warden_store::roles::grants_of_agent(&conn, k.agent.id)?
                .into_iter()
                .filter_map(|g| {
                    Some(Grant {
                        server: g.server,
                        pattern: g.pattern,
                        effect: Effect::parse(&g.effect)?,
                        explicit: g.explicit,
                    })
                })
                .collect();
            let current = AgentRef {
                owner: owners.get(&k.agent.id).cloned(),
                id: k.agent.id,
                name: k.agent.name,
                access: Arc::new(Access::new(grants)),
                expires_at_us: k.agent.expires_at_us,
                chain: None,
            };
            // During a rotation's overlap the previous credential works too,
            // until the overlap ends.
            if let Some((hash, until)) = k.previous {
                let previous = AgentRef {
                    expires_at_us: Some(until),
                    ..current.clone()
                };
                map.insert(hash, previous);
            }
            map.insert(k.credential_hash, current);
        }
        *self.inner.agents.write() = map;
        self.load_standing(&conn)?;
        // Sessions of agents that can no longer authenticate end now.
        let live: std::collections::HashSet<i64> =
            self.inner.agents.read().values().map(|a| a.id).collect();
        self.inner
            .sessions
            .write()
            .retain(|_, s| live.contains(&s.agent.id));
        self.inner
            .listens
            .write()
            .retain(|_, l| live.contains(&l.agent_id));
        // Delegated credentials carry the access of the moment they were
        // issued: any change to agents, roles or grants ends them.
        self.inner.delegations.write().clear();
        Ok(())
    }

    pub fn authenticate(&self, bearer: &str) -> Option<AgentRef> {
        let hash = warden_auth::hash_credential(self.inner.credential_key.expose(), bearer);
        let found = self.inner.agents.read().get(&hash).cloned();
        let agent = match found {
            Some(a) => a,
            None => self.delegated(&hash)?,
        };
        // Expiry takes effect on the next message, open sessions included.
        if agent
            .expires_at_us
            .is_some_and(|e| e <= warden_store::now_us())
        {
            // Recorded once per agent and run, the first time it shows.
            if agent.chain.is_none() && self.inner.expired_seen.lock().insert(agent.id) {
                let event = NewEvent {
                    kind: "agent.credential_expired".into(),
                    agent: Some(agent.name.clone()),
                    on_behalf_of: agent.owner.clone(),
                    outcome: Some("refused".into()),
                    ..Default::default()
                };
                let log = self.inner.store.activity().clone();
                tokio::spawn(async move {
                    let _ = log.append(event).await;
                });
            }
            return None;
        }
        self.inner.store.activity().touch_agent(agent.id);
        Some(agent)
    }

    /// A delegated credential, while it and every agent it depends on live.
    pub(super) fn delegated(&self, hash: &str) -> Option<AgentRef> {
        let d = self.inner.delegations.read().get(hash).cloned()?;
        let live = {
            let agents = self.inner.agents.read();
            d.depends_on
                .iter()
                .all(|id| agents.values().any(|a| a.id == *id))
        };
        if !live
            || d.agent
                .expires_at_us
                .is_some_and(|e| e <= warden_store::now_us())
        {
            self.inner.delegations.write().remove(hash);
            return None;
        }
        Some(d.agent)
    }

    /// RFC 8693 token exchange: `actor` (an agent's own credential) gets a
    /// short-lived credential to act for `subject` (an agent credential, or a
    /// delegated one, so chains can grow). It may do only what both may, and
    /// everything it does names the whole chain.
    pub async fn exchange(
        &self,
        subject: &str,
        actor: &str,
    ) -> Result<(warden_auth::Sensitive<String>, i64), ExchangeError> {
        let key = self.inner.credential_key.expose();
        let subject_hash = warden_auth::hash_credential(key, subject);
        let (subject_ref, subject_deps) = match self.inner.agents.read().get(&subject_hash).cloned()
        {
            Some(a) => (a.clone(), vec![a.id]),
            None => {
                let d = self.inner.delegations.read().get(&subject_hash).cloned();
                match (d, self.delegated(&subject_hash)) {
                    (Some(d), Some(a)) => (a, d.depends_on),
                    _ => {
                        return Err(ExchangeError::InvalidRequest(
                            "the subject token is not valid".into(),
                        ));
                    }
                }
            }
        };
        let now = warden_store::now_us();
        if subject_ref.expires_at_us.is_some_and(|e| e <= now) {
            return Err(ExchangeError::InvalidRequest(
                "the subject token has expired".into(),
            ));
        }
        let actor_hash = warden_auth::hash_credential(key, actor);
        let Some(actor_ref) = self.inner.agents.read().get(&actor_hash).cloned() else {
            return Err(ExchangeError::InvalidRequest(
                "the actor token is not an agent's own valid credential".into(),
            ));
        };
        if actor_ref.expires_at_us.is_some_and(|e| e <= now) {
            return Err(ExchangeError::InvalidRequest(
                "the actor token has expired".into(),
            ));
        }
        if subject_deps.contains(&actor_ref.id) {
            return Err(ExchangeError::InvalidRequest(
                "an agent cannot delegate to itself or to an agent already in its chain".into(),
            ));
        }
        let mut chain = subject_ref.chain.clone().unwrap_or_else(|| {
            subject_ref
                .owner
                .iter()
                .cloned()
                .chain([subject_ref.name.clone()])
                .collect()
        });
        chain.push(actor_ref.name.clone());
        let expires = [
            Some(now + DELEGATION_LIFETIME_US),
            subject_ref.expires_at_us,
            actor_ref.expires_at_us,
        ]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(now);
        let access = Access {
            grants: actor_ref.access.grants.clone(),
            delegator: Some(Box::new((*subject_ref.access).clone())),
        };
        let mut depends_on = subject_deps;
        depends_on.push(actor_ref.id);
        let delegated = AgentRef {
            id: actor_ref.id,
            name: actor_ref.name.clone(),
            access: Arc::new(access),
            // Attributed to the person at the root of the chain.
            owner: subject_ref.owner.clone(),
            expires_at_us: Some(expires),
            chain: Some(chain),
        };
        let delegated_chain_json = delegated.chain_json();
        let token =
            warden_auth::Sensitive::new(format!("wdd_{}", warden_auth::random_token().expose()));
        let hash = warden_auth::hash_credential(key, token.expose());
        let event = NewEvent {
            kind: "delegation.issued".into(),
            agent: Some(actor_ref.name.clone()),
            on_behalf_of: subject_ref.owner.clone(),
            chain: delegated_chain_json.clone(),
            outcome: Some(format!("expires in {} s", (expires - now) / 1_000_000)),
            ..Default::default()
        };
        // Committed before the token exists anywhere but here: a delegation
        // the log does not show is never handed out.
        if let Err(e) = self.inner.store.activity().append(event).await {
            tracing::error!(error = %e, "could not record a delegation; none was issued");
            return Err(ExchangeError::Unavailable(
                "Warden could not record this delegation in its activity log, so it issued none; try again shortly".into(),
            ));
        }
        let mut all = self.inner.delegations.write();
        all.retain(|_, d| d.agent.expires_at_us.is_none_or(|e| e > now));
        all.insert(
            hash,
            Delegation {
                agent: delegated,
                depends_on,
            },
        );
        Ok((token, (expires - now) / 1_000_000))
    }
}

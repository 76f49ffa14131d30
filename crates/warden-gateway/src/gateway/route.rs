use super::*;

impl Gateway {
    /// (server, original name) for a name a client used.
    pub(super) fn route_name(
        &self,
        caller: &Caller,
        kind: ListKind,
        name: &str,
    ) -> Option<(String, String)> {
        let ups = self.ready_upstreams(caller.scope.as_deref());
        for up in &ups {
            let c = up.catalog();
            let items = if kind == ListKind::Tools {
                &c.tools
            } else {
                &c.prompts
            };
            let hit = if caller.scope.is_some() {
                items.iter().find(|i| i.original == name)
            } else {
                items.iter().find(|i| i.exposed == name)
            };
            if let Some(i) = hit {
                return Some((up.name.clone(), i.original.clone()));
            }
        }
        // Only what a server listed can be called: an unknown name is refused
        // here and never reaches a server.
        None
    }

    /// The server a resource URI goes to: the one server that lists it or
    /// whose templates match it, else (with every server up) the only server
    /// with resources. A URI more than one server claims is refused, never
    /// routed by name order (a server could otherwise list another's URIs to
    /// receive their reads). `Err` says why, for the client.
    pub(super) fn route_uri(
        &self,
        caller: &Caller,
        uri: &str,
    ) -> std::result::Result<String, String> {
        if let Some(scope) = &caller.scope {
            return Ok(scope.clone());
        }
        let ups = self.ready_upstreams(None);
        let one = |found: Vec<&Arc<Upstream>>| -> Option<std::result::Result<String, String>> {
            match found.as_slice() {
                [] => None,
                [up] => Some(Ok(up.name.clone())),
                many => Some(Err(format!(
                    "more than one server offers the resource {uri} ({}), so Warden does not guess which one is meant; read it through the endpoint of the server you mean (/servers/<name>/mcp)",
                    many.iter()
                        .map(|u| u.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))),
            }
        };
        // Every server that claims the URI, by listing it or by a template
        // that matches it: one may have it; two is a conflict to refuse
        // (one listing a URI must not take it from another's template).
        let claiming: Vec<_> = ups
            .iter()
            .filter(|u| {
                let c = u.catalog();
                c.resources.iter().any(|r| r.uri.as_deref() == Some(uri))
                    || c.templates.iter().any(|t| {
                        t.uri_template
                            .as_deref()
                            .is_some_and(|tpl| template_matches(tpl, uri))
                    })
            })
            .collect();
        if let Some(r) = one(claiming) {
            return r;
        }
        // Nobody claims it: the only server with resources may have it, but
        // only while every server is up (one that is restarting might be
        // the one that has it).
        let all_ready = self.inner.upstreams.read().len() == ups.len();
        let with_resources: Vec<_> = ups
            .iter()
            .filter(|u| {
                u.peer()
                    .is_some_and(|p| p.capabilities().get("resources").is_some())
            })
            .collect();
        match with_resources.as_slice() {
            [up] if all_ready => Ok(up.name.clone()),
            _ => Err(format!("no connected server offers the resource {uri}")),
        }
    }
}

/// Whether `uri` fits an RFC 6570 level-1 template (each `{var}` matches a
/// non-empty run of characters).
pub(super) fn template_matches(template: &str, uri: &str) -> bool {
    let mut parts = template.split('{');
    let Some(prefix) = parts.next() else {
        return false;
    };
    let Some(mut rest) = uri.strip_prefix(prefix) else {
        return false;
    };
    for part in parts {
        let Some((_, literal)) = part.split_once('}') else {
            return false;
        };
        if literal.is_empty() {
            return !rest.is_empty();
        }
        match rest.find(literal) {
            Some(i) if i > 0 => rest = &rest[i + literal.len()..],
            _ => return false,
        }
    }
    rest.is_empty()
}

#[cfg(test)]
mod tests {
    use super::template_matches;

    #[test]
    pub(super) fn templates_match_their_uris_only() {
        assert!(template_matches(
            "demo://resource/{id}",
            "demo://resource/7"
        ));
        assert!(template_matches("file:///{path}.txt", "file:///a/b.txt"));
        assert!(!template_matches("demo://resource/{id}", "demo://other/7"));
        assert!(!template_matches(
            "demo://resource/{id}",
            "demo://resource/"
        ));
    }
}

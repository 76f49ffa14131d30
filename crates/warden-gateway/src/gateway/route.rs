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

    pub(super) fn route_uri(&self, caller: &Caller, uri: &str) -> Option<String> {
        let ups = self.ready_upstreams(caller.scope.as_deref());
        if let Some(scope) = &caller.scope {
            return Some(scope.clone());
        }
        if let Some(up) = ups.iter().find(|u| {
            u.catalog()
                .resources
                .iter()
                .any(|r| r.uri.as_deref() == Some(uri))
        }) {
            return Some(up.name.clone());
        }
        let matching: Vec<_> = ups
            .iter()
            .filter(|u| {
                u.catalog().templates.iter().any(|t| {
                    t.uri_template
                        .as_deref()
                        .is_some_and(|tpl| template_matches(tpl, uri))
                })
            })
            .collect();
        if matching.len() == 1 {
            return Some(matching[0].name.clone());
        }
        let with_resources: Vec<_> = ups
            .iter()
            .filter(|u| {
                u.peer()
                    .is_some_and(|p| p.capabilities().get("resources").is_some())
            })
            .collect();
        (with_resources.len() == 1).then(|| with_resources[0].name.clone())
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

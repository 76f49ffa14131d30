//! What Warden says about itself in a handshake, built with the official
//! MCP SDK's protocol types (`rmcp`'s model, no transport): its identity
//! and capabilities as a server on the aggregated endpoint, and as a
//! client to the servers behind it. Messages Warden forwards stay raw JSON
//! (the SDK's types drop fields they do not know); these are the ones
//! Warden writes itself, and the tests below hold the rest of what it
//! writes by hand (discovery answers, errors) to the SDK's reading of them.

use std::sync::LazyLock;

use rmcp::model::{
    ClientCapabilities, Implementation, InitializeResult, PromptsCapability, ResourcesCapability,
    RootsCapabilities, ServerCapabilities, ToolsCapability,
};

use crate::upstream::{LEGACY_VERSIONS, MODERN_VERSION};

const INSTRUCTIONS: &str =
    "Tools, resources and prompts of several MCP servers, named <server>__<name>.";

/// Warden's capabilities, identity and instructions on the aggregated
/// endpoint: the fields an `initialize` and a `server/discover` answer share.
pub fn own_description() -> serde_json::Value {
    static OWN: LazyLock<serde_json::Value> = LazyLock::new(|| {
        // The SDK's builders come with its server runtime; the structs alone
        // are built field by field.
        let mut tools = ToolsCapability::default();
        tools.list_changed = Some(true);
        let mut resources = ResourcesCapability::default();
        resources.list_changed = Some(true);
        resources.subscribe = Some(true);
        let mut prompts = PromptsCapability::default();
        prompts.list_changed = Some(true);
        let mut capabilities = ServerCapabilities::default();
        capabilities.tools = Some(tools);
        capabilities.resources = Some(resources);
        capabilities.prompts = Some(prompts);
        capabilities.logging = Some(Default::default());
        capabilities.completions = Some(Default::default());
        let mut result = InitializeResult::new(capabilities);
        result.server_info = Implementation::new("warden", env!("CARGO_PKG_VERSION"));
        result.server_info.title = Some("Warden MCP gateway".into());
        result.instructions = Some(INSTRUCTIONS.into());
        let mut v = serde_json::to_value(result).unwrap_or_default();
        // The version is the caller's to negotiate.
        if let Some(o) = v.as_object_mut() {
            o.remove("protocolVersion");
        }
        v
    });
    OWN.clone()
}

/// A `server/discover` answer around a description (Warden's own, or a
/// single server's as it described itself).
pub fn discover_result(mut description: serde_json::Value) -> serde_json::Value {
    let mut versions = vec![MODERN_VERSION.to_string()];
    versions.extend(LEGACY_VERSIONS.iter().map(|v| v.to_string()));
    description["supportedVersions"] = serde_json::json!(versions);
    description["resultType"] = serde_json::json!("complete");
    description["ttlMs"] = serde_json::json!(0);
    description["cacheScope"] = serde_json::json!("private");
    description
}

/// What Warden can do as a client: relay roots, sampling and elicitation
/// from its own clients.
pub fn client_capabilities() -> ClientCapabilities {
    let mut roots = RootsCapabilities::default();
    roots.list_changed = Some(true);
    let mut c = ClientCapabilities::default();
    c.roots = Some(roots);
    c.sampling = Some(Default::default());
    c.elicitation = Some(Default::default());
    c
}

pub fn client_info() -> Implementation {
    Implementation::new("warden", env!("CARGO_PKG_VERSION"))
}

#[cfg(test)]
mod tests {
    use rmcp::model::{DiscoverResult, InitializeRequestParams, JsonRpcMessage, ProtocolVersion};
    use serde_json::json;

    use super::*;

    /// The SDK reads `v` as `T` and writes back exactly `v`: no field of
    /// Warden's is unknown to it, none it requires is missing.
    fn round_trips<T: serde::de::DeserializeOwned + serde::Serialize>(v: &serde_json::Value) {
        let typed: T = serde_json::from_value(v.clone())
            .unwrap_or_else(|e| panic!("the SDK does not read {v}: {e}"));
        assert_eq!(&serde_json::to_value(typed).expect("serialize"), v);
    }

    #[test]
    fn the_initialize_answer_is_the_sdks() {
        let mut answer = own_description();
        answer["protocolVersion"] = json!("2025-11-25");
        round_trips::<InitializeResult>(&answer);
        assert_eq!(answer["serverInfo"]["name"], "warden");
        assert_eq!(answer["capabilities"]["resources"]["subscribe"], true);
        assert_eq!(answer["capabilities"]["tools"]["listChanged"], true);
    }

    #[test]
    fn the_discover_answer_reads_as_the_sdks() {
        let answer = discover_result(own_description());
        let typed: DiscoverResult = serde_json::from_value(answer.clone()).expect("discover");
        assert_eq!(
            typed.supported_versions.first(),
            Some(&ProtocolVersion::V_2026_07_28)
        );
        assert_eq!(
            serde_json::to_value(&typed.capabilities).expect("caps"),
            answer["capabilities"]
        );
        assert_eq!(typed.ttl_ms, 0);
        assert_eq!(typed.instructions.as_deref(), Some(INSTRUCTIONS));
    }

    #[test]
    fn the_initialize_request_to_a_server_is_the_sdks() {
        let params = json!({
            "protocolVersion": "2025-11-25",
            "capabilities": client_capabilities(),
            "clientInfo": client_info(),
        });
        round_trips::<InitializeRequestParams>(&params);
        assert_eq!(
            params["capabilities"],
            json!({"roots": {"listChanged": true}, "sampling": {}, "elicitation": {}}),
            "what Warden has always declared to servers"
        );
    }

    #[test]
    fn hand_built_errors_and_responses_read_as_the_sdks() {
        let id = crate::jsonrpc::to_raw(&json!(7));
        let error = crate::jsonrpc::error(Some(&id), crate::jsonrpc::METHOD_NOT_FOUND, "no \"x\"");
        let v: serde_json::Value = serde_json::from_str(&error).expect("json");
        round_trips::<JsonRpcMessage>(&v);
        assert_eq!(v["error"]["code"], crate::jsonrpc::METHOD_NOT_FOUND);
        assert_eq!(v["error"]["message"], "no \"x\"");
        let result = crate::jsonrpc::response(&id, &crate::jsonrpc::to_raw(&json!({"ok": 1})));
        let v: serde_json::Value = serde_json::from_str(&result).expect("json");
        round_trips::<JsonRpcMessage>(&v);
    }
}

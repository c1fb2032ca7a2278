//! How the settings reach the agent, and the user-data document for either way.

use crate::registry::RegistryConfig;
use crate::settings::Settings;
use cpi::CallContext;
use serde_json::{json, Value};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// The whole settings document travels with the VM (user data, metadata
    /// service, a file the agent reads); the director sends disk hints.
    UserData,
    /// The CPI writes the settings to the registry and keeps them current on
    /// attach and detach; user data only points at the registry.
    Registry,
}

impl Delivery {
    /// Stemcell API v2+ with CPI API v2+ means user data; anything older
    /// means the registry.
    pub fn choose(ctx: &CallContext) -> Delivery {
        Self::for_versions(ctx.stemcell_api_version.unwrap_or(1), ctx.api_version)
    }

    pub fn for_versions(stemcell_api_version: u32, cpi_api_version: u32) -> Delivery {
        if stemcell_api_version >= 2 && cpi_api_version >= 2 {
            Delivery::UserData
        } else {
            Delivery::Registry
        }
    }
}

/// The user-data document: the settings themselves (merged with `server`
/// and `dns`, which older agents read) for user-data delivery, or just the
/// registry pointer, server name and DNS for registry delivery.
pub fn user_data(
    settings: &Settings,
    delivery: Delivery,
    registry: Option<&RegistryConfig>,
) -> Value {
    let name = settings.vm.name.clone();
    let dns: Vec<String> = settings
        .networks
        .values()
        .filter(|n| {
            n.default
                .as_ref()
                .map(|d| d.iter().any(|x| x == "dns"))
                .unwrap_or(false)
        })
        .chain(settings.networks.values())
        .find_map(|n| n.dns.clone())
        .unwrap_or_default();
    let mut doc = match delivery {
        Delivery::UserData => settings.to_json(),
        Delivery::Registry => json!({}),
    };
    let obj = doc.as_object_mut().expect("settings are an object");
    obj.insert("server".into(), json!({"name": name}));
    if !dns.is_empty() {
        obj.insert("dns".into(), json!({"nameserver": dns}));
    }
    if let (Delivery::Registry, Some(reg)) = (delivery, registry) {
        obj.insert(
            "registry".into(),
            json!({"endpoint": reg.endpoint_with_credentials()}),
        );
    }
    doc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_delivery_from_both_versions() {
        assert_eq!(Delivery::for_versions(2, 2), Delivery::UserData);
        assert_eq!(Delivery::for_versions(3, 2), Delivery::UserData);
        assert_eq!(Delivery::for_versions(1, 2), Delivery::Registry);
        assert_eq!(Delivery::for_versions(2, 1), Delivery::Registry);
    }
}

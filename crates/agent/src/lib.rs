//! What a BOSH agent needs to find its VM's settings: the settings document
//! itself, the delivery rule (user data for stemcell API v2+, registry for
//! v1), the user-data document that carries one or points at the other, and
//! an HTTP client for the registry.

pub mod delivery;
pub mod registry;
pub mod settings;

pub use delivery::{user_data, Delivery};
pub use registry::{RegistryClient, RegistryConfig};
pub use settings::{AgentOptions, Disks, Settings};

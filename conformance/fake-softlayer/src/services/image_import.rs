//! Image templates imported from object storage:
//! `createFromExternalSource` (a `swift://account@cluster/container/object`
//! URI of an object that exists), the import's transaction that ends after
//! some polls of the template, and `setBootMode`.

use crate::api::{ApiError, Call, Reply};
use crate::render::{self, Kind};
use crate::state::{Import, State, Template};
use serde_json::{json, Value};
use std::time::SystemTime;

const SERVICE: &str = "SoftLayer_Virtual_Guest_Block_Device_Template_Group";

/// `createFromExternalSource [{name, note, operatingSystemReferenceCode, uri}]`.
pub fn create_from_external_source(state: &mut State, call: &Call) -> Result<Reply, ApiError> {
    let config = call.param(0);
    let field = |k: &str| {
        config
            .get(k)
            .and_then(Value::as_str)
            .filter(|s| !s.trim().is_empty())
    };
    let name = field("name").ok_or_else(|| ApiError::public("Property 'name' is required."))?;
    let os = field("operatingSystemReferenceCode")
        .ok_or_else(|| ApiError::public("Property 'operatingSystemReferenceCode' is required."))?;
    let uri = field("uri").ok_or_else(|| ApiError::public("Property 'uri' is required."))?;
    let (container, object) = check_uri(state, uri)?;
    if state.swift.size(&container, &object).unwrap_or(0) == 0 {
        return Err(ApiError::public(format!(
            "Unable to import image: object '{container}/{object}' was not found or is empty."
        )));
    }
    let id = state.next_id();
    let transaction_id = state.next_id();
    let template = Template {
        id,
        name: name.to_owned(),
        global_identifier: uuid::Uuid::new_v4().to_string(),
        created: SystemTime::now(),
        note: field("note").map(str::to_owned),
        uri: Some(uri.to_owned()),
        os_code: Some(os.to_owned()),
        boot_mode: None,
        import: Some(Import {
            polls_left: state.import_polls,
            outcome: state.import_outcome,
            transaction_id,
        }),
        import_failed: false,
    };
    let mut reply = render::template(&template);
    // The answer carries the new template's identity, as the real one does.
    reply["transaction"] = render::template_transaction(&template);
    state.templates.insert(id, template);
    Ok(Reply::of(Kind::Plain, reply))
}

/// `swift://ACCOUNT@CLUSTER/CONTAINER/OBJECT`: the account must be this
/// account's object storage and the cluster a datacenter.
fn check_uri(state: &State, uri: &str) -> Result<(String, String), ApiError> {
    let bad = |why: &str| ApiError::public(format!("Invalid uri '{uri}': {why}"));
    let rest = uri
        .strip_prefix("swift://")
        .ok_or_else(|| bad("not a swift:// URI"))?;
    let (account, rest) = rest
        .split_once('@')
        .ok_or_else(|| bad("no object storage account"))?;
    let mut parts = rest.splitn(3, '/');
    let (cluster, container, object) = (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
    );
    if account != state.swift.account {
        return Err(bad("not this account's object storage"));
    }
    if state.datacenter(cluster).is_none() {
        return Err(bad(&format!("unknown object storage cluster '{cluster}'")));
    }
    if container.is_empty() || object.is_empty() {
        return Err(bad("no container or object"));
    }
    Ok((container.to_owned(), object.to_owned()))
}

/// One look at a template: an import in progress moves one poll on.
pub fn poll(t: &mut Template) {
    let Some(import) = t.import.as_mut() else {
        return;
    };
    match import.outcome {
        crate::state::Outcome::NeverFinishes => {}
        _ if import.polls_left > 0 => import.polls_left -= 1,
        outcome => {
            t.import_failed = outcome == crate::state::Outcome::Fails;
            t.import = None;
        }
    }
}

/// `setBootMode ["HVM"|"PV"]`: `true`.
pub fn set_boot_mode(state: &mut State, call: &Call) -> Result<Reply, ApiError> {
    let id = call.need_id()?;
    let mode = call.param(0).as_str().unwrap_or_default().to_owned();
    if !matches!(mode.as_str(), "HVM" | "PV") {
        return Err(ApiError::public(format!("Invalid boot mode '{mode}'.")));
    }
    let t = state
        .templates
        .get_mut(&id)
        .ok_or_else(|| ApiError::not_found(SERVICE, id))?;
    t.boot_mode = Some(mode);
    Ok(Reply::plain(json!(true)))
}

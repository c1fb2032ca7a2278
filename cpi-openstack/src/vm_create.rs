//! create_vm: ports for manual networks, the server with user data (or a
//! registry pointer), floating IPs for vip networks; undone on failure.

use crate::cloud::OpenStack;
use crate::network;
use crate::nova;
use crate::session::Service;
use crate::types::*;
use agent::{Delivery, RegistryClient, Settings};
use base64::Engine;
use cpi::*;
use serde::Deserialize;
use serde_json::{json, Map, Value};

#[derive(Deserialize)]
struct VmProps {
    instance_type: String,
    #[serde(default)]
    availability_zone: Option<String>,
    #[serde(default)]
    availability_zones: Vec<String>,
    #[serde(default)]
    key_name: Option<String>,
    #[serde(default)]
    security_groups: Vec<String>,
    #[serde(default)]
    scheduler_hints: Option<Map<String, Value>>,
    #[serde(default)]
    boot_from_volume: Option<bool>,
    #[serde(default)]
    root_disk: Option<RootDisk>,
    #[serde(default)]
    loadbalancer_pools: Option<Value>,
    #[serde(default)]
    allowed_address_pairs: Option<Value>,
}

#[derive(Deserialize)]
struct RootDisk {
    /// GiB
    size: u64,
    #[serde(default, rename = "type")]
    volume_type: Option<String>,
}

#[derive(Deserialize, Default)]
struct NetProps {
    #[serde(default)]
    net_id: Option<String>,
    #[serde(default)]
    security_groups: Vec<String>,
}

/// What create made so far, removed again if a later step fails.
#[derive(Default)]
struct Made {
    ports: Vec<String>,
    server: Option<String>,
}

pub async fn create(cloud: &OpenStack, args: CreateVm) -> Result<CreatedVm> {
    let props: VmProps = typed("cloud_properties", &args.cloud_properties)?;
    if props.loadbalancer_pools.is_some() || props.allowed_address_pairs.is_some() {
        tracing::warn!("cloud_properties.loadbalancer_pools and allowed_address_pairs are not supported; ignored");
    }
    let session = cloud.session()?;
    let delivery = Delivery::choose(&cloud.ctx);
    let registry = match delivery {
        Delivery::Registry => {
            let cfg = cloud.registry.clone().ok_or_else(|| {
                Error::cpi("registry: missing: stemcell API v1 needs cloud.properties.registry with endpoint, user and password")
            })?;
            Some((RegistryClient::new(&cfg, "registry")?, cfg))
        }
        Delivery::UserData => None,
    };

    let image_id = args
        .stemcell_cid
        .as_str()
        .trim_end_matches(" light")
        .to_owned();
    if session
        .get::<Image>(Service::Image, &format!("/images/{image_id}"))
        .await?
        .is_none()
    {
        return Err(Error::cloud(format!(
            "stemcell image '{image_id}' not found"
        )));
    }
    let flavor = nova::flavor_named(session, &props.instance_type).await?;

    let mut nets: Vec<(String, NetProps)> = Vec::new();
    for (name, net) in &args.networks {
        let np: NetProps = typed(
            &format!("networks.{name}.cloud_properties"),
            &net.cloud_properties,
        )?;
        if net.kind == NetworkType::Manual && np.net_id.is_none() {
            return Err(Error::cloud(format!(
                "networks.{name}.cloud_properties.net_id: missing for a manual network"
            )));
        }
        nets.push((name.clone(), np));
    }
    let group_names = if !props.security_groups.is_empty() {
        props.security_groups.clone()
    } else {
        let from_nets: Vec<String> = nets
            .iter()
            .flat_map(|(_, n)| n.security_groups.clone())
            .collect();
        if from_nets.is_empty() {
            cloud.opts.default_security_groups.clone()
        } else {
            from_nets
        }
    };
    // Ids are only needed for the ports of manual networks.
    let group_ids = if args
        .networks
        .values()
        .any(|n| n.kind == NetworkType::Manual)
    {
        network::security_group_ids(session, &group_names).await?
    } else {
        Vec::new()
    };
    let az = availability_zone(cloud, &props, &args.disk_cids).await?;

    let name = format!("vm-{}", uuid::Uuid::new_v4());
    let mut made = Made::default();
    let result = build(
        cloud,
        &args,
        &props,
        &flavor,
        &nets,
        &group_names,
        &group_ids,
        az,
        &name,
        &image_id,
        delivery,
        registry.as_ref(),
        &mut made,
    )
    .await;
    match result {
        Ok(v) => Ok(v),
        Err(e) => {
            let retry = made.server.is_some() || e.ok_to_retry();
            undo(cloud, &made).await;
            Err(e.with_kind(ErrorKind::VmCreationFailed).retry(retry))
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn build(
    cloud: &OpenStack,
    args: &CreateVm,
    props: &VmProps,
    flavor: &Flavor,
    nets: &[(String, NetProps)],
    group_names: &[String],
    group_ids: &[String],
    az: Option<String>,
    name: &str,
    image_id: &str,
    delivery: Delivery,
    registry: Option<&(RegistryClient, agent::RegistryConfig)>,
    made: &mut Made,
) -> Result<CreatedVm> {
    let session = cloud.session()?;
    let mut networks = args.networks.clone();
    let mut server_nets = Vec::new();
    for (net_name, np) in nets {
        let spec = networks
            .get_mut(net_name)
            .expect("network from the same map");
        match spec.kind {
            NetworkType::Manual => {
                let net_id = np.net_id.as_deref().unwrap_or_default();
                let ip = spec
                    .ip
                    .clone()
                    .ok_or_else(|| Error::cpi(format!("networks.{net_name}.ip: missing")))?;
                let port = network::create_port(
                    session,
                    &format!("{name}-{net_name}"),
                    net_id,
                    &ip,
                    group_ids,
                )
                .await?;
                made.ports.push(port.id.clone());
                spec.mac = Some(port.mac_address.clone());
                server_nets.push(json!({"uuid": net_id, "port": port.id}));
            }
            NetworkType::Dynamic => {
                if let Some(net_id) = &np.net_id {
                    server_nets.push(json!({"uuid": net_id}));
                }
            }
            NetworkType::Vip => {}
        }
        if spec.kind != NetworkType::Vip {
            spec.extra
                .insert("use_dhcp".into(), Value::Bool(cloud.opts.use_dhcp));
        }
    }

    let ephemeral = (flavor.ephemeral > 0).then(|| json!("/dev/sdb"));
    let mut for_settings = args.clone();
    for_settings.networks = networks.clone();
    let settings = Settings::new(
        &cloud.agent,
        &for_settings,
        name,
        agent::Disks {
            system: "/dev/sda".into(),
            ephemeral,
            ..Default::default()
        },
    );
    let user_data = agent::user_data(&settings, delivery, registry.map(|(_, cfg)| cfg));
    let user_data = base64::engine::general_purpose::STANDARD.encode(user_data.to_string());

    let mut server = json!({
        "name": name,
        "imageRef": image_id,
        "flavorRef": flavor.id,
        "user_data": user_data,
        "metadata": {"registry_key": name},
    });
    if let Some(key) = props
        .key_name
        .as_ref()
        .or(cloud.opts.default_key_name.as_ref())
    {
        server["key_name"] = json!(key);
    }
    if !group_names.is_empty() {
        server["security_groups"] = json!(group_names
            .iter()
            .map(|g| json!({"name": g}))
            .collect::<Vec<_>>());
    }
    if !server_nets.is_empty() {
        server["networks"] = json!(server_nets);
    }
    if let Some(az) = az {
        server["availability_zone"] = json!(az);
    }
    if cloud.opts.config_drive.is_some() {
        server["config_drive"] = json!(true);
    }
    if props
        .boot_from_volume
        .unwrap_or(cloud.opts.boot_from_volume)
    {
        let size = props
            .root_disk
            .as_ref()
            .map(|r| r.size)
            .unwrap_or(flavor.disk);
        if size == 0 {
            return Err(Error::cpi("cloud_properties.root_disk.size: required to boot from volume with a flavor of disk 0"));
        }
        let mut bdm = json!({"uuid": image_id, "source_type": "image", "destination_type": "volume",
            "volume_size": size, "boot_index": 0, "delete_on_termination": true});
        if let Some(t) = props
            .root_disk
            .as_ref()
            .and_then(|r| r.volume_type.clone())
            .or(cloud.opts.default_volume_type.clone())
        {
            bdm["volume_type"] = json!(t);
        }
        server["block_device_mapping_v2"] = json!([bdm]);
        server["imageRef"] = json!("");
    }
    let mut body = json!({ "server": server });
    if let Some(hints) = &props.scheduler_hints {
        body["os:scheduler_hints"] = Value::Object(hints.clone());
    }

    let id = post_server(session, name, &body).await?;
    made.server = Some(id.clone());
    for port in &made.ports {
        network::mark_owner(session, port, &id).await?;
    }
    nova::wait_status(cloud, &id, "ACTIVE").await?;

    for (net_name, spec) in &networks {
        if spec.kind == NetworkType::Vip {
            let ip = spec
                .ip
                .clone()
                .ok_or_else(|| Error::cpi(format!("networks.{net_name}.ip: missing")))?;
            let ports = network::ports_of(session, &id).await?;
            let port = ports.first().ok_or_else(|| {
                Error::cloud(format!("server {id} has no port for floating IP {ip}"))
            })?;
            network::associate_floating_ip(session, &ip, &port.id).await?;
        }
    }
    if let Some((client, _)) = registry {
        client.put(&VmCid::new(name), &settings).await?;
    }
    Ok(CreatedVm {
        cid: VmCid::new(id),
        networks,
    })
}

/// POST /servers; after a 5xx or a lost answer the server is looked up by
/// its unique name before the POST is sent again, so no duplicate is made.
async fn post_server(
    session: &crate::session::Session,
    name: &str,
    body: &Value,
) -> Result<String> {
    let made: ServerBody = session
        .create(Service::Compute, "/servers", body, async || {
            Ok(nova::find_by_name(session, name)
                .await?
                .map(|server| ServerBody { server }))
        })
        .await?;
    Ok(made.server.id)
}

async fn undo(cloud: &OpenStack, made: &Made) {
    let Ok(session) = cloud.session() else { return };
    if let Some(id) = &made.server {
        if let Err(e) = nova::delete_and_wait(cloud, id).await {
            tracing::warn!("cleaning up server {id}: {}", e.message());
        }
    }
    for port in &made.ports {
        if let Err(e) = network::delete_port(session, port).await {
            tracing::warn!("cleaning up port {port}: {}", e.message());
        }
    }
}

async fn availability_zone(
    cloud: &OpenStack,
    props: &VmProps,
    disks: &[DiskCid],
) -> Result<Option<String>> {
    if let Some(az) = props
        .availability_zone
        .clone()
        .or_else(|| props.availability_zones.first().cloned())
    {
        return Ok(Some(az));
    }
    if cloud.opts.ignore_server_availability_zone {
        return Ok(None);
    }
    let session = cloud.session()?;
    for disk in disks {
        if let Some(v) = session
            .get::<VolumeBody>(Service::Volume, &format!("/volumes/{disk}"))
            .await?
        {
            if let Some(az) = v.volume.availability_zone.filter(|a| !a.is_empty()) {
                return Ok(Some(az));
            }
        }
    }
    Ok(None)
}

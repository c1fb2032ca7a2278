//! create_vm: ports for manual networks, the server with user data (or a
//! registry pointer), floating IPs for vip networks; undone on failure.

use crate::cloud::OpenStack;
use crate::lbaas;
use crate::network;
use crate::nova;
use crate::session::Service;
use crate::types::*;
use agent::{Delivery, RegistryClient, Settings};
use base64::Engine;
use cpi::*;
use reqwest::Method;
use serde::Deserialize;
use serde_json::{json, Map, Value};

#[derive(Deserialize)]
pub(crate) struct VmProps {
    /// The flavor by name; or none, and `cpu` + `ram` (+ `ephemeral_disk_size`)
    /// pick the smallest flavor that fits.
    #[serde(default)]
    instance_type: Option<String>,
    #[serde(default)]
    cpu: Option<u32>,
    /// MiB
    #[serde(default)]
    ram: Option<u64>,
    /// MiB
    #[serde(default)]
    ephemeral_disk_size: Option<u64>,
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
    loadbalancer_pools: Vec<lbaas::PoolSpec>,
    /// One IP (the VRRP address) allowed on the default network's port.
    #[serde(default)]
    allowed_address_pairs: Option<String>,
}

#[derive(Deserialize)]
struct RootDisk {
    /// GiB
    size: u64,
    #[serde(default, rename = "type")]
    volume_type: Option<String>,
}

#[derive(Deserialize, Default)]
pub(crate) struct NetProps {
    #[serde(default)]
    net_id: Option<String>,
    #[serde(default)]
    security_groups: Vec<String>,
    /// With `allowed_address_pairs`: a port must already hold that IP.
    #[serde(default)]
    vrrp_port_check: Option<bool>,
}

/// What create made so far, removed again if a later step fails.
#[derive(Default)]
struct Made {
    ports: Vec<String>,
    server: Option<String>,
    /// Octavia memberships: (pool id, member id).
    members: Vec<(String, String)>,
    /// An auto anti-affinity group this call made or joined.
    server_group: Option<String>,
}

pub async fn create(cloud: &OpenStack, args: CreateVm) -> Result<CreatedVm> {
    let mut props: VmProps = typed("cloud_properties", &args.cloud_properties)?;
    if props.availability_zone.is_some() && !props.availability_zones.is_empty() {
        return Err(Error::cpi(
            "cloud_properties: only one of availability_zone and availability_zones may be set",
        ));
    }
    if !props.availability_zones.is_empty() && !cloud.opts.ignore_server_availability_zone {
        return Err(Error::cpi(
            "cloud_properties.availability_zones: needs openstack.ignore_server_availability_zone: true (disks must be free to live in another AZ)",
        ));
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
    let flavor =
        match (&props.instance_type, props.cpu, props.ram) {
            (Some(name), _, _) => nova::flavor_named(session, name).await?,
            (None, Some(cpu), Some(ram)) => {
                let need = VmResources {
                    cpu,
                    ram,
                    ephemeral_disk_size: props.ephemeral_disk_size.unwrap_or(0),
                };
                let (flavor, root_gib) = nova::smallest_flavor(session, &need).await?;
                if let Some(size) = root_gib.filter(|_| props.root_disk.is_none()) {
                    // The ephemeral data lives on the root disk then.
                    props.root_disk = Some(RootDisk {
                        size,
                        volume_type: None,
                    });
                    props.boot_from_volume.get_or_insert(true);
                }
                flavor
            }
            _ => return Err(Error::cpi(
                "cloud_properties.instance_type: missing (or give cpu and ram to pick a flavor)",
            )),
        };

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
    let vrrp_net = match &props.allowed_address_pairs {
        None => None,
        Some(ip) => Some(vrrp_network(session, &args.networks, &nets, ip).await?),
    };
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
    let group_hint = match auto_group_name(cloud, &props, &args) {
        Some(n) => Some(crate::server_group::find_or_create(session, &n).await?),
        None => None,
    };

    let name = format!("vm-{}", uuid::Uuid::new_v4());
    let mut made = Made {
        server_group: group_hint.clone(),
        ..Made::default()
    };
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
        vrrp_net.as_deref(),
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
    vrrp_net: Option<&str>,
    made: &mut Made,
) -> Result<CreatedVm> {
    let session = cloud.session()?;
    let mut networks = args.networks.clone();
    let mut server_nets = Vec::new();
    let mut subnets: Vec<(String, String)> = Vec::new();
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
                let pairs = props
                    .allowed_address_pairs
                    .as_deref()
                    .filter(|_| vrrp_net == Some(net_name.as_str()));
                let port = network::create_port(
                    session,
                    &format!("{name}-{net_name}"),
                    net_id,
                    &ip,
                    group_ids,
                    pairs,
                )
                .await?;
                made.ports.push(port.id.clone());
                if let Some(subnet) = port.fixed_ips.first().and_then(|f| f.subnet_id.clone()) {
                    subnets.push((ip.clone(), subnet));
                }
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
    let mut hints = props.scheduler_hints.clone().unwrap_or_default();
    if let Some(g) = &made.server_group {
        hints.entry("group").or_insert(json!(g));
        body["server"]["metadata"][crate::server_group::METADATA_KEY] = json!(g);
    }
    if !hints.is_empty() {
        body["os:scheduler_hints"] = Value::Object(hints);
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
    if !props.loadbalancer_pools.is_empty() {
        let (ip, subnet) = lb_address(&networks, &subnets).ok_or_else(|| {
            Error::cloud("cloud_properties.loadbalancer_pools: the VM has no manual network IP to add to a pool")
        })?;
        let mut recorded = Map::new();
        for (i, pool) in props.loadbalancer_pools.iter().enumerate() {
            let (pool_id, member) =
                crate::lbaas::add_member(session, pool, &ip, subnet.as_deref()).await?;
            made.members.push((pool_id.clone(), member.clone()));
            recorded.insert(
                crate::lbaas::metadata_key(i),
                json!(format!("{pool_id}/{member}")),
            );
        }
        session
            .act(
                Method::POST,
                Service::Compute,
                &format!("/servers/{id}/metadata"),
                Some(&json!({ "metadata": recorded })),
            )
            .await?;
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
    for (pool, member) in &made.members {
        if let Err(e) = crate::lbaas::remove_member(session, pool, member).await {
            tracing::warn!("cleaning up pool member {member}: {}", e.message());
        }
    }
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
    if let Some(g) = &made.server_group {
        if let Err(e) = crate::server_group::remove_if_empty(session, g).await {
            tracing::warn!("cleaning up server group {g}: {}", e.message());
        }
    }
}

/// The IP (and its subnet) a pool member gets: the default manual network's.
fn lb_address(
    networks: &Networks,
    subnets: &[(String, String)],
) -> Option<(String, Option<String>)> {
    let manual: Vec<&Network> = networks
        .values()
        .filter(|n| n.kind == NetworkType::Manual && n.ip.is_some())
        .collect();
    let pick = manual
        .iter()
        .find(|n| {
            n.default
                .as_ref()
                .is_some_and(|d| d.iter().any(|x| x == "gateway"))
        })
        .or(manual.first())?;
    let ip = pick.ip.clone()?;
    let subnet = subnets
        .iter()
        .find(|(i, _)| *i == ip)
        .map(|(_, s)| s.clone());
    Some((ip, subnet))
}

/// The network whose port gets `allowed_address_pairs` (the default one,
/// which must be manual), after the VRRP port check.
async fn vrrp_network(
    session: &crate::session::Session,
    networks: &Networks,
    nets: &[(String, NetProps)],
    ip: &str,
) -> Result<String> {
    let default = networks
        .iter()
        .filter(|(_, n)| n.kind != NetworkType::Vip)
        .find(|(_, n)| {
            n.default
                .as_ref()
                .is_some_and(|d| d.iter().any(|x| x == "gateway"))
        })
        .or_else(|| networks.iter().find(|(_, n)| n.kind != NetworkType::Vip));
    let Some((name, net)) = default else {
        return Err(Error::cpi(
            "cloud_properties.allowed_address_pairs: the VM has no network to put it on",
        ));
    };
    if net.kind != NetworkType::Manual {
        return Err(Error::cloud(format!(
            "cloud_properties.allowed_address_pairs: network '{name}' is dynamic; VRRP needs a manual network"
        )));
    }
    let check = nets
        .iter()
        .find(|(n, _)| n == name)
        .and_then(|(_, p)| p.vrrp_port_check)
        .unwrap_or(true);
    if check && !network::port_with_ip_exists(session, ip).await? {
        return Err(Error::cloud(format!(
            "cloud_properties.allowed_address_pairs: no port holds the VRRP IP '{ip}' (networks.{name}.cloud_properties.vrrp_port_check)"
        )));
    }
    Ok(name.clone())
}

/// `<director_uuid>-<bosh.group>` with `enable_auto_anti_affinity`, unless
/// the VM names its own group in `scheduler_hints`.
fn auto_group_name(cloud: &OpenStack, props: &VmProps, args: &CreateVm) -> Option<String> {
    if !cloud.opts.enable_auto_anti_affinity
        || props
            .scheduler_hints
            .as_ref()
            .is_some_and(|h| h.contains_key("group"))
    {
        return None;
    }
    let group = args.env.get("bosh")?.get("group")?.as_str()?;
    let director = cloud.ctx.director_uuid.as_deref().unwrap_or("bosh");
    Some(format!("{director}-{group}"))
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

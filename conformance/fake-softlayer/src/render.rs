//! The fake's objects in the REST API's shapes: integers or `null` (never
//! `""`), `iops` and `lunId` as strings, dates in RFC 3339, relational
//! properties listed per type so that masks can leave them out.

use crate::state::{rfc3339, Guest, Outcome, Snapshot, State, Template, Vlan, Volume, ACCOUNT_ID};
use serde_json::{json, Value};

/// Which kind of object an answer holds: its relational properties.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Guest,
    Volume,
    Snapshot,
    Template,
    Vlan,
    Subnet,
    /// Anything else: masks keep what they name, no relational split.
    Plain,
}

impl Kind {
    pub fn relational(self) -> &'static [&'static str] {
        match self {
            Kind::Guest => &[
                "datacenter",
                "powerState",
                "status",
                "activeTransaction",
                "tagReferences",
                "userData",
                "blockDeviceTemplateGroup",
                "primaryBackendNetworkComponent",
                "primaryNetworkComponent",
                "networkVlans",
                "billingItem",
                "dedicatedHost",
                "allowedHost",
                "blockDevices",
            ],
            Kind::Volume => &[
                "billingItem",
                "storageType",
                "allowedVirtualGuests",
                "serviceResource",
                "snapshots",
            ],
            Kind::Snapshot => &["parentVolume"],
            Kind::Template => &["children", "blockDevices", "status", "transaction"],
            Kind::Vlan => &["primaryRouter", "subnets"],
            Kind::Subnet => &["networkVlan"],
            Kind::Plain => &[],
        }
    }
}

pub fn guest(state: &State, g: &Guest) -> Value {
    let dc = state.datacenter(&g.datacenter);
    let (power, status) = if g.provisioned.is_some() {
        (if g.power_on { "RUNNING" } else { "HALTED" }, "ACTIVE")
    } else {
        ("HALTED", "ACTIVE")
    };
    let transaction = if g.provisioned.is_some() {
        Value::Null
    } else {
        let (name, friendly) = match g.outcome {
            Outcome::Fails if g.polls_left == 0 => ("PROVISION_FAILED", "Provisioning failed"),
            _ => ("CLOUD_INSTANCE_PROVISION", "Provisioning the guest"),
        };
        json!({"id": g.transaction_id, "guestId": g.id, "createDate": rfc3339(g.created),
               "transactionStatus": {"name": name, "friendlyName": friendly}})
    };
    let backend_component = json!({
        "id": g.id * 10 + 1, "name": "eth", "port": 0, "maxSpeed": g.max_speed,
        "primaryIpAddress": g.backend_ip, "macAddress": mac(g.id, 0),
        "networkVlan": vlan_ref(state, g.private_vlan),
        "primarySubnet": subnet(state, g.private_vlan)
    });
    let public_component = g.public_vlan.map(|v| {
        json!({"id": g.id * 10 + 2, "name": "eth", "port": 1, "maxSpeed": g.max_speed,
               "primaryIpAddress": g.public_ip, "macAddress": mac(g.id, 1),
               "networkVlan": vlan_ref(state, v), "primarySubnet": subnet(state, v)})
    });
    let block_devices = json!([
        {"id": g.id * 10 + 5, "device": "0", "bootableFlag": 1, "diskImage": {"capacity": 25, "units": "GB"}},
        {"id": g.id * 10 + 7, "device": "2", "bootableFlag": 0, "diskImage": {"capacity": g.ephemeral_gb, "units": "GB"}},
    ]);
    let vlans: Vec<Value> = std::iter::once(g.private_vlan)
        .chain(g.public_vlan)
        .map(|v| vlan_ref(state, v))
        .collect();
    json!({
        "id": g.id,
        "accountId": ACCOUNT_ID,
        "globalIdentifier": g.global_identifier,
        "hostname": g.hostname,
        "domain": g.domain,
        "fullyQualifiedDomainName": format!("{}.{}", g.hostname, g.domain),
        "maxCpu": g.cpus,
        "startCpus": g.cpus,
        "maxMemory": g.memory_mb,
        "hourlyBillingFlag": g.hourly,
        "localDiskFlag": g.local_disk,
        "dedicatedAccountHostOnlyFlag": g.dedicated,
        "privateNetworkOnlyFlag": g.private_only,
        "transientGuestFlag": false,
        "notes": Value::Null,
        "createDate": rfc3339(g.created),
        "modifyDate": rfc3339(g.created),
        "provisionDate": g.provisioned.map(rfc3339),
        "primaryBackendIpAddress": g.backend_ip,
        "primaryIpAddress": g.public_ip,
        "datacenter": dc.map(|d| json!({"id": d.id, "name": d.name, "longName": d.long_name})),
        "powerState": {"keyName": power, "name": power.to_ascii_lowercase()},
        "status": {"keyName": status, "name": "Active"},
        "activeTransaction": transaction,
        "tagReferences": g.tags.iter().enumerate().map(|(i, t)| json!({
            "id": g.id * 100 + i as u64, "resourceTableId": g.id, "tag": {"name": t}
        })).collect::<Vec<_>>(),
        "userData": g.user_data.iter().map(|v| json!({"value": v})).collect::<Vec<_>>(),
        "blockDeviceTemplateGroup": {"globalIdentifier": g.template_gid},
        "primaryBackendNetworkComponent": backend_component,
        "primaryNetworkComponent": public_component,
        "networkVlans": vlans,
        "billingItem": {"id": g.billing_item_id, "recurringFee": "0.1", "hourlyFlag": g.hourly},
        "dedicatedHost": g.dedicated_host_id.map(|id| json!({"id": id})),
        "allowedHost": g.allowed_host.as_ref().map(|h| allowed_host(g.id, h)),
        "blockDevices": block_devices,
    })
}

pub fn allowed_host(guest_id: u64, h: &crate::state::AllowedHost) -> Value {
    json!({
        "id": h.id, "accountId": ACCOUNT_ID, "name": h.name, "credentialId": h.credential_id,
        "resourceTableId": guest_id, "resourceTableName": "VIRTUAL_GUEST",
        "credential": {"id": h.credential_id, "username": h.username, "password": h.password}
    })
}

fn mac(id: u64, port: u64) -> String {
    format!(
        "06:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        (id >> 24) & 0xff,
        (id >> 16) & 0xff,
        (id >> 8) & 0xff,
        id & 0xff,
        port
    )
}

fn vlan_ref(state: &State, id: u64) -> Value {
    match state.vlans.get(&id) {
        Some(v) => json!({"id": v.id, "vlanNumber": v.number, "networkSpace": v.space}),
        None => json!({"id": id}),
    }
}

fn subnet(state: &State, vlan: u64) -> Value {
    match state.vlans.get(&vlan) {
        Some(v) => json!({
            "id": v.subnet_id, "networkIdentifier": format!("{}.0", v.prefix), "cidr": 24,
            "netmask": "255.255.255.0", "gateway": format!("{}.1", v.prefix)
        }),
        None => Value::Null,
    }
}

/// A VLAN's primary subnet as `SoftLayer_Network_Subnet::getObject`
/// answers it, with its VLAN.
pub fn subnet_object(state: &State, v: &Vlan) -> Value {
    let mut s = subnet(state, v.id);
    s["addressSpace"] = json!(v.space);
    s["networkVlanId"] = json!(v.id);
    s["networkVlan"] = json!({"id": v.id, "networkSpace": v.space});
    s
}

pub fn vlan(state: &State, v: &Vlan) -> Value {
    json!({
        "id": v.id,
        "vlanNumber": v.number,
        "networkSpace": v.space,
        "primarySubnetId": v.subnet_id,
        "primaryRouter": {"hostname": format!("bcr01a.{}", v.datacenter),
                          "datacenter": {"name": v.datacenter}},
        "subnets": [subnet(state, v.id)],
    })
}

pub fn template(t: &Template) -> Value {
    json!({
        "id": t.id,
        "accountId": ACCOUNT_ID,
        "name": t.name,
        "globalIdentifier": t.global_identifier,
        "createDate": rfc3339(t.created),
        "parentId": Value::Null,
        "publicFlag": 0,
        "children": [],
        "blockDevices": [],
        "note": t.note,
        "status": template_status(t),
        "transaction": template_transaction(t),
    })
}

/// `ACTIVE` once usable; `CREATE_PENDING` while importing; `DEPRECATED`
/// when the import failed.
fn template_status(t: &Template) -> Value {
    let (key, name) = match (&t.import, t.import_failed) {
        (Some(_), _) => ("CREATE_PENDING", "Create Pending"),
        (None, true) => ("DEPRECATED", "Deprecated"),
        (None, false) => ("ACTIVE", "Active"),
    };
    json!({"keyName": key, "name": name})
}

/// The import's transaction, or `null` when none runs.
pub fn template_transaction(t: &Template) -> Value {
    match &t.import {
        Some(i) => json!({
            "id": i.transaction_id,
            "createDate": rfc3339(t.created),
            "transactionStatus": {"name": "IMAGE_IMPORT", "friendlyName": "Importing image"},
        }),
        None => Value::Null,
    }
}

fn storage_type(v: &Volume) -> &'static str {
    if v.tier.is_some() {
        "ENDURANCE_BLOCK_STORAGE"
    } else {
        "PERFORMANCE_BLOCK_STORAGE"
    }
}

pub fn volume(state: &State, v: &Volume) -> Value {
    let iops = v.iops.or_else(|| {
        v.tier
            .as_deref()
            .map(|t| tier_iops_per_gb(t) * v.capacity_gb)
    });
    json!({
        "id": v.id,
        "accountId": ACCOUNT_ID,
        "username": v.username,
        "capacityGb": v.capacity_gb,
        "iops": iops.map(|i| i.to_string()),
        "provisionedIops": iops.map(|i| i.to_string()),
        "storageTierLevel": v.tier,
        "snapshotCapacityGb": v.snapshot_gb.to_string(),
        "lunId": v.lun_id.to_string(),
        "nasType": "ISCSI",
        "notes": v.notes,
        "createDate": rfc3339(v.created),
        "serviceResourceBackendIpAddress": v.target_ip,
        "serviceResourceName": format!("PerfStor Aggr aggr_staasdal0601_p01 ({})", v.datacenter),
        "activeTransactionCount": 0,
        "bytesUsed": Value::Null,
        "guestId": Value::Null,
        "hardwareId": Value::Null,
        "hostId": Value::Null,
        "billingItem": {"id": v.billing_item_id, "orderItem": {"order": {"id": v.order_id, "containerIdentifier": v.container_identifier}}},
        "storageType": {"keyName": storage_type(v)},
        "serviceResource": {"name": format!("stor-{}", v.datacenter), "datacenter": {"name": v.datacenter}},
        "allowedVirtualGuests": v.allowed_guests.iter().filter_map(|id| state.guests.get(id)).map(|g| json!({
            "id": g.id, "hostname": g.hostname, "domain": g.domain,
            "allowedHost": g.allowed_host.as_ref().map(|h| allowed_host(g.id, h)),
        })).collect::<Vec<_>>(),
        "snapshots": state.snapshots.values().filter(|s| s.volume_id == v.id).map(|s| json!({"id": s.id})).collect::<Vec<_>>(),
    })
}

pub fn snapshot(s: &Snapshot) -> Value {
    json!({
        "id": s.id,
        "notes": s.notes,
        "snapshotCreationTimestamp": rfc3339(s.created),
        "snapshotSizeBytes": "0",
        "parentVolume": {"id": s.volume_id},
    })
}

/// IOPS per GB of an endurance tier (its `keyName`).
pub fn tier_iops_per_gb(tier: &str) -> u64 {
    match tier {
        "LOW_INTENSITY_TIER" => 0, // 0.25 IOPS/GB: rounds down in whole numbers
        "READHEAVY_TIER" => 2,
        "WRITEHEAVY_TIER" => 4,
        "10_IOPS_PER_GB" => 10,
        _ => 0,
    }
}

//! `raw_instance_storage: true`: every instance-store volume of the type
//! handed to the agent unformatted (`disks.raw_ephemeral`), the ephemeral
//! disk then on EBS. The facts are the Ruby CPI's (`block_device_manager.rb`):
//! its table of instance-store volumes per type, its device names, and
//! NVMe instance storage left out of the mappings (EC2 attaches it by itself).

use aws_sdk_ec2::types::BlockDeviceMapping;
use cpi::{Error, Result};
use serde_json::{json, Value};

/// (type, GB per volume, volumes): the Ruby CPI's `DiskInfo` table.
const STORAGE: &[(&str, u32, u32)] = &[
    ("m1.small", 160, 1),
    ("m1.medium", 410, 1),
    ("m1.large", 420, 2),
    ("m1.xlarge", 420, 4),
    ("c1.medium", 350, 1),
    ("c1.xlarge", 420, 4),
    ("cc2.8xlarge", 840, 4),
    ("cg1.4xlarge", 840, 2),
    ("m2.xlarge", 420, 1),
    ("m2.2xlarge", 850, 1),
    ("m2.4xlarge", 840, 2),
    ("cr1.8xlarge", 120, 2),
    ("hi1.4xlarge", 1024, 2),
    ("hs1.8xlarge", 2000, 24),
    ("m3.medium", 4, 1),
    ("m3.large", 32, 1),
    ("m3.xlarge", 40, 2),
    ("m3.2xlarge", 80, 2),
    ("c3.large", 16, 2),
    ("c3.xlarge", 40, 2),
    ("c3.2xlarge", 80, 2),
    ("c3.4xlarge", 160, 2),
    ("c3.8xlarge", 320, 2),
    ("r3.large", 32, 1),
    ("r3.xlarge", 80, 1),
    ("r3.2xlarge", 160, 1),
    ("r3.4xlarge", 320, 1),
    ("r3.8xlarge", 320, 2),
    ("g2.2xlarge", 60, 1),
    ("g2.8xlarge", 120, 2),
    ("i2.xlarge", 800, 1),
    ("i2.2xlarge", 800, 2),
    ("i2.4xlarge", 800, 4),
    ("i2.8xlarge", 800, 8),
    ("i3.large", 475, 1),
    ("i3.xlarge", 950, 1),
    ("i3.2xlarge", 1900, 1),
    ("i3.4xlarge", 1900, 2),
    ("i3.8xlarge", 1900, 4),
    ("i3.16xlarge", 1900, 8),
    ("i3en.large", 1250, 1),
    ("i3en.xlarge", 2500, 1),
    ("i3en.2xlarge", 2500, 2),
    ("i3en.3xlarge", 7500, 1),
    ("i3en.6xlarge", 7500, 2),
    ("i3en.12xlarge", 7500, 4),
    ("i3en.24xlarge", 7500, 8),
    ("i4i.large", 468, 1),
    ("i4i.xlarge", 937, 1),
    ("i4i.2xlarge", 1875, 1),
    ("i4i.4xlarge", 3750, 1),
    ("i4i.8xlarge", 3750, 2),
    ("i4i.16xlarge", 3750, 4),
    ("i4i.32xlarge", 3750, 8),
    ("d2.xlarge", 2000, 3),
    ("d2.2xlarge", 2000, 6),
    ("d2.4xlarge", 2000, 12),
    ("d2.8xlarge", 2000, 24),
    ("x1.16xlarge", 1920, 1),
    ("x1.32xlarge", 1920, 2),
    ("m6id.large", 118, 1),
    ("m6id.xlarge", 237, 1),
    ("m6id.2xlarge", 474, 1),
    ("m6id.4xlarge", 950, 1),
    ("m6id.8xlarge", 1900, 1),
    ("m6id.12xlarge", 1425, 2),
    ("m6id.16xlarge", 1900, 2),
    ("m6id.24xlarge", 1425, 4),
    ("m6id.32xlarge", 1900, 4),
    ("m6idn.large", 118, 1),
    ("m6idn.xlarge", 237, 1),
    ("m6idn.2xlarge", 474, 1),
    ("m6idn.4xlarge", 950, 1),
    ("m6idn.8xlarge", 1900, 1),
    ("m6idn.12xlarge", 1425, 2),
    ("m6idn.16xlarge", 1900, 2),
    ("m6idn.24xlarge", 1425, 4),
    ("m6idn.32xlarge", 1900, 4),
    ("c6id.large", 118, 1),
    ("c6id.xlarge", 237, 1),
    ("c6id.2xlarge", 474, 1),
    ("c6id.4xlarge", 950, 1),
    ("c6id.8xlarge", 1900, 1),
    ("c6id.12xlarge", 1425, 2),
    ("c6id.16xlarge", 1900, 2),
    ("c6id.24xlarge", 1425, 4),
    ("c6id.32xlarge", 1900, 4),
    ("r6id.large", 118, 1),
    ("r6id.xlarge", 237, 1),
    ("r6id.2xlarge", 474, 1),
    ("r6id.4xlarge", 950, 1),
    ("r6id.8xlarge", 1900, 1),
    ("r6id.12xlarge", 1425, 2),
    ("r6id.16xlarge", 1900, 2),
    ("r6id.24xlarge", 1425, 4),
    ("r6id.32xlarge", 1900, 4),
    ("r6idn.large", 118, 1),
    ("r6idn.xlarge", 237, 1),
    ("r6idn.2xlarge", 474, 1),
    ("r6idn.4xlarge", 950, 1),
    ("r6idn.8xlarge", 1900, 1),
    ("r6idn.12xlarge", 1425, 2),
    ("r6idn.16xlarge", 1900, 2),
    ("r6idn.24xlarge", 1425, 4),
    ("r6idn.32xlarge", 1900, 4),
];

/// Families of the table whose instance store is NVMe (the Ruby CPI asks
/// DescribeInstanceTypes for `instance_storage_info.nvme_support`; these
/// are the families it answers "required" or "supported" for).
const NVME_STORE: &[&str] = &[
    "i3", "i3en", "i4i", "m6id", "m6idn", "c6id", "r6id", "r6idn",
];

/// The instance-store volumes of a type: (GB each, how many).
pub fn of(instance_type: &str) -> Option<(u32, u32)> {
    STORAGE
        .iter()
        .find(|(t, _, _)| *t == instance_type)
        .map(|&(_, size, count)| (size, count))
}

/// The raw instance storage of a VM: the mappings to add to RunInstances
/// and what the agent is told (`disks.raw_ephemeral`).
#[derive(Debug, Default, PartialEq)]
pub struct Raw {
    pub mappings: Vec<BlockDeviceMapping>,
    pub agent: Option<Value>,
}

/// `raw_instance_storage` for this VM, refused as the Ruby CPI refuses it:
/// on a type without instance storage, or with
/// `ephemeral_disk.use_instance_storage` (the store cannot be both).
/// Nothing when not asked for, or when the ephemeral disk is the root disk
/// (the Ruby CPI maps neither then).
pub fn plan(
    raw_instance_storage: bool,
    use_instance_storage: bool,
    use_root_disk: bool,
    instance_type: &str,
    virtualization_type: &str,
) -> Result<Raw> {
    if !raw_instance_storage {
        return Ok(Raw::default());
    }
    let Some((_, count)) = of(instance_type) else {
        return Err(Error::cpi(format!(
            "create_vm: cloud_properties.raw_instance_storage requested for instance type \
             '{instance_type}' that does not have instance storage"
        )));
    };
    if use_instance_storage {
        return Err(Error::cpi(
            "create_vm: cloud_properties.ephemeral_disk.use_instance_storage and \
             raw_instance_storage cannot both be true",
        ));
    }
    if use_root_disk {
        return Ok(Raw::default());
    }
    let family = instance_type.split('.').next().unwrap_or("");
    let nvme = NVME_STORE.contains(&family);
    let mut raw = Raw::default();
    let mut paths = Vec::new();
    for i in 0..count {
        let letter = |from: u8| char::from(from + i as u8);
        let path = if nvme {
            // A hint: the agent finds NVMe instance storage itself, by
            // leaving out the EBS volumes; only the count matters.
            format!("/dev/nvme{i}n1")
        } else if virtualization_type == "paravirtual" {
            format!("/dev/sd{}", letter(b'c'))
        } else {
            format!("/dev/xvdb{}", letter(b'a'))
        };
        if !nvme {
            raw.mappings.push(
                BlockDeviceMapping::builder()
                    .device_name(&path)
                    .virtual_name(format!("ephemeral{i}"))
                    .build(),
            );
        }
        paths.push(json!({"path": path}));
    }
    raw.agent = Some(Value::Array(paths));
    Ok(raw)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xen_instance_store_is_mapped_under_the_ruby_cpis_names() {
        let r = plan(true, false, false, "m3.xlarge", "hvm").unwrap();
        let names: Vec<_> = r
            .mappings
            .iter()
            .map(|m| (m.device_name().unwrap(), m.virtual_name().unwrap()))
            .collect();
        assert_eq!(
            names,
            [("/dev/xvdba", "ephemeral0"), ("/dev/xvdbb", "ephemeral1")]
        );
        assert_eq!(
            r.agent,
            Some(json!([{"path": "/dev/xvdba"}, {"path": "/dev/xvdbb"}]))
        );
        let pv = plan(true, false, false, "m1.large", "paravirtual").unwrap();
        assert_eq!(pv.mappings[1].device_name(), Some("/dev/sdd"));
    }

    #[test]
    fn nvme_instance_store_is_only_counted_for_the_agent() {
        let r = plan(true, false, false, "i3.8xlarge", "hvm").unwrap();
        assert!(r.mappings.is_empty());
        assert_eq!(r.agent.unwrap().as_array().unwrap().len(), 4);
    }

    #[test]
    fn refused_as_the_ruby_cpi_refuses_it() {
        let e = plan(true, false, false, "t3.micro", "hvm").unwrap_err();
        assert!(
            e.message().contains("raw_instance_storage"),
            "{}",
            e.message()
        );
        assert!(e.message().contains("'t3.micro'"), "{}", e.message());
        let e = plan(true, true, false, "m3.large", "hvm").unwrap_err();
        assert!(
            e.message().contains("use_instance_storage"),
            "{}",
            e.message()
        );
        assert_eq!(
            plan(false, false, false, "t3.micro", "hvm").unwrap(),
            Raw::default()
        );
        assert_eq!(
            plan(true, false, true, "m3.large", "hvm").unwrap(),
            Raw::default()
        );
    }
}

//! Instance type facts: the cheapest type for `calculate_vm_cloud_properties`,
//! and whether a type exposes EBS volumes as NVMe (Nitro) so that the disk
//! hint is the by-id path rather than the device name.

use aws_sdk_ec2::types::{EbsNvmeSupport, InstanceType, InstanceTypeHypervisor};
use aws_sdk_ec2::Client;
use cpi::Result;

/// (type, vCPUs, MiB, us-east-1 on-demand $/h): current general, compute
/// and memory families; enough to pick a fitting, cheap type.
const TYPES: &[(&str, u32, u64, f64)] = &[
    ("t3.micro", 2, 1024, 0.0104),
    ("t3.small", 2, 2048, 0.0208),
    ("t3.medium", 2, 4096, 0.0416),
    ("t3.large", 2, 8192, 0.0832),
    ("t3.xlarge", 4, 16384, 0.1664),
    ("t3.2xlarge", 8, 32768, 0.3328),
    ("c5.large", 2, 4096, 0.085),
    ("c5.xlarge", 4, 8192, 0.17),
    ("c5.2xlarge", 8, 16384, 0.34),
    ("c5.4xlarge", 16, 32768, 0.68),
    ("c5.9xlarge", 36, 73728, 1.53),
    ("m5.large", 2, 8192, 0.096),
    ("m5.xlarge", 4, 16384, 0.192),
    ("m5.2xlarge", 8, 32768, 0.384),
    ("m5.4xlarge", 16, 65536, 0.768),
    ("m5.8xlarge", 32, 131072, 1.536),
    ("m5.16xlarge", 64, 262144, 3.072),
    ("r5.large", 2, 16384, 0.126),
    ("r5.xlarge", 4, 32768, 0.252),
    ("r5.2xlarge", 8, 65536, 0.504),
    ("r5.4xlarge", 16, 131072, 1.008),
    ("r5.8xlarge", 32, 262144, 2.016),
    ("r5.16xlarge", 64, 524288, 4.032),
];

pub fn cheapest(cpu: u32, ram_mib: u64) -> Option<&'static str> {
    TYPES
        .iter()
        .filter(|(_, c, m, _)| *c >= cpu && *m >= ram_mib)
        .min_by(|a, b| a.3.total_cmp(&b.3))
        .map(|t| t.0)
}

/// Families on the Xen hypervisor: EBS volumes appear under the device name.
const XEN: &[&str] = &[
    "t1", "t2", "m1", "m2", "m3", "m4", "c1", "c3", "c4", "r3", "r4", "i2", "i3", "d2", "x1",
    "x1e", "p2", "p3", "g2", "g3", "g3s", "h1", "f1", "cc2", "cr1", "hs1",
];
/// Families known to be Nitro (NVMe EBS); newer families all are.
const NITRO: &[&str] = &[
    "t3", "t3a", "t4g", "m5", "m5a", "m5n", "m5d", "m6i", "m6a", "m6g", "m7i", "m7a", "m7g", "c5",
    "c5a", "c5n", "c5d", "c6i", "c6a", "c6g", "c7i", "c7a", "c7g", "r5", "r5a", "r5n", "r5d",
    "r6i", "r6a", "r6g", "r7i", "r7a", "r7g", "i3en", "i4i", "z1d", "x2idn", "g4dn", "g5", "p4d",
    "inf1",
];

/// Whether EBS volumes show up as NVMe devices on this type. Known families
/// are answered from the tables; only an unknown one costs a
/// DescribeInstanceTypes call (when the config allows it).
pub async fn uses_nvme(ec2: &Client, instance_type: &str, may_describe: bool) -> Result<bool> {
    let family = instance_type.split('.').next().unwrap_or("");
    if instance_type.ends_with(".metal") || NITRO.contains(&family) {
        return Ok(true);
    }
    if XEN.contains(&family) {
        return Ok(false);
    }
    if !may_describe {
        return Ok(true);
    }
    let out = send!(
        "DescribeInstanceTypes",
        ec2.describe_instance_types()
            .instance_types(InstanceType::from(instance_type))
    )
    .await?;
    let info = out.instance_types().first();
    Ok(match info {
        Some(i) => {
            i.hypervisor() == Some(&InstanceTypeHypervisor::Nitro)
                || i.ebs_info().and_then(|e| e.nvme_support()) == Some(&EbsNvmeSupport::Required)
        }
        None => true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_the_cheapest_fit() {
        assert_eq!(cheapest(1, 512), Some("t3.micro"));
        assert_eq!(cheapest(2, 4096), Some("t3.medium"));
        assert_eq!(cheapest(4, 30000), Some("r5.xlarge"));
        assert_eq!(cheapest(1000, 1), None);
    }
}

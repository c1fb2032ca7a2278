//! The load run's books: what the cloud holds (its inventory) against what
//! the calls returned or the error messages named. Something the cloud
//! holds after the cleanup that was not there before is a leak; something
//! it holds that no call returned and no message named is a duplicate (a
//! blind retry's second volume, a VM a failed create_vm left without
//! saying so): the director can never learn its cid.

use super::lifecycle::Targets;
use crate::environment::Inventory;
use std::collections::BTreeSet;

/// The kinds of things an inventory lists.
pub const KINDS: [&str; 5] = ["vm", "disk", "snapshot", "stemcell", "other"];

/// An inventory as (kind, id) pairs.
pub fn items(inv: &Inventory) -> BTreeSet<(&'static str, String)> {
    let lists: [(&'static str, &Vec<String>); 5] = [
        ("vm", &inv.vms),
        ("disk", &inv.disks),
        ("snapshot", &inv.snapshots),
        ("stemcell", &inv.stemcells),
        ("other", &inv.other),
    ];
    lists
        .into_iter()
        .flat_map(|(k, ids)| ids.iter().map(move |i| (k, i.clone())))
        .collect()
}

/// What `after` holds that `before` did not.
pub fn grown(before: &Inventory, after: &Inventory) -> Vec<(&'static str, String)> {
    let before = items(before);
    items(after)
        .into_iter()
        .filter(|i| !before.contains(i))
        .collect()
}

/// One thing left in the cloud.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Leftover {
    pub kind: &'static str,
    pub id: String,
    /// A call returned its cid or an error message named it.
    pub known: bool,
}

/// What the cloud grew by between `before` and `after`, each marked known
/// or not by `known` (cids the calls returned or messages named).
pub fn leftovers(before: &Inventory, after: &Inventory, known: &BTreeSet<String>) -> Vec<Leftover> {
    grown(before, after)
        .into_iter()
        .map(|(kind, id)| Leftover {
            kind,
            known: known.contains(&id),
            id,
        })
        .collect()
}

/// Duplicates: leftovers of a cid kind (VM, disk, snapshot, stemcell) that
/// nothing returned or named. Ports, mounts and the like are never returned
/// by a call, so they are only ever leaks.
pub fn duplicates(left: &[Leftover]) -> Vec<Leftover> {
    left.iter()
        .filter(|l| !l.known && l.kind != "other")
        .cloned()
        .collect()
}

/// The cids among `named` that the cloud still lists, as cleanup targets
/// (VMs, disks, snapshots), leaving out `keep` (the shared stemcell).
pub fn named_targets(named: &BTreeSet<String>, inv: &Inventory, keep: &[String]) -> Targets {
    let pick = |ids: &Vec<String>| -> Vec<String> {
        ids.iter()
            .filter(|i| named.contains(*i) && !keep.contains(i))
            .cloned()
            .collect()
    };
    Targets {
        snapshots: pick(&inv.snapshots),
        attachments: Vec::new(),
        vms: pick(&inv.vms),
        disks: pick(&inv.disks),
    }
}

/// Counts of leftovers by kind, for the report: `vm 2, other 1`.
pub fn by_kind(left: &[Leftover]) -> Vec<(&'static str, usize)> {
    KINDS
        .iter()
        .map(|k| (*k, left.iter().filter(|l| l.kind == *k).count()))
        .filter(|(_, n)| *n > 0)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inv(vms: &[&str], disks: &[&str], snaps: &[&str], other: &[&str]) -> Inventory {
        let v = |s: &[&str]| s.iter().map(|x| x.to_string()).collect();
        Inventory {
            vms: v(vms),
            disks: v(disks),
            snapshots: v(snaps),
            stemcells: v(&["img-base"]),
            other: v(other),
        }
    }

    fn set(s: &[&str]) -> BTreeSet<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn leaks_are_growth_and_duplicates_are_growth_nobody_named() {
        let before = inv(&["vm-old"], &[], &[], &["port:p0"]);
        let after = inv(
            &["vm-old", "vm-1"],
            &["disk-1", "disk-2"],
            &["snap-9"],
            &["port:p0", "port:p1"],
        );
        // vm-1 and disk-1 were returned; disk-2 and snap-9 never were.
        let left = leftovers(&before, &after, &set(&["vm-1", "disk-1", "vm-gone"]));
        assert_eq!(left.len(), 5);
        assert_eq!(
            by_kind(&left),
            vec![("vm", 1), ("disk", 2), ("snapshot", 1), ("other", 1)]
        );
        let dups: Vec<String> = duplicates(&left).into_iter().map(|l| l.id).collect();
        assert_eq!(dups, ["disk-2", "snap-9"]);
        // Nothing grown, nothing left, whatever the calls returned.
        assert!(leftovers(&after, &after, &set(&[])).is_empty());
    }

    #[test]
    fn a_thing_that_was_there_before_is_not_a_leak_even_if_deleted_and_remade() {
        let before = inv(&["vm-a"], &["disk-a"], &[], &[]);
        let after = inv(&["vm-a"], &[], &[], &[]);
        assert!(leftovers(&before, &after, &set(&[])).is_empty());
    }

    #[test]
    fn named_cids_become_targets_by_the_kind_the_cloud_lists_them_as() {
        let now = inv(&["vm-1", "vm-2"], &["disk-1"], &["snap-1"], &[]);
        let named = set(&["vm-2", "disk-1", "snap-1", "img-base", "vm-deleted"]);
        let t = named_targets(&named, &now, &["img-base".to_string()]);
        assert_eq!(t.vms, ["vm-2"]);
        assert_eq!(t.disks, ["disk-1"]);
        assert_eq!(t.snapshots, ["snap-1"]);
        assert!(t.attachments.is_empty());
    }
}

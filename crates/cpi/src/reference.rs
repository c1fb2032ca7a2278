//! The shape of a CPI's reference (the `cpi.json` keys, the incumbent job's
//! properties and where each goes, the `cloud_properties` keys) and its
//! rendering into the README's tables. Each cloud keeps its own tables in
//! its `reference.rs`; its tests check the README with [`check_readme`].

use serde_json::Value;
use std::collections::BTreeSet;

/// One key: its path, type, default, meaning, and what the CPI does with it.
pub struct Key {
    pub key: &'static str,
    pub kind: &'static str,
    pub default: &'static str,
    pub meaning: &'static str,
    pub status: &'static str,
}

/// A [`Key`], in the order of its table's columns.
pub const fn key(
    key: &'static str,
    kind: &'static str,
    default: &'static str,
    meaning: &'static str,
    status: &'static str,
) -> Key {
    Key {
        key,
        kind,
        default,
        meaning,
        status,
    }
}

/// Where one property of the incumbent's job spec goes.
pub struct JobProperty {
    pub property: &'static str,
    pub default: &'static str,
    pub goes_to: &'static str,
}

/// A cloud's whole reference, as its README shows it.
pub struct Reference<'a> {
    /// The first table's heading: "`cpi.json`".
    pub config_heading: &'a str,
    pub config: &'a [Key],
    /// The incumbent's job spec: "`jobs/aws_cpi/spec`".
    pub job_spec: &'a str,
    /// The incumbent's repository: "cloudfoundry/bosh-aws-cpi-release".
    pub incumbent: &'a str,
    /// The incumbent's commit the job table was read at (shown to 12 digits).
    pub incumbent_commit: &'a str,
    pub job: &'a [JobProperty],
    pub vm_cloud_properties: &'a [Key],
    /// Disk, network and stemcell `cloud_properties`.
    pub other_cloud_properties: &'a [Key],
}

impl Reference<'_> {
    /// The README's reference section, between its markers.
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        out.push_str(&format!("### {}\n\n", self.config_heading));
        out.push_str(&table(self.config));
        out.push_str(&format!(
            "\n### The incumbent job's properties\n\nEvery property of {} in {} at `{}`, and where it goes.\n\n| property | default | goes to |\n|---|---|---|\n",
            self.job_spec,
            self.incumbent,
            &self.incumbent_commit[..12]
        ));
        for p in self.job {
            out.push_str(&format!(
                "| `{}` | {} | {} |\n",
                p.property, p.default, p.goes_to
            ));
        }
        out.push_str("\n### VM `cloud_properties`\n\n");
        out.push_str(&table(self.vm_cloud_properties));
        out.push_str("\n### Disk, network and stemcell `cloud_properties`\n\n");
        out.push_str(&table(self.other_cloud_properties));
        out
    }
}

/// One table of keys, in Markdown.
pub fn table(rows: &[Key]) -> String {
    let mut out =
        String::from("| key | type | default | meaning | status |\n|---|---|---|---|---|\n");
    for r in rows {
        out.push_str(&format!(
            "| `{}` | {} | {} | {} | {} |\n",
            r.key, r.kind, r.default, r.meaning, r.status
        ));
    }
    out
}

const BEGIN: &str = "<!-- reference: generated from src/reference.rs, checked by its tests -->\n";
const END: &str = "<!-- /reference -->";

/// Panics unless the README at `path` shows `want` between its reference
/// markers; with `UPDATE_README` set, rewrites that section instead.
/// `package` names the crate in the message that says how to update it.
pub fn check_readme(path: &str, want: &str, package: &str) {
    let readme = std::fs::read_to_string(path).unwrap_or_default();
    let (Some(a), Some(b)) = (readme.find(BEGIN), readme.find(END)) else {
        panic!("README.md has no reference markers");
    };
    let got = &readme[a + BEGIN.len()..b];
    if got != want {
        if std::env::var_os("UPDATE_README").is_some() {
            let new = format!("{}{BEGIN}{want}{}", &readme[..a], &readme[b..]);
            std::fs::write(path, new).unwrap();
            return;
        }
        panic!("README.md's reference is stale: run `UPDATE_README=1 cargo test -p {package} reference`");
    }
}

/// The dotted paths of a JSON object's leaves, into `out`; the paths in
/// `leaves` count as leaves even when they hold an object.
pub fn leaf_paths(v: &Value, prefix: &str, leaves: &[&str], out: &mut BTreeSet<String>) {
    match v.as_object() {
        Some(m) if !leaves.contains(&prefix) => {
            for (k, v) in m {
                let p = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                leaf_paths(v, &p, leaves, out);
            }
        }
        _ => {
            out.insert(prefix.to_owned());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROWS: &[Key] = &[key(
        "a.b",
        "string",
        "none",
        "What a | b is.",
        "implemented",
    )];
    const JOB: &[JobProperty] = &[JobProperty {
        property: "x_cpi.a.b",
        default: "none",
        goes_to: "`a.b`",
    }];

    #[test]
    fn renders_every_table_in_order() {
        let r = Reference {
            config_heading: "`cpi.json`",
            config: ROWS,
            job_spec: "`jobs/x_cpi/spec`",
            incumbent: "example/x-cpi-release",
            incumbent_commit: "0123456789abcdef",
            job: JOB,
            vm_cloud_properties: &[],
            other_cloud_properties: ROWS,
        };
        let md = r.markdown();
        let head = "| key | type | default | meaning | status |\n|---|---|---|---|---|\n";
        let row = "| `a.b` | string | none | What a | b is. | implemented |\n";
        assert_eq!(
            md,
            format!(
                "### `cpi.json`\n\n{head}{row}\n### The incumbent job's properties\n\n\
                 Every property of `jobs/x_cpi/spec` in example/x-cpi-release at `0123456789ab`, and where it goes.\n\n\
                 | property | default | goes to |\n|---|---|---|\n| `x_cpi.a.b` | none | `a.b` |\n\
                 \n### VM `cloud_properties`\n\n{head}\
                 \n### Disk, network and stemcell `cloud_properties`\n\n{head}{row}"
            )
        );
    }

    #[test]
    fn leaf_paths_stop_at_the_leaves_given() {
        let v = serde_json::json!({"a": {"b": 1, "c": {"d": 2}}, "e": []});
        let mut out = BTreeSet::new();
        leaf_paths(&v, "", &["a.c"], &mut out);
        let want: BTreeSet<String> = ["a.b", "a.c", "e"].map(String::from).into();
        assert_eq!(out, want);
    }
}

//! The job specs against the incumbents' facts, and the release layout.

use release_render::{read_yaml, render, JOBS};
use serde_json::json;
use serde_yaml_ng::Value;

fn props(v: &Value) -> &serde_yaml_ng::Mapping {
    v["properties"].as_mapping().expect("properties")
}

#[test]
fn each_job_spec_declares_the_incumbents_properties_and_defaults() {
    for job in JOBS {
        let facts = read_yaml(&job.release_dir().join("incumbent.yml"));
        let spec = job.spec();
        assert_eq!(
            facts["job"].as_str(),
            Some(job.job),
            "{}: job name",
            job.release
        );
        assert_eq!(
            spec["name"].as_str(),
            Some(job.job),
            "{}: spec name",
            job.release
        );
        assert!(
            facts["commit"].as_str().is_some_and(|c| c.len() == 40),
            "{}: incumbent.yml names the commit read",
            job.release
        );
        let (theirs, ours) = (props(&facts), props(&spec));
        let names = |m: &serde_yaml_ng::Mapping| {
            m.keys()
                .map(|k| k.as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        };
        let missing: Vec<_> = names(theirs)
            .into_iter()
            .filter(|n| !ours.contains_key(n.as_str()))
            .collect();
        let extra: Vec<_> = names(ours)
            .into_iter()
            .filter(|n| !theirs.contains_key(n.as_str()))
            .collect();
        assert!(
            missing.is_empty() && extra.is_empty(),
            "{}: missing {missing:?}, not in the incumbent {extra:?}",
            job.job
        );
        for (name, fact) in theirs {
            let name = name.as_str().unwrap();
            let mine = &ours[name];
            let has = |v: &Value| v.as_mapping().is_some_and(|m| m.contains_key("default"));
            assert_eq!(
                has(fact),
                has(mine),
                "{}: {name}: a default in one spec only",
                job.job
            );
            assert_eq!(
                fact["default"], mine["default"],
                "{}: {name}: default",
                job.job
            );
            assert!(
                mine["description"].as_str().is_some_and(|d| !d.is_empty()),
                "{}: {name}: no description",
                job.job
            );
        }
        assert_eq!(theirs.len(), ours.len());
    }
}

#[test]
fn each_release_names_its_templates_and_packages_and_compiles_nothing() {
    for job in JOBS {
        let dir = job.release_dir();
        let final_yml = read_yaml(&dir.join("config/final.yml"));
        assert_eq!(final_yml["final_name"].as_str(), Some(job.release));
        let spec = job.spec();
        let templates = spec["templates"].as_mapping().expect("templates");
        let on_disk: Vec<String> = std::fs::read_dir(job.job_dir().join("templates"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        for name in &on_disk {
            assert!(
                templates.contains_key(name.as_str()),
                "{}: template {name} not in spec",
                job.job
            );
        }
        assert_eq!(
            on_disk.len(),
            templates.len(),
            "{}: a spec template is missing",
            job.job
        );
        assert!(job.job_dir().join("monit").is_file());
        assert_eq!(
            templates.get("cpi.erb").and_then(Value::as_str),
            Some("bin/cpi")
        );
        assert_eq!(
            templates.get("cpi.json.erb").and_then(Value::as_str),
            Some("config/cpi.json")
        );
        assert_eq!(spec["packages"][0].as_str(), Some(job.package));
        let pkg = dir.join("packages").join(job.package);
        let pkg_spec = read_yaml(&pkg.join("spec"));
        assert_eq!(pkg_spec["name"].as_str(), Some(job.package));
        let blob = format!("{}/cpi-linux-amd64", job.binary);
        assert_eq!(pkg_spec["files"][0].as_str(), Some(blob.as_str()));
        let packaging = std::fs::read_to_string(pkg.join("packaging")).unwrap();
        assert!(packaging.contains(&format!("cp {blob} \"${{BOSH_INSTALL_TARGET}}/bin/cpi\"")));
        for tool in [
            "curl", "wget", "cargo", "go build", "gcc", "make", "apt-get",
        ] {
            assert!(
                !packaging.contains(tool),
                "{}: packaging runs {tool}",
                job.package
            );
        }
    }
}

#[test]
fn the_renderer_fails_naming_a_missing_required_property() {
    let cases = [
        (
            &release_render::AWS,
            json!({"aws": {"access_key_id": "k", "secret_access_key": "s", "region": "us-east-1"}}),
            "aws.default_security_groups",
        ),
        (
            &release_render::AWS,
            json!({"aws": {"access_key_id": "k", "secret_access_key": "s", "default_security_groups": ["g"]}}),
            "aws.region",
        ),
        (
            &release_render::OPENSTACK,
            json!({"openstack": {"default_key_name": "k", "default_security_groups": ["g"]}}),
            "openstack.auth_url",
        ),
        (
            &release_render::SOFTLAYER,
            json!({"registry": {"username": "u", "password": "p"}}),
            "softlayer.username",
        ),
        (
            &release_render::WARDEN,
            json!({"warden_cpi": {"warden": {"connect_network": "tcp", "connect_address": "127.0.0.1:7777"}}}),
            "warden_cpi.agent.mbus",
        ),
        (
            &release_render::WARDEN,
            json!({"warden_cpi": {"agent": {"mbus": "nats://x"}, "warden": {"connect_network": "tcp"}}}),
            "warden_cpi.warden.connect_address",
        ),
    ];
    for (job, properties, name) in cases {
        let e = match render(job, &json!({"properties": properties})) {
            Ok(_) => panic!("{}: rendered without {name}", job.job),
            Err(e) => e,
        };
        assert!(
            e.contains(&format!("Can't find property '{name}'")),
            "{}: {e}",
            job.job
        );
        assert!(e.contains("Error filling in template"), "{e}");
    }
}

#[test]
fn the_renderer_drops_undeclared_properties_as_bosh_does_and_says_so() {
    let r = render(
        &release_render::WARDEN,
        &json!({"properties": {"warden_cpi": {"agent": {"mbus": "nats://m"}, "colour": "red",
            "warden": {"connect_network": "tcp", "connect_address": "127.0.0.1:7777"}}}}),
    )
    .unwrap();
    assert!(!r.file("config/cpi.json").contains("red"));
    assert!(
        r.warnings.contains("'warden_cpi.colour' is not declared"),
        "{}",
        r.warnings
    );
}

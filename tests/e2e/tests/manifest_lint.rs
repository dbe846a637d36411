//! spin.toml is the security topology; these rules keep it tight.

use spin_test_host::{Manifest, Route};

fn manifest() -> Manifest {
    Manifest::load(&e2e::repo_root().join("spin.toml")).expect("spin.toml parses")
}

/// The application variables a component variable's template names
/// (`"Endpoint={{ auditapiurl }};Key={{ auditapikey }}"` names two).
fn references(template: &str) -> Vec<&str> {
    template
        .split("{{")
        .skip(1)
        .filter_map(|part| Some(part.split_once("}}")?.0.trim()))
        .collect()
}

#[test]
fn every_variable_name_can_be_a_key_vault_secret_name() {
    // Key Vault allows letters, digits and dashes; Spin lowercase letters,
    // digits and underscores: only lowercase letters and digits fit both.
    for name in manifest().variables.keys() {
        assert!(
            !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()),
            "{name} is not Key Vault compatible"
        );
    }
}

#[test]
fn every_secret_is_required_and_has_no_default() {
    let m = manifest();
    let secrets: Vec<_> = m.variables.iter().filter(|(_, d)| d.secret).collect();
    assert!(secrets.len() >= 9, "the app's keys are declared secret");
    for (name, decl) in secrets {
        assert!(decl.required, "{name} is secret but not required");
        assert!(decl.default.is_none(), "{name} is secret but has a default");
    }
}

#[test]
fn only_the_gateway_and_the_portal_are_public() {
    let m = manifest();
    for id in m.components.keys() {
        let public = id == "gateway" || id == "portal";
        assert_eq!(m.is_private(id), !public, "{id}");
    }
    let mut public: Vec<_> = m
        .triggers
        .iter()
        .filter(|t| t.route != Route::Private)
        .map(|t| (t.route.clone(), t.component.as_str()))
        .collect();
    public.sort_by(|a, b| a.1.cmp(b.1));
    assert_eq!(
        public,
        vec![
            (Route::Public("/...".into()), "gateway"),
            (Route::Public("/portal/...".into()), "portal"),
        ]
    );
    // The portal serves static files: it calls nothing and reads nothing.
    let portal = &m.components["portal"];
    assert!(portal.allowed_outbound_hosts.is_empty());
    assert!(portal.variables.is_empty());
    assert!(portal.key_value_stores.is_empty() && portal.sqlite_databases.is_empty());
}

#[test]
fn no_component_has_a_wildcard_outbound_host() {
    for (id, c) in manifest().components {
        for entry in &c.allowed_outbound_hosts {
            let expanded = if entry.contains("{{") {
                "http://placeholder.example".to_string()
            } else {
                entry.clone()
            };
            let parsed = spin_test_host::AllowedHost::parse(&expanded).expect("valid entry");
            assert!(!parsed.is_wildcard(), "{id}: {entry}");
            assert!(!entry.contains('*'), "{id}: {entry}");
        }
    }
}

#[test]
fn components_map_only_declared_variables_and_no_component_maps_another_services_keys() {
    let m = manifest();
    for (id, c) in &m.components {
        for (name, template) in &c.variables {
            let referenced = references(template);
            assert!(!referenced.is_empty(), "{id}.{name} refers to nothing");
            for variable in referenced {
                assert!(
                    m.variables.contains_key(variable),
                    "{id}.{name} refers to {variable}"
                );
            }
        }
    }
    let forbidden = [
        ("gateway", "cosmoskey"),
        ("gateway", "patientapiprimarykey"),
        ("gateway", "auditapiprimarykey"),
        // The gateway's one backend is patient-api, which relays audit reads.
        ("gateway", "auditapikey"),
        ("gateway", "auditapiurl"),
        ("docstore", "subscriptions"),
        ("audit-api", "patientapikey"),
        ("audit-api", "subscriptions"),
        ("patient-api", "subscriptions"),
        ("patient-api", "auditapiprimarykey"),
    ];
    for (id, variable) in forbidden {
        assert!(
            !m.components[id]
                .variables
                .values()
                .any(|t| t.contains(variable)),
            "{id} must not see {variable}"
        );
    }
}

/// Each component of a manifest and the outbound entries it must have.
type Expected = &'static [(&'static str, &'static [&'static str])];

/// What each component of each manifest may call, exactly: the composed
/// spin.toml and the split deployment's three apps (split/*.toml).
const OUTBOUND: &[(&str, Expected)] = &[
    (
        "spin.toml",
        &[
            ("gateway", &["{{ patientapiurl }}"]),
            (
                "patient-api",
                &["{{ auditapiurl }}", "{{ cosmosendpoint }}"],
            ),
            ("audit-api", &["{{ cosmosendpoint }}"]),
            ("docstore", &[]),
            ("portal", &[]),
        ],
    ),
    (
        "split/gateway.toml",
        &[("gateway", &["{{ patientapiurl }}"]), ("portal", &[])],
    ),
    (
        "split/patient-api.toml",
        &[(
            "patient-api",
            &["{{ auditapiurl }}", "{{ cosmosendpoint }}"],
        )],
    ),
    (
        "split/audit-api.toml",
        &[("audit-api", &["{{ cosmosendpoint }}"])],
    ),
];

/// Every way `m`'s outbound hosts differ from `expected` (components
/// included): an extra, a missing or an unexpected component.
fn outbound_violations(m: &Manifest, expected: Expected) -> Vec<String> {
    let mut violations = Vec::new();
    for (id, c) in &m.components {
        let Some((_, allowed)) = expected.iter().find(|(e, _)| e == id) else {
            violations.push(format!("{id}: a component the lint does not know"));
            continue;
        };
        for entry in &c.allowed_outbound_hosts {
            if !allowed.contains(&entry.as_str()) {
                violations.push(format!("{id}: may not call {entry}"));
            }
        }
        for entry in *allowed {
            if !c.allowed_outbound_hosts.iter().any(|e| e == entry) {
                violations.push(format!("{id}: {entry} is missing"));
            }
        }
    }
    violations
}

#[test]
fn every_manifest_lets_each_component_call_exactly_its_next_hop() {
    for (file, expected) in OUTBOUND {
        let m = Manifest::load(&e2e::repo_root().join(file)).expect("manifest parses");
        assert_eq!(
            outbound_violations(&m, expected),
            Vec::<String>::new(),
            "{file}"
        );
    }
}

#[test]
fn a_manifest_with_one_extra_outbound_url_fails_the_lint() {
    let root = e2e::repo_root();
    let text = std::fs::read_to_string(root.join("split/gateway.toml")).unwrap();
    let widened = text.replace(
        "allowed_outbound_hosts = [\"{{ patientapiurl }}\"]",
        "allowed_outbound_hosts = [\"{{ patientapiurl }}\", \"https://audit-api.internal:443\"]",
    );
    assert_ne!(widened, text, "the copy must differ");
    let m = Manifest::parse(&widened, &root.join("split")).unwrap();
    assert_eq!(
        outbound_violations(&m, OUTBOUND[1].1),
        vec!["gateway: may not call https://audit-api.internal:443".to_string()]
    );
}

#[test]
fn split_apps_have_no_service_chaining_and_no_hop_default() {
    for file in [
        "split/gateway.toml",
        "split/patient-api.toml",
        "split/audit-api.toml",
    ] {
        let m = Manifest::load(&e2e::repo_root().join(file)).unwrap();
        for (id, c) in &m.components {
            assert!(
                !c.allowed_outbound_hosts
                    .iter()
                    .any(|h| h.contains("spin.internal")),
                "{file}: {id} chains"
            );
        }
        for url in ["patientapiurl", "auditapiurl", "cosmosendpoint"] {
            if let Some(decl) = m.variables.get(url) {
                assert!(
                    decl.required && decl.default.is_none(),
                    "{file}: {url} has a default"
                );
            }
        }
    }
}

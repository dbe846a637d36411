//! Spin's HTTP route matching and the `spin-*` request headers.

use crate::manifest::{Manifest, Route};

/// A public route pattern: exact (`/health`) or wildcard (`/api/...`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoutePattern {
    raw: String,
    base: String,
    wildcard: bool,
}

/// What Spin tells a component about how a request matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteMatch {
    pub component: String,
    pub matched_route: String,
    pub component_route: String,
    pub path_info: String,
}

impl RoutePattern {
    pub fn parse(raw: &str) -> Self {
        let (base, wildcard) = match raw.strip_suffix("/...") {
            Some(base) => (base.to_string(), true),
            None => (raw.trim_end_matches('/').to_string(), false),
        };
        Self {
            raw: raw.to_string(),
            base,
            wildcard,
        }
    }

    fn matches(&self, path: &str) -> Option<String> {
        if self.wildcard {
            if path == self.base {
                return Some(String::new());
            }
            let rest = path.strip_prefix(&self.base)?;
            rest.starts_with('/').then(|| rest.to_string())
        } else {
            (path.trim_end_matches('/') == self.base).then(String::new)
        }
    }

    /// Exact routes win over wildcards; longer bases win over shorter ones.
    fn specificity(&self) -> (bool, usize) {
        (!self.wildcard, self.base.len())
    }
}

pub struct Router {
    routes: Vec<(RoutePattern, String)>,
}

impl Router {
    pub fn new(manifest: &Manifest) -> Self {
        let mut routes: Vec<(RoutePattern, String)> = manifest
            .triggers
            .iter()
            .filter_map(|t| match &t.route {
                Route::Public(r) => Some((RoutePattern::parse(r), t.component.clone())),
                Route::Private => None,
            })
            .collect();
        routes.sort_by_key(|(p, _)| std::cmp::Reverse(p.specificity()));
        Self { routes }
    }

    /// The component a public request goes to; private components never match.
    pub fn route(&self, path: &str) -> Option<RouteMatch> {
        self.routes.iter().find_map(|(pattern, component)| {
            pattern.matches(path).map(|path_info| RouteMatch {
                component: component.clone(),
                matched_route: pattern.raw.clone(),
                component_route: pattern.base.clone(),
                path_info: if path_info.is_empty() && pattern.wildcard {
                    String::new()
                } else if pattern.wildcard {
                    path_info
                } else {
                    String::new()
                },
            })
        })
    }

    pub fn public_routes(&self) -> Vec<(String, String)> {
        self.routes
            .iter()
            .map(|(p, c)| (p.raw.clone(), c.clone()))
            .collect()
    }
}

/// The `spin-*` headers for a request, in the order Spin sets them.
pub fn spin_headers(
    full_url: &str,
    route: &RouteMatch,
    client_addr: &str,
) -> Vec<(&'static str, String)> {
    vec![
        ("spin-full-url", full_url.to_string()),
        ("spin-path-info", route.path_info.clone()),
        ("spin-matched-route", route.matched_route.clone()),
        ("spin-raw-component-route", route.matched_route.clone()),
        ("spin-component-route", route.component_route.clone()),
        ("spin-base-path", "/".to_string()),
        ("spin-client-addr", client_addr.to_string()),
    ]
}

/// How a chained (`*.spin.internal`) request appears to the callee: as if
/// routed by `/...` (what Spin was observed to send, docs/architecture.md).
pub fn chained_match(component: &str, path: &str) -> RouteMatch {
    RouteMatch {
        component: component.to_string(),
        matched_route: "/...".to_string(),
        component_route: String::new(),
        path_info: path.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn router(toml_routes: &str) -> Router {
        let text = format!(
            "spin_manifest_version = 2\n[application]\nname = \"t\"\n{toml_routes}\n\
             [component.a]\nsource = \"a.wasm\"\n[component.b]\nsource = \"b.wasm\"\n[component.p]\nsource = \"p.wasm\"\n"
        );
        Router::new(&Manifest::parse(&text, std::path::Path::new(".")).unwrap())
    }

    #[test]
    fn catch_all_matches_everything_with_spins_metadata() {
        let r = router("[[trigger.http]]\nroute = \"/...\"\ncomponent = \"a\"\n[[trigger.http]]\nroute = { private = true }\ncomponent = \"p\"");
        let m = r.route("/some/where").unwrap();
        assert_eq!(m.component, "a");
        assert_eq!(m.path_info, "/some/where");
        assert_eq!(m.matched_route, "/...");
        assert_eq!(m.component_route, "");
        assert_eq!(
            r.public_routes().len(),
            1,
            "private components have no route"
        );
    }

    #[test]
    fn exact_beats_wildcard_and_unmatched_is_none() {
        let r = router("[[trigger.http]]\nroute = \"/api/...\"\ncomponent = \"a\"\n[[trigger.http]]\nroute = \"/api/health\"\ncomponent = \"b\"");
        assert_eq!(r.route("/api/health").unwrap().component, "b");
        assert_eq!(r.route("/api/x").unwrap().path_info, "/x");
        assert!(r.route("/apix").is_none());
        assert!(r.route("/other").is_none());
    }
}

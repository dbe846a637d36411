//! The public route table: which routes exist and which scope each needs.
//! Every protected route is forwarded to patient-api, which relays the
//! audit reads to audit-api: the gateway has one backend, so in a split
//! deployment it may reach patient-api and nothing else.
//!
//! Paths are matched exactly and case-sensitively, segment by segment:
//! - a trailing slash is a different path and is answered 404 (`/patient/`
//!   is not `/patient`), as are empty segments (`//`);
//! - an id segment (`{patientId}`, `{testId}`) is 1–64 characters of
//!   `[A-Za-z0-9_-]` (a GUID fits). Anything else, percent-encodings and dot
//!   segments included, cannot name a resource and is 404 at the gateway, so
//!   such paths never reach a backend. Whether an id is a GUID is the
//!   backend's business (it answers 404 too, per the contract);
//! - `/patient/search` is a literal route, never a patient id: `GET
//!   /patient/search` is 405 with `Allow: POST`.
//!
//! `path` is the path alone, without the query string.

use crate::scope::Scope;

/// Routes that need no credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PublicRoute {
    /// `GET /health`: liveness, reveals nothing.
    Health,
}

/// The operation of a protected route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteKind {
    CreatePatient,
    ReadPatient,
    UpdatePatient,
    SearchPatients,
    CreateTest,
    ListTests,
    ReadTest,
    ListAuditRecords,
    VerifyAuditChain,
}

impl RouteKind {
    pub const fn scope(self) -> Scope {
        use RouteKind::*;
        match self {
            ReadPatient | SearchPatients | ListTests | ReadTest => Scope::PatientsRead,
            CreatePatient | UpdatePatient | CreateTest => Scope::PatientsWrite,
            ListAuditRecords | VerifyAuditChain => Scope::AuditRead,
        }
    }

    /// The route template (for logs: it contains no ids).
    pub const fn template(self) -> &'static str {
        use RouteKind::*;
        match self {
            CreatePatient => "/patient",
            ReadPatient | UpdatePatient => "/patient/{patientId}",
            SearchPatients => "/patient/search",
            CreateTest | ListTests => "/patient/{patientId}/tests",
            ReadTest => "/patient/{patientId}/tests/{testId}",
            ListAuditRecords => "/audit/records",
            VerifyAuditChain => "/audit/verify",
        }
    }
}

/// What a route table row leads to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteTarget {
    Health,
    HealthReady,
    OpenApi,
    Protected(RouteKind),
}

/// One row of the route table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteSpec {
    pub method: &'static str,
    /// OpenAPI-style template, e.g. `/patient/{patientId}/tests`.
    pub path_template: &'static str,
    /// The scope required; `None` for routes without client credentials.
    pub scope: Option<Scope>,
    pub target: RouteTarget,
}

const fn protected(method: &'static str, kind: RouteKind) -> RouteSpec {
    RouteSpec {
        method,
        path_template: kind.template(),
        scope: Some(kind.scope()),
        target: RouteTarget::Protected(kind),
    }
}

const fn open(method: &'static str, path_template: &'static str, target: RouteTarget) -> RouteSpec {
    RouteSpec {
        method,
        path_template,
        scope: None,
        target,
    }
}

/// Every public route, as data (compared with the OpenAPI document in tests).
pub static ROUTES: &[RouteSpec] = &[
    open("GET", "/health", RouteTarget::Health),
    open("GET", "/health/ready", RouteTarget::HealthReady),
    open("GET", "/openapi.json", RouteTarget::OpenApi),
    protected("POST", RouteKind::CreatePatient),
    protected("GET", RouteKind::ReadPatient),
    protected("PUT", RouteKind::UpdatePatient),
    protected("POST", RouteKind::SearchPatients),
    protected("POST", RouteKind::CreateTest),
    protected("GET", RouteKind::ListTests),
    protected("GET", RouteKind::ReadTest),
    protected("GET", RouteKind::ListAuditRecords),
    protected("GET", RouteKind::VerifyAuditChain),
];

/// Path templates in match order (literal `/patient/search` before
/// `/patient/{patientId}`) with their `Allow` lists. A test keeps the lists
/// equal to [`ROUTES`].
static PATHS: &[(&str, &[&str])] = &[
    ("/health", &["GET"]),
    ("/health/ready", &["GET"]),
    ("/openapi.json", &["GET"]),
    ("/patient", &["POST"]),
    ("/patient/search", &["POST"]),
    ("/patient/{patientId}", &["GET", "PUT"]),
    ("/patient/{patientId}/tests", &["GET", "POST"]),
    ("/patient/{patientId}/tests/{testId}", &["GET"]),
    ("/audit/records", &["GET"]),
    ("/audit/verify", &["GET"]),
];

/// Longest accepted id segment.
pub const MAX_ID_SEGMENT_LEN: usize = 64;

/// The outcome of routing one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteMatch {
    Public(PublicRoute),
    /// `GET /health/ready`: needs the health key, not client credentials.
    HealthReady,
    /// `GET /openapi.json`: the public contract, served without credentials.
    OpenApi,
    Protected {
        scope: Scope,
        kind: RouteKind,
    },
    /// The path exists but not with this method: 405 with `Allow`.
    MethodNotAllowed {
        allow: &'static [&'static str],
    },
    NotFound,
}

impl RouteMatch {
    /// The matched route's template, for logs; `None` for 404 and 405.
    pub fn template(&self) -> Option<&'static str> {
        match self {
            RouteMatch::Public(PublicRoute::Health) => Some("/health"),
            RouteMatch::HealthReady => Some("/health/ready"),
            RouteMatch::OpenApi => Some("/openapi.json"),
            RouteMatch::Protected { kind, .. } => Some(kind.template()),
            RouteMatch::MethodNotAllowed { .. } | RouteMatch::NotFound => None,
        }
    }
}

/// Routes a request by method and path.
pub fn route(method: &str, path: &str) -> RouteMatch {
    let Some(&(template, allow)) = PATHS
        .iter()
        .find(|(template, _)| matches_template(template, path))
    else {
        return RouteMatch::NotFound;
    };
    let spec = ROUTES
        .iter()
        .find(|spec| spec.path_template == template && spec.method == method);
    match spec.map(|spec| spec.target) {
        None => RouteMatch::MethodNotAllowed { allow },
        Some(RouteTarget::Health) => RouteMatch::Public(PublicRoute::Health),
        Some(RouteTarget::HealthReady) => RouteMatch::HealthReady,
        Some(RouteTarget::OpenApi) => RouteMatch::OpenApi,
        Some(RouteTarget::Protected(kind)) => RouteMatch::Protected {
            scope: kind.scope(),
            kind,
        },
    }
}

fn matches_template(template: &str, path: &str) -> bool {
    let (Some(template), Some(path)) = (template.strip_prefix('/'), path.strip_prefix('/')) else {
        return false;
    };
    let mut path_segments = path.split('/');
    for expected in template.split('/') {
        let Some(actual) = path_segments.next() else {
            return false;
        };
        let ok = if expected.starts_with('{') {
            is_id_segment(actual)
        } else {
            expected == actual
        };
        if !ok {
            return false;
        }
    }
    path_segments.next().is_none()
}

fn is_id_segment(segment: &str) -> bool {
    (1..=MAX_ID_SEGMENT_LEN).contains(&segment.len())
        && segment
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "5d0e7c9a-3f1b-4c2e-9a8d-1b2c3d4e5f60";
    const TEST_ID: &str = "0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0";

    fn protected_match(kind: RouteKind) -> RouteMatch {
        RouteMatch::Protected {
            scope: kind.scope(),
            kind,
        }
    }

    #[test]
    fn every_contract_route() {
        use RouteKind::*;
        let cases = [
            (
                "GET",
                "/health".to_string(),
                RouteMatch::Public(PublicRoute::Health),
            ),
            ("GET", "/health/ready".to_string(), RouteMatch::HealthReady),
            ("GET", "/openapi.json".to_string(), RouteMatch::OpenApi),
            (
                "POST",
                "/patient".to_string(),
                protected_match(CreatePatient),
            ),
            (
                "GET",
                format!("/patient/{ID}"),
                protected_match(ReadPatient),
            ),
            (
                "PUT",
                format!("/patient/{ID}"),
                protected_match(UpdatePatient),
            ),
            (
                "POST",
                "/patient/search".to_string(),
                protected_match(SearchPatients),
            ),
            (
                "POST",
                format!("/patient/{ID}/tests"),
                protected_match(CreateTest),
            ),
            (
                "GET",
                format!("/patient/{ID}/tests"),
                protected_match(ListTests),
            ),
            (
                "GET",
                format!("/patient/{ID}/tests/{TEST_ID}"),
                protected_match(ReadTest),
            ),
            (
                "GET",
                "/audit/records".to_string(),
                protected_match(ListAuditRecords),
            ),
            (
                "GET",
                "/audit/verify".to_string(),
                protected_match(VerifyAuditChain),
            ),
        ];
        for (method, path, expected) in cases {
            assert_eq!(route(method, &path), expected, "{method} {path}");
        }
    }

    #[test]
    fn scopes_follow_the_contract() {
        let read = |p: &str, m: &str| match route(m, p) {
            RouteMatch::Protected { scope, .. } => scope,
            other => panic!("{m} {p}: {other:?}"),
        };
        assert_eq!(read("/patient", "POST"), Scope::PatientsWrite);
        assert_eq!(read("/patient/search", "POST"), Scope::PatientsRead);
        assert_eq!(read(&format!("/patient/{ID}"), "PUT"), Scope::PatientsWrite);
        assert_eq!(
            read(&format!("/patient/{ID}/tests"), "POST"),
            Scope::PatientsWrite
        );
        assert_eq!(
            read(&format!("/patient/{ID}/tests/{TEST_ID}"), "GET"),
            Scope::PatientsRead
        );
        assert_eq!(read("/audit/records", "GET"), Scope::AuditRead);
        assert_eq!(read("/audit/verify", "GET"), Scope::AuditRead);
    }

    #[test]
    fn search_is_a_literal_not_an_id() {
        assert_eq!(
            route("GET", "/patient/search"),
            RouteMatch::MethodNotAllowed { allow: &["POST"] }
        );
        assert_eq!(
            route("PUT", "/patient/search"),
            RouteMatch::MethodNotAllowed { allow: &["POST"] }
        );
        assert_eq!(
            route("POST", &format!("/patient/{ID}")),
            RouteMatch::MethodNotAllowed {
                allow: &["GET", "PUT"]
            }
        );
    }

    #[test]
    fn wrong_methods_get_the_allow_list() {
        let cases: [(&str, String, &[&str]); 7] = [
            ("POST", "/health".into(), &["GET"]),
            ("DELETE", format!("/patient/{ID}"), &["GET", "PUT"]),
            ("GET", "/patient".into(), &["POST"]),
            ("PUT", format!("/patient/{ID}/tests"), &["GET", "POST"]),
            ("DELETE", format!("/patient/{ID}/tests/{TEST_ID}"), &["GET"]),
            ("POST", "/audit/records".into(), &["GET"]),
            ("HEAD", "/audit/verify".into(), &["GET"]),
        ];
        for (method, path, allow) in cases {
            assert_eq!(
                route(method, &path),
                RouteMatch::MethodNotAllowed { allow },
                "{method} {path}"
            );
        }
        assert!(
            matches!(route("get", "/health"), RouteMatch::MethodNotAllowed { .. }),
            "methods are case-sensitive"
        );
    }

    #[test]
    fn trailing_slashes_and_odd_paths_are_not_found() {
        let paths = [
            "",
            "/",
            "health",
            "/health/",
            "/patient/",
            "//patient",
            "/patient//tests",
            &format!("/patient/{ID}/"),
            &format!("/patient/{ID}/tests/"),
            &format!("/patient/{ID}/tests/{TEST_ID}/"),
            &format!("/patient/{ID}/tests/{TEST_ID}/extra"),
            "/Patient",
            "/PATIENT/search",
            "/audit",
            "/audit/records/",
            "/patient/..",
            "/patient/%2e%2e",
            "/patient/a%2Fb",
            "/patient/a.b",
            &format!("/patient/{}", "a".repeat(MAX_ID_SEGMENT_LEN + 1)),
            "/patient?x=1",
            "/health?",
        ];
        for path in paths {
            assert_eq!(route("GET", path), RouteMatch::NotFound, "{path:?}");
            assert_eq!(route("POST", path), RouteMatch::NotFound, "{path:?}");
        }
        assert!(matches!(
            route(
                "GET",
                &format!("/patient/{}", "a".repeat(MAX_ID_SEGMENT_LEN))
            ),
            RouteMatch::Protected { .. }
        ));
    }

    #[test]
    fn table_is_consistent() {
        for spec in ROUTES {
            // The route function leads each row to itself.
            let example = spec
                .path_template
                .replace("{patientId}", ID)
                .replace("{testId}", TEST_ID);
            let expected = match spec.target {
                RouteTarget::Health => RouteMatch::Public(PublicRoute::Health),
                RouteTarget::HealthReady => RouteMatch::HealthReady,
                RouteTarget::OpenApi => RouteMatch::OpenApi,
                RouteTarget::Protected(kind) => {
                    assert_eq!(spec.scope, Some(kind.scope()));
                    assert_eq!(spec.path_template, kind.template());
                    protected_match(kind)
                }
            };
            assert_eq!(
                route(spec.method, &example),
                expected,
                "{} {}",
                spec.method,
                spec.path_template
            );
            assert_eq!(
                route(spec.method, &example).template(),
                Some(spec.path_template)
            );
        }
        // Allow lists are exactly the methods of the table, and every
        // template is routable.
        for (template, allow) in PATHS {
            let mut methods: Vec<&str> = ROUTES
                .iter()
                .filter(|s| s.path_template == *template)
                .map(|s| s.method)
                .collect();
            methods.sort_unstable();
            let mut allow = allow.to_vec();
            allow.sort_unstable();
            assert_eq!(methods, allow, "{template}");
        }
        for spec in ROUTES {
            assert!(
                PATHS.iter().any(|(t, _)| *t == spec.path_template),
                "{}",
                spec.path_template
            );
        }
        let mut pairs: Vec<_> = ROUTES.iter().map(|s| (s.method, s.path_template)).collect();
        pairs.sort_unstable();
        pairs.dedup();
        assert_eq!(pairs.len(), ROUTES.len(), "no duplicate rows");
    }

    #[test]
    fn templates_for_logs_hide_ids() {
        let matched = route("GET", &format!("/patient/{ID}/tests/{TEST_ID}"));
        assert_eq!(
            matched.template(),
            Some("/patient/{patientId}/tests/{testId}")
        );
        assert_eq!(route("GET", "/nope").template(), None);
    }
}

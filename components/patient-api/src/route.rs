//! Which operation a method and path ask for. Pure: ids stay raw text here
//! and are checked by the service, so a malformed id is a 404, not a 405.

/// An operation of docs/contract.md "Patients" and "Tests" (plus readiness).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route<'a> {
    Ready,
    CreatePatient,
    SearchPatients,
    ReadPatient(&'a str),
    UpdatePatient(&'a str),
    CreateTest(&'a str),
    ListTests(&'a str),
    ReadTest(&'a str, &'a str),
    /// `GET /audit/records` and `GET /audit/verify`, relayed to audit-api
    /// unchanged: the gateway calls patient-api only, so that in a split
    /// deployment only patient-api may reach audit-api.
    AuditRecords,
    AuditVerify,
}

impl Route<'_> {
    /// The route template, for logs: never the ids themselves.
    pub fn template(&self) -> &'static str {
        match self {
            Route::Ready => "/health/ready",
            Route::CreatePatient => "/patient",
            Route::SearchPatients => "/patient/search",
            Route::ReadPatient(_) | Route::UpdatePatient(_) => "/patient/{patientId}",
            Route::CreateTest(_) | Route::ListTests(_) => "/patient/{patientId}/tests",
            Route::ReadTest(..) => "/patient/{patientId}/tests/{testId}",
            Route::AuditRecords => "/audit/records",
            Route::AuditVerify => "/audit/verify",
        }
    }
}

/// Why no operation matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoRoute {
    /// No such path.
    NotFound,
    /// The path exists; these methods (the `Allow` header) do.
    MethodNotAllowed(&'static str),
}

/// Matches an upper-case method and a path (without query).
pub fn route<'a>(method: &str, path: &'a str) -> Result<Route<'a>, NoRoute> {
    let Some(rest) = path.strip_prefix('/') else {
        return Err(NoRoute::NotFound);
    };
    let segments: Vec<&str> = rest.split('/').collect();
    if segments.iter().any(|s| s.is_empty()) {
        return Err(NoRoute::NotFound);
    }
    let allow = |allowed: &'static str, matched: Option<Route<'a>>| {
        matched.ok_or(NoRoute::MethodNotAllowed(allowed))
    };
    match (segments.as_slice(), method) {
        (["health", "ready"], m) => allow("GET", (m == "GET").then_some(Route::Ready)),
        (["patient"], m) => allow("POST", (m == "POST").then_some(Route::CreatePatient)),
        // "search" is not a GUID, so it can never name a patient.
        (["patient", "search"], m) => allow("POST", (m == "POST").then_some(Route::SearchPatients)),
        (["patient", id], "GET") => Ok(Route::ReadPatient(id)),
        (["patient", id], "PUT") => Ok(Route::UpdatePatient(id)),
        (["patient", _], _) => Err(NoRoute::MethodNotAllowed("GET, PUT")),
        (["patient", id, "tests"], "POST") => Ok(Route::CreateTest(id)),
        (["patient", id, "tests"], "GET") => Ok(Route::ListTests(id)),
        (["patient", _, "tests"], _) => Err(NoRoute::MethodNotAllowed("GET, POST")),
        (["patient", id, "tests", test], "GET") => Ok(Route::ReadTest(id, test)),
        (["patient", _, "tests", _], _) => Err(NoRoute::MethodNotAllowed("GET")),
        (["audit", "records"], m) => allow("GET", (m == "GET").then_some(Route::AuditRecords)),
        (["audit", "verify"], m) => allow("GET", (m == "GET").then_some(Route::AuditVerify)),
        _ => Err(NoRoute::NotFound),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contract_routes() {
        assert_eq!(route("POST", "/patient"), Ok(Route::CreatePatient));
        assert_eq!(route("POST", "/patient/search"), Ok(Route::SearchPatients));
        assert_eq!(route("GET", "/patient/abc"), Ok(Route::ReadPatient("abc")));
        assert_eq!(
            route("PUT", "/patient/abc"),
            Ok(Route::UpdatePatient("abc"))
        );
        assert_eq!(
            route("POST", "/patient/abc/tests"),
            Ok(Route::CreateTest("abc"))
        );
        assert_eq!(
            route("GET", "/patient/abc/tests"),
            Ok(Route::ListTests("abc"))
        );
        assert_eq!(
            route("GET", "/patient/a/tests/t"),
            Ok(Route::ReadTest("a", "t"))
        );
        assert_eq!(route("GET", "/health/ready"), Ok(Route::Ready));
        assert_eq!(route("GET", "/audit/records"), Ok(Route::AuditRecords));
        assert_eq!(route("GET", "/audit/verify"), Ok(Route::AuditVerify));
        assert_eq!(route("GET", "/audit/records/x"), Err(NoRoute::NotFound));
        assert_eq!(
            route("POST", "/audit/records"),
            Err(NoRoute::MethodNotAllowed("GET"))
        );
    }

    #[test]
    fn wrong_methods_name_the_allowed_ones() {
        assert_eq!(
            route("GET", "/patient"),
            Err(NoRoute::MethodNotAllowed("POST"))
        );
        assert_eq!(
            route("GET", "/patient/search"),
            Err(NoRoute::MethodNotAllowed("POST"))
        );
        assert_eq!(
            route("DELETE", "/patient/x"),
            Err(NoRoute::MethodNotAllowed("GET, PUT"))
        );
        assert_eq!(
            route("PUT", "/patient/x/tests"),
            Err(NoRoute::MethodNotAllowed("GET, POST"))
        );
        assert_eq!(
            route("POST", "/patient/x/tests/y"),
            Err(NoRoute::MethodNotAllowed("GET"))
        );
    }

    #[test]
    fn other_paths_are_not_found() {
        for path in [
            "",
            "/",
            "/patients",
            "/patient/",
            "//patient",
            "/patient//tests",
            "/patient/x/tests/",
            "/patient/x/y",
            "/patient/x/tests/y/z",
            "/auditrecord",
        ] {
            assert_eq!(route("GET", path), Err(NoRoute::NotFound), "{path}");
        }
    }

    #[test]
    fn templates_hide_ids() {
        assert_eq!(
            route("GET", "/patient/a/tests/b").unwrap().template(),
            "/patient/{patientId}/tests/{testId}"
        );
    }
}

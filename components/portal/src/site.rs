//! The portal's functional core: the bundled files, how a request path
//! names one of them, and the headers every answer carries. Plain Rust, no
//! Spin types, so all of it is tested natively.
//!
//! There is no file system behind the portal: the files are compiled into
//! the component and a path is looked up by exact name in [`ASSETS`]. A path
//! that is not exactly one of those names cannot reach anything else, so
//! traversal is impossible by construction; [`resolve`] still classifies
//! the unsafe shapes (dot segments, percent-encodings, backslashes, control
//! bytes) so that the log says why a path was refused. Every refusal is 404.

/// Where spin.toml mounts the portal (`route = "/portal/..."`).
pub const MOUNT: &str = "/portal";

/// The canonical address of the portal's page.
pub const HOME: &str = "/portal/";

/// The methods the portal answers; anything else is 405 with this `Allow`.
pub const ALLOW: &str = "GET, HEAD";

/// Only the app's own origin, for everything the page loads or calls; no
/// inline script or style, no eval, no plug-ins, no framing, no form posts,
/// no `<base>`. Trusted Types with no policy means the page cannot turn a
/// string into markup or script at all (portal.js builds the DOM with
/// `textContent`), so a hostile OpenAPI description cannot inject either.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
style-src 'self'; img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; \
frame-ancestors 'none'; require-trusted-types-for 'script'; trusted-types 'none'";

/// Headers on every portal answer, the 404s and 405s included.
pub const SECURITY_HEADERS: &[(&str, &str)] = &[
    ("content-security-policy", CONTENT_SECURITY_POLICY),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "no-referrer"),
    // frame-ancestors for browsers that predate CSP level 2.
    ("x-frame-options", "DENY"),
    ("cross-origin-opener-policy", "same-origin"),
    ("cross-origin-resource-policy", "same-origin"),
    (
        "permissions-policy",
        "camera=(), microphone=(), geolocation=(), payment=(), usb=()",
    ),
    // Revalidate every time: a new deployment is seen at once, and the
    // files are small.
    ("cache-control", "no-cache"),
];

/// One bundled file.
#[derive(Debug, PartialEq, Eq)]
pub struct Asset {
    /// The name under [`MOUNT`] (`index.html` is served at `/portal/`).
    pub name: &'static str,
    pub content_type: &'static str,
    pub body: &'static [u8],
}

/// Every file the portal serves. The page loads the OpenAPI document from
/// the gateway (`/openapi.json`, same origin) at run time, so there is one
/// copy of the contract, the one the gateway serves.
pub static ASSETS: &[Asset] = &[
    Asset {
        name: "index.html",
        content_type: "text/html; charset=utf-8",
        body: include_bytes!("../assets/index.html"),
    },
    Asset {
        name: "portal.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../assets/portal.js"),
    },
    Asset {
        name: "portal.css",
        content_type: "text/css; charset=utf-8",
        body: include_bytes!("../assets/portal.css"),
    },
    Asset {
        name: "favicon.svg",
        content_type: "image/svg+xml",
        body: include_bytes!("../assets/favicon.svg"),
    },
];

/// Why a path names no file. All of them are answered 404.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotFound {
    /// Not under [`MOUNT`] (only reachable if spin.toml routes more here).
    OutsideMount,
    /// A well-formed name that is not in the bundle.
    Unknown,
    /// A name that could never be a bundled file; logged, never served.
    Unsafe(Unsafe),
}

/// The shapes of path that are refused before any lookup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unsafe {
    /// A `.` or `..` segment.
    DotSegment,
    /// A `%` (percent-encoding: `%2e%2e`, `%2f`, `%00`, ...). Bundled
    /// names need none, so nothing is ever decoded.
    PercentEncoded,
    /// A `\`, which some systems read as a separator.
    Backslash,
    /// A control byte (NUL included) or a non-ASCII byte.
    Control,
    /// An empty segment (`//`).
    EmptySegment,
    /// Any other byte outside `[A-Za-z0-9._-]`.
    OtherByte,
}

impl NotFound {
    /// For the log: what kind of refusal, never the path itself.
    pub fn reason(self) -> &'static str {
        match self {
            NotFound::OutsideMount => "outside-mount",
            NotFound::Unknown => "unknown",
            NotFound::Unsafe(Unsafe::DotSegment) => "dot-segment",
            NotFound::Unsafe(Unsafe::PercentEncoded) => "percent-encoded",
            NotFound::Unsafe(Unsafe::Backslash) => "backslash",
            NotFound::Unsafe(Unsafe::Control) => "control-byte",
            NotFound::Unsafe(Unsafe::EmptySegment) => "empty-segment",
            NotFound::Unsafe(Unsafe::OtherByte) => "other-byte",
        }
    }
}

/// What a path names.
#[derive(Debug, PartialEq, Eq)]
pub enum Resolved {
    Asset(&'static Asset),
    /// `/portal` without the slash: the page's relative links need the
    /// slash, so redirect to [`HOME`].
    Home,
    NotFound(NotFound),
}

/// Resolves a request path (without the query string) to a bundled file.
pub fn resolve(path: &str) -> Resolved {
    let Some(rest) = path.strip_prefix(MOUNT) else {
        return Resolved::NotFound(NotFound::OutsideMount);
    };
    if rest.is_empty() {
        return Resolved::Home;
    }
    let Some(rest) = rest.strip_prefix('/') else {
        // `/portalx`: Spin would not route it here; refuse it all the same.
        return Resolved::NotFound(NotFound::OutsideMount);
    };
    if let Err(why) = check_shape(rest) {
        return Resolved::NotFound(NotFound::Unsafe(why));
    }
    let name = if rest.is_empty() { "index.html" } else { rest };
    match ASSETS.iter().find(|a| a.name == name) {
        Some(asset) => Resolved::Asset(asset),
        None => Resolved::NotFound(NotFound::Unknown),
    }
}

/// Refuses any path that could mean something other than a plain name.
fn check_shape(rest: &str) -> Result<(), Unsafe> {
    for byte in rest.bytes() {
        match byte {
            b'%' => return Err(Unsafe::PercentEncoded),
            b'\\' => return Err(Unsafe::Backslash),
            0..=0x1f | 0x7f..=0xff => return Err(Unsafe::Control),
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'.' | b'_' | b'-' | b'/' => {}
            _ => return Err(Unsafe::OtherByte),
        }
    }
    if rest.is_empty() {
        return Ok(());
    }
    for segment in rest.split('/') {
        match segment {
            "" => return Err(Unsafe::EmptySegment),
            "." | ".." => return Err(Unsafe::DotSegment),
            _ => {}
        }
    }
    Ok(())
}

/// The two methods the portal serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
}

/// Any other method (405).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MethodNotAllowed;

impl Method {
    /// Method names are case-sensitive (RFC 9110 §9.1): `get` is not GET.
    pub fn parse(name: &str) -> Result<Self, MethodNotAllowed> {
        match name {
            "GET" => Ok(Method::Get),
            "HEAD" => Ok(Method::Head),
            _ => Err(MethodNotAllowed),
        }
    }
}

/// The portal's answer, before it becomes a Spin response.
#[derive(Debug, PartialEq, Eq)]
pub enum Answer {
    /// 200 with the file (its body omitted for HEAD).
    File { asset: &'static Asset, head: bool },
    /// 308 to [`HOME`].
    Redirect,
    /// 404.
    NotFound(NotFound),
    /// 405 with `Allow: GET, HEAD`.
    MethodNotAllowed,
}

impl Answer {
    pub fn status(&self) -> u16 {
        match self {
            Answer::File { .. } => 200,
            Answer::Redirect => 308,
            Answer::NotFound(_) => 404,
            Answer::MethodNotAllowed => 405,
        }
    }

    /// For the log: the file's name or the refusal's kind, never the path.
    pub fn log_name(&self) -> &'static str {
        match self {
            Answer::File { asset, .. } => asset.name,
            Answer::Redirect => "redirect",
            Answer::NotFound(why) => why.reason(),
            Answer::MethodNotAllowed => "method-not-allowed",
        }
    }
}

/// Decides the answer to `method path`. The path decides first, as at the
/// gateway: a path that names nothing is 404 whatever the method; a file
/// asked for with another method than GET or HEAD is 405.
pub fn answer(method: &str, path: &str) -> Answer {
    let resolved = resolve(path);
    if let Resolved::NotFound(why) = resolved {
        return Answer::NotFound(why);
    }
    let Ok(method) = Method::parse(method) else {
        return Answer::MethodNotAllowed;
    };
    match resolved {
        Resolved::Asset(asset) => Answer::File {
            asset,
            head: method == Method::Head,
        },
        Resolved::Home => Answer::Redirect,
        Resolved::NotFound(why) => Answer::NotFound(why),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(path: &str) -> Option<&'static str> {
        match resolve(path) {
            Resolved::Asset(a) => Some(a.name),
            _ => None,
        }
    }

    #[test]
    fn the_page_and_its_files_resolve_by_exact_name() {
        assert_eq!(name("/portal/"), Some("index.html"));
        assert_eq!(name("/portal/index.html"), Some("index.html"));
        assert_eq!(name("/portal/portal.js"), Some("portal.js"));
        assert_eq!(name("/portal/portal.css"), Some("portal.css"));
        assert_eq!(name("/portal/favicon.svg"), Some("favicon.svg"));
        assert_eq!(resolve("/portal"), Resolved::Home);
    }

    #[test]
    fn unknown_names_are_not_found() {
        for path in [
            "/portal/nope.js",
            "/portal/Portal.js",
            "/portal/portal.js.map",
            "/portal/assets/portal.js",
            "/portal/openapi.json",
            "/portal/src/site.rs",
            "/portal/Cargo.toml",
        ] {
            assert_eq!(
                resolve(path),
                Resolved::NotFound(NotFound::Unknown),
                "{path}"
            );
        }
    }

    #[test]
    fn traversal_and_odd_bytes_are_refused_before_any_lookup() {
        let cases: &[(&str, Unsafe)] = &[
            ("/portal/../openapi.json", Unsafe::DotSegment),
            ("/portal/..", Unsafe::DotSegment),
            ("/portal/./portal.js", Unsafe::DotSegment),
            ("/portal/x/../portal.js", Unsafe::DotSegment),
            ("/portal/%2e%2e/openapi.json", Unsafe::PercentEncoded),
            ("/portal/%2E%2E%2Fspin.toml", Unsafe::PercentEncoded),
            ("/portal/portal%2ejs", Unsafe::PercentEncoded),
            ("/portal/%00", Unsafe::PercentEncoded),
            ("/portal/..\\spin.toml", Unsafe::Backslash),
            ("/portal/\\portal.js", Unsafe::Backslash),
            ("/portal/portal.js\0", Unsafe::Control),
            ("/portal/\u{0}", Unsafe::Control),
            ("/portal/\t", Unsafe::Control),
            ("/portal/\u{2024}\u{2024}/x", Unsafe::Control),
            ("/portal//portal.js", Unsafe::EmptySegment),
            ("/portal/x//", Unsafe::EmptySegment),
            ("/portal/portal.js/", Unsafe::EmptySegment),
            ("/portal/portal.js;x", Unsafe::OtherByte),
            ("/portal/:portal.js", Unsafe::OtherByte),
            ("/portal/~", Unsafe::OtherByte),
        ];
        for (path, why) in cases {
            assert_eq!(
                resolve(path),
                Resolved::NotFound(NotFound::Unsafe(*why)),
                "{path:?}"
            );
        }
    }

    #[test]
    fn paths_outside_the_mount_are_not_found() {
        for path in ["/", "/portalx", "/portal.js", "/openapi.json", "/Portal/"] {
            assert_eq!(
                resolve(path),
                Resolved::NotFound(NotFound::OutsideMount),
                "{path}"
            );
        }
    }

    #[test]
    fn only_get_and_head_are_served() {
        assert_eq!(Method::parse("GET"), Ok(Method::Get));
        assert_eq!(Method::parse("HEAD"), Ok(Method::Head));
        for other in [
            "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "get", "",
        ] {
            assert_eq!(Method::parse(other), Err(MethodNotAllowed), "{other}");
            let reply = answer(other, "/portal/");
            assert_eq!(reply, Answer::MethodNotAllowed, "{other}");
            assert_eq!(reply.status(), 405);
        }
    }

    #[test]
    fn the_path_decides_before_the_method() {
        assert_eq!(
            answer("POST", "/portal/nope"),
            Answer::NotFound(NotFound::Unknown)
        );
        assert_eq!(
            answer("DELETE", "/portal/../x"),
            Answer::NotFound(NotFound::Unsafe(Unsafe::DotSegment))
        );
        assert_eq!(answer("POST", "/portal"), Answer::MethodNotAllowed);
        let head = answer("HEAD", "/portal/portal.js");
        assert!(matches!(head, Answer::File { head: true, asset } if asset.name == "portal.js"));
        assert_eq!(answer("GET", "/portal").status(), 308);
    }

    #[test]
    fn the_policy_allows_only_this_origin_and_nothing_inline() {
        let csp = CONTENT_SECURITY_POLICY;
        for directive in [
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            "connect-src 'self'",
            "frame-ancestors 'none'",
            "base-uri 'none'",
            "form-action 'none'",
        ] {
            assert!(csp.contains(directive), "{directive}");
        }
        for loose in ["unsafe-inline", "unsafe-eval", "data:", "http", "*"] {
            assert!(!csp.contains(loose), "{loose}");
        }
        for name in [
            "content-security-policy",
            "x-content-type-options",
            "referrer-policy",
        ] {
            assert!(SECURITY_HEADERS.iter().any(|(n, _)| *n == name), "{name}");
        }
    }

    /// ` onclick=`, ` onload=`, ...: an attribute that runs script.
    fn has_event_handler_attribute(html: &str) -> bool {
        html.match_indices(" on").any(|(at, _)| {
            let rest = &html[at + 3..];
            let letters = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
            letters > 0 && rest[letters..].starts_with('=')
        })
    }

    #[test]
    fn the_page_has_no_inline_script_or_style_and_names_no_other_origin() {
        for asset in ASSETS {
            let text = std::str::from_utf8(asset.body).expect("UTF-8");
            for needle in ["http://", "https://", "//cdn", "eval(", "new Function"] {
                // The SVG's XML namespace is a name, not a request.
                if asset.name == "favicon.svg" && needle == "http://" {
                    continue;
                }
                assert!(!text.contains(needle), "{}: {needle}", asset.name);
            }
        }
        let page = std::str::from_utf8(ASSETS[0].body).unwrap();
        assert!(!page.contains("<style"), "no inline style element");
        assert!(!page.contains(" style="), "no style attribute");
        assert!(
            !has_event_handler_attribute(page),
            "no inline event handler"
        );
        for tag in page.split("<script").skip(1) {
            assert!(
                tag.trim_start().starts_with("src="),
                "every script is a file"
            );
        }
        for asset in ASSETS.iter().filter(|a| a.name != "index.html") {
            assert!(page.contains(asset.name), "the page uses {}", asset.name);
        }
    }
}

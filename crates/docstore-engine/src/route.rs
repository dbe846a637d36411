//! Request paths: which resource they name, and the resource type and link a
//! master-key signature covers, derived as Cosmos DB derives them.

use crate::reply::Failure;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Route {
    Account,
    Databases,
    Database(String),
    Collections(String),
    Collection(String, String),
    PartitionKeyRanges(String, String),
    Documents(String, String),
    Document(String, String, String),
    /// A path of a resource kind this store does not have (users, sprocs...).
    Unsupported(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ParsedPath {
    pub route: Route,
    /// e.g. `docs` (empty for the account).
    pub resource_type: String,
    /// e.g. `dbs/x/colls/y` (no leading slash; empty for the account).
    pub resource_link: String,
}

/// Parses a percent-encoded path such as `/dbs/x/colls/y/docs/z`.
pub(crate) fn parse(path: &str) -> Result<ParsedPath, Failure> {
    let trimmed = path.trim_matches('/');
    let segments: Vec<String> = if trimmed.is_empty() {
        Vec::new()
    } else {
        trimmed
            .split('/')
            .map(|segment| percent::decode(segment, percent::Plus::Literal))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| {
                Failure::BadRequest("the request path is not valid percent-encoded UTF-8".into())
            })?
    };
    if segments.iter().any(String::is_empty) {
        return Err(Failure::NotFound(
            "the request path has an empty segment".into(),
        ));
    }
    // Cosmos DB's rule: a path ending in an id names that resource (type is
    // the segment before it, link is the whole path); a path ending in a
    // resource type names that feed (link is its owner).
    let n = segments.len();
    let (resource_type, resource_link) = if n == 0 {
        (String::new(), String::new())
    } else if n % 2 == 1 {
        (
            segments[n - 1].to_ascii_lowercase(),
            segments[..n - 1].join("/"),
        )
    } else {
        (segments[n - 2].to_ascii_lowercase(), segments.join("/"))
    };
    let s: Vec<&str> = segments.iter().map(String::as_str).collect();
    let route = match s.as_slice() {
        [] => Route::Account,
        ["dbs"] => Route::Databases,
        ["dbs", db] => Route::Database(db.to_string()),
        ["dbs", db, "colls"] => Route::Collections(db.to_string()),
        ["dbs", db, "colls", coll] => Route::Collection(db.to_string(), coll.to_string()),
        ["dbs", db, "colls", coll, "pkranges"] => {
            Route::PartitionKeyRanges(db.to_string(), coll.to_string())
        }
        ["dbs", db, "colls", coll, "docs"] => Route::Documents(db.to_string(), coll.to_string()),
        ["dbs", db, "colls", coll, "docs", id] => {
            Route::Document(db.to_string(), coll.to_string(), id.to_string())
        }
        _ => Route::Unsupported(format!("resources of type '{resource_type}'")),
    };
    Ok(ParsedPath {
        route,
        resource_type,
        resource_link,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(path: &str) -> (Route, String, String) {
        let p = parse(path).unwrap();
        (p.route, p.resource_type, p.resource_link)
    }

    #[test]
    fn derives_cosmos_resource_types_and_links() {
        let s = String::from;
        assert_eq!(parsed("/"), (Route::Account, s(""), s("")));
        assert_eq!(parsed(""), (Route::Account, s(""), s("")));
        assert_eq!(parsed("/dbs"), (Route::Databases, s("dbs"), s("")));
        assert_eq!(
            parsed("/dbs/x"),
            (Route::Database(s("x")), s("dbs"), s("dbs/x"))
        );
        assert_eq!(
            parsed("/dbs/x/colls/"),
            (Route::Collections(s("x")), s("colls"), s("dbs/x"))
        );
        assert_eq!(
            parsed("/dbs/x/colls/y"),
            (
                Route::Collection(s("x"), s("y")),
                s("colls"),
                s("dbs/x/colls/y")
            )
        );
        assert_eq!(
            parsed("/dbs/x/colls/y/pkranges"),
            (
                Route::PartitionKeyRanges(s("x"), s("y")),
                s("pkranges"),
                s("dbs/x/colls/y")
            )
        );
        assert_eq!(
            parsed("/dbs/x/colls/y/docs/"),
            (
                Route::Documents(s("x"), s("y")),
                s("docs"),
                s("dbs/x/colls/y")
            )
        );
        assert_eq!(
            parsed("/dbs/x/colls/y/docs/z"),
            (
                Route::Document(s("x"), s("y"), s("z")),
                s("docs"),
                s("dbs/x/colls/y/docs/z")
            )
        );
    }

    #[test]
    fn decodes_percent_encoded_ids() {
        let (route, _, link) = parsed("/dbs/x/colls/y/docs/a%20b%C3%A9");
        assert_eq!(
            route,
            Route::Document("x".into(), "y".into(), "a bé".into())
        );
        assert_eq!(link, "dbs/x/colls/y/docs/a bé");
        assert!(matches!(
            parse("/dbs/x/colls/y/docs/%zz"),
            Err(Failure::BadRequest(_))
        ));
        assert!(matches!(
            parse("/dbs/x/colls/y/docs/%FF"),
            Err(Failure::BadRequest(_))
        ));
    }

    #[test]
    fn other_resource_kinds_are_unsupported() {
        assert!(matches!(parsed("/dbs/x/users").0, Route::Unsupported(_)));
        assert!(matches!(
            parsed("/dbs/x/colls/y/sprocs/p").0,
            Route::Unsupported(_)
        ));
        assert!(matches!(parsed("/offers").0, Route::Unsupported(_)));
        assert!(matches!(parse("/dbs//colls"), Err(Failure::NotFound(_))));
    }
}

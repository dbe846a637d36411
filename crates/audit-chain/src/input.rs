//! What a caller asks the register to record, and the values the audit
//! service itself adds from request headers.

use std::fmt;

use serde_json::{Map, Value};
use uuid::Uuid;

use crate::error::{AuditInputError, Violation};
use strict_json::{index_path, parse_body, Fields};

/// Most characters of a source system name, resource id or correlation id.
pub const MAX_NAME_CHARS: usize = 128;
/// Most characters of an actor: the one actor rule, the longest the gateway
/// can name (so a caller it accepts is never refused here).
pub const MAX_ACTOR_CHARS: usize = actor::MAX_ACTOR_CHARS;
/// Most characters of one search criterion name.
pub const MAX_CRITERION_CHARS: usize = 64;
/// Most criteria names one search record may list.
pub const MAX_CRITERIA: usize = 20;

const PRINTABLE: &str = "printable ASCII characters, not beginning or ending with a space";
const ID_CHARS: &str = "letters, digits and - _ . *";
const LETTERS: &str = "ASCII letters";

/// 1..=`max` printable ASCII characters (0x20–0x7E), no leading or trailing
/// space. Restricting these to ASCII keeps the canonical form trivial to
/// reproduce outside this crate, and keeps control characters (log
/// injection) out of the register.
fn check_printable(field: &str, s: &str, max: usize) -> Result<(), AuditInputError> {
    let fail = |v| Err(AuditInputError::new(field, v));
    if s.is_empty() {
        return fail(Violation::Empty);
    }
    if s.len() > max && s.is_ascii() {
        return fail(Violation::TooLong { max });
    }
    if !s.bytes().all(|b| (0x20..=0x7e).contains(&b)) || s.starts_with(' ') || s.ends_with(' ') {
        return fail(Violation::InvalidCharacters(PRINTABLE));
    }
    Ok(())
}

macro_rules! checked_string {
    ($(#[$meta:meta])* $name:ident, field = $field:literal, check = $check:expr) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            /// Validates a value of this field.
            pub fn parse(value: &str) -> Result<Self, AuditInputError> {
                Self::parse_at($field, value)
            }

            pub(crate) fn parse_at(field: &str, value: &str) -> Result<Self, AuditInputError> {
                let check: fn(&str, &str) -> Result<(), AuditInputError> = $check;
                check(field, value)?;
                Ok(Self(value.to_owned()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

checked_string!(
    /// The calling system's name (`sourceSystemName`): 1–128 printable ASCII
    /// characters, no leading or trailing space.
    SourceSystemName, field = "sourceSystemName", check = |f, s| check_printable(f, s, MAX_NAME_CHARS)
);
checked_string!(
    /// The request's correlation id (from `x-correlation-id`, the W3C trace
    /// id): 1–128 printable ASCII characters, no leading or trailing space.
    CorrelationId, field = "correlationId", check = |f, s| check_printable(f, s, MAX_NAME_CHARS)
);
checked_string!(
    /// Who acted: the subscription name or token subject the gateway
    /// authenticated (the forms of the `actor` crate). 1–327 printable ASCII
    /// characters, no leading or trailing space.
    Actor, field = "actor", check = |f, s| check_printable(f, s, MAX_ACTOR_CHARS)
);
checked_string!(
    /// The audited resource's id: 1–128 of `A-Z a-z 0-9 - _ . *` (a GUID, or
    /// `*` for a search). Compared exactly: callers send ids in their one
    /// canonical spelling (lower-case GUIDs), or one resource gets two chains.
    ResourceId, field = "resource.id", check = |f, s| {
        if s.is_empty() {
            return Err(AuditInputError::new(f, Violation::Empty));
        }
        if !s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.*".contains(&b)) {
            return Err(AuditInputError::new(f, Violation::InvalidCharacters(ID_CHARS)));
        }
        if s.len() > MAX_NAME_CHARS {
            return Err(AuditInputError::new(f, Violation::TooLong { max: MAX_NAME_CHARS }));
        }
        Ok(())
    }
);
checked_string!(
    /// The name (never the value) of one search criterion: 1–64 ASCII letters.
    CriterionName, field = "criterion", check = |f, s| {
        if s.is_empty() {
            return Err(AuditInputError::new(f, Violation::Empty));
        }
        if !s.bytes().all(|b| b.is_ascii_alphabetic()) {
            return Err(AuditInputError::new(f, Violation::InvalidCharacters(LETTERS)));
        }
        if s.len() > MAX_CRITERION_CHARS {
            return Err(AuditInputError::new(f, Violation::TooLong { max: MAX_CRITERION_CHARS }));
        }
        Ok(())
    }
);

/// The kind of audited resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ResourceType {
    Patient,
    Test,
}

impl ResourceType {
    pub const VALUES: &'static [&'static str] = &["patient", "test"];

    pub fn as_str(&self) -> &'static str {
        match self {
            ResourceType::Patient => "patient",
            ResourceType::Test => "test",
        }
    }

    /// Exactly `patient` or `test`.
    pub fn parse(value: &str) -> Result<Self, AuditInputError> {
        Self::parse_at("resource.type", value)
    }

    pub(crate) fn parse_at(field: &str, value: &str) -> Result<Self, AuditInputError> {
        match value {
            "patient" => Ok(ResourceType::Patient),
            "test" => Ok(ResourceType::Test),
            _ => Err(AuditInputError::new(
                field,
                Violation::NotOneOf(Self::VALUES),
            )),
        }
    }
}

/// What was done to the resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    Create,
    Read,
    Update,
    Search,
}

impl Operation {
    pub const VALUES: &'static [&'static str] = &["create", "read", "update", "search"];

    pub fn as_str(&self) -> &'static str {
        match self {
            Operation::Create => "create",
            Operation::Read => "read",
            Operation::Update => "update",
            Operation::Search => "search",
        }
    }

    /// Exactly one of `create`, `read`, `update`, `search`.
    pub fn parse(value: &str) -> Result<Self, AuditInputError> {
        Self::parse_at("resource.operation", value)
    }

    pub(crate) fn parse_at(field: &str, value: &str) -> Result<Self, AuditInputError> {
        match value {
            "create" => Ok(Operation::Create),
            "read" => Ok(Operation::Read),
            "update" => Ok(Operation::Update),
            "search" => Ok(Operation::Search),
            _ => Err(AuditInputError::new(
                field,
                Violation::NotOneOf(Self::VALUES),
            )),
        }
    }
}

/// The audited resource and operation. Criteria names exist only on a
/// search (none means "search all"); at most [`MAX_CRITERIA`], no repeats.
///
/// `reference` is the id of another audit record this one follows from: a
/// disclosure record (a patient a search returned, on that patient's own
/// chain) names the search's record, so "who saw my record" leads from the
/// patient to the query that returned it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditResource {
    kind: ResourceType,
    id: ResourceId,
    operation: Operation,
    criteria: Vec<CriterionName>,
    reference: Option<Uuid>,
}

impl AuditResource {
    /// A resource and operation without criteria (any operation, including
    /// a search for all).
    pub fn new(kind: ResourceType, id: ResourceId, operation: Operation) -> Self {
        Self {
            kind,
            id,
            operation,
            criteria: Vec::new(),
            reference: None,
        }
    }

    /// This resource, following from the audit record `reference`.
    pub fn with_reference(mut self, reference: Uuid) -> Self {
        self.reference = Some(reference);
        self
    }

    pub fn reference(&self) -> Option<Uuid> {
        self.reference
    }

    /// A search by the given criteria names.
    pub fn search(
        kind: ResourceType,
        id: ResourceId,
        criteria: Vec<CriterionName>,
    ) -> Result<Self, AuditInputError> {
        check_criteria("resource.criteria", &criteria)?;
        Ok(Self {
            kind,
            id,
            operation: Operation::Search,
            criteria,
            reference: None,
        })
    }

    pub fn kind(&self) -> ResourceType {
        self.kind
    }

    pub fn id(&self) -> &ResourceId {
        &self.id
    }

    pub fn operation(&self) -> Operation {
        self.operation
    }

    pub fn criteria(&self) -> &[CriterionName] {
        &self.criteria
    }

    /// `{"type", "id", "operation"[, "criteria"][, "reference"]}`; `criteria`
    /// is present exactly when the operation is a search, `reference` when
    /// there is one.
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("type".into(), Value::String(self.kind.as_str().into()));
        m.insert("id".into(), Value::String(self.id.0.clone()));
        m.insert(
            "operation".into(),
            Value::String(self.operation.as_str().into()),
        );
        if self.operation == Operation::Search {
            let names = self
                .criteria
                .iter()
                .map(|c| Value::String(c.0.clone()))
                .collect();
            m.insert("criteria".into(), Value::Array(names));
        }
        if let Some(reference) = self.reference {
            m.insert(
                "reference".into(),
                Value::String(reference.hyphenated().to_string()),
            );
        }
        Value::Object(m)
    }

    /// Reads the `resource` object found at `path`.
    pub(crate) fn from_json(value: Value, path: &str) -> Result<Self, AuditInputError> {
        let mut obj = Fields::new(value, path)?;
        obj.reject_unknown(&["type", "id", "operation", "criteria", "reference"])?;
        let kind = ResourceType::parse_at(&obj.path_of("type"), &obj.required_str("type")?)?;
        let id = ResourceId::parse_at(&obj.path_of("id"), &obj.required_str("id")?)?;
        let operation =
            Operation::parse_at(&obj.path_of("operation"), &obj.required_str("operation")?)?;
        let criteria_path = obj.path_of("criteria");
        let criteria = match obj.take("criteria") {
            None => Vec::new(),
            Some(_) if operation != Operation::Search => {
                return Err(AuditInputError::new(
                    criteria_path,
                    Violation::CriteriaNotAllowed,
                ))
            }
            Some(Value::Array(items)) => {
                if items.len() > MAX_CRITERIA {
                    return Err(AuditInputError::new(
                        criteria_path,
                        Violation::TooManyItems { max: MAX_CRITERIA },
                    ));
                }
                let names = items
                    .into_iter()
                    .enumerate()
                    .map(|(i, item)| {
                        let at = index_path(&criteria_path, i);
                        match item {
                            Value::String(s) => CriterionName::parse_at(&at, &s),
                            _ => Err(AuditInputError::new(at, Violation::WrongType("a string"))),
                        }
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                check_criteria(&criteria_path, &names)?;
                names
            }
            Some(_) => {
                return Err(AuditInputError::new(
                    criteria_path,
                    Violation::WrongType("an array"),
                ))
            }
        };
        let reference_path = obj.path_of("reference");
        let reference = match obj.optional_str("reference")? {
            None => None,
            Some(text) => Some(parse_reference(&reference_path, &text)?),
        };
        Ok(Self {
            kind,
            id,
            operation,
            criteria,
            reference,
        })
    }
}

/// A record id in its one spelling: a lower-case hyphenated GUID.
fn parse_reference(path: &str, text: &str) -> Result<Uuid, AuditInputError> {
    match Uuid::parse_str(text) {
        Ok(id) if id.hyphenated().to_string() == text => Ok(id),
        _ => Err(AuditInputError::new(
            path,
            Violation::NotCanonical("the id of an audit record (a lower-case GUID)"),
        )),
    }
}

fn check_criteria(path: &str, names: &[CriterionName]) -> Result<(), AuditInputError> {
    if names.len() > MAX_CRITERIA {
        return Err(AuditInputError::new(
            path,
            Violation::TooManyItems { max: MAX_CRITERIA },
        ));
    }
    for (i, name) in names.iter().enumerate() {
        if names[..i].contains(name) {
            return Err(AuditInputError::new(
                index_path(path, i),
                Violation::DuplicateItem,
            ));
        }
    }
    Ok(())
}

/// The body of `POST /auditrecord`: who calls, and what was done to which
/// resource. It never holds patient data: ids and field names only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditInput {
    pub source_system_name: SourceSystemName,
    pub resource: AuditResource,
}

impl AuditInput {
    /// The request body a caller sends (the inverse of [`parse_audit_input`]).
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert(
            "sourceSystemName".into(),
            Value::String(self.source_system_name.0.clone()),
        );
        m.insert("resource".into(), self.resource.to_json());
        Value::Object(m)
    }
}

/// Parses the body of `POST /auditrecord`:
/// `{"sourceSystemName": str, "resource": {"type", "id", "operation", "criteria"?}}`.
/// Unknown and duplicate members are rejected at every level; `null` counts
/// as absent; the service's own fields (`id`, `createdDate`, ...) cannot be
/// supplied by the caller.
pub fn parse_audit_input(body: &[u8]) -> Result<AuditInput, AuditInputError> {
    AuditInput::from_json(parse_body(body)?, "")
}

/// Most records one `POST /auditrecords` may carry: a page of search
/// results at its largest (patient-api's `limit` maximum).
pub const MAX_BATCH: usize = 1000;

/// The body of `POST /auditrecords`: `{"records": [<audit input>, ...]}`,
/// 1 to [`MAX_BATCH`] of them, each as `POST /auditrecord` takes it.
pub fn parse_audit_batch(body: &[u8]) -> Result<Vec<AuditInput>, AuditInputError> {
    let mut obj = Fields::new(parse_body(body)?, "")?;
    obj.reject_unknown(&["records"])?;
    let items = obj.required_array("records")?;
    if items.is_empty() {
        return Err(AuditInputError::new("records", Violation::Empty));
    }
    if items.len() > MAX_BATCH {
        return Err(AuditInputError::new(
            "records",
            Violation::TooManyItems { max: MAX_BATCH },
        ));
    }
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| AuditInput::from_json(item, &index_path("records", i)))
        .collect()
}

impl AuditInput {
    fn from_json(value: Value, path: &str) -> Result<AuditInput, AuditInputError> {
        let mut obj = Fields::new(value, path)?;
        obj.reject_unknown(&["sourceSystemName", "resource"])?;
        let source_system_name = SourceSystemName::parse_at(
            &obj.path_of("sourceSystemName"),
            &obj.required_str("sourceSystemName")?,
        )?;
        let resource =
            AuditResource::from_json(obj.required("resource")?, &obj.path_of("resource"))?;
        Ok(AuditInput {
            source_system_name,
            resource,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const PID: &str = "3f2504e0-4f89-11d3-9a0c-0305e82c3301";

    fn body() -> Value {
        json!({"sourceSystemName": "patient-api", "resource": {"type": "patient", "id": PID, "operation": "read"}})
    }

    fn parse(v: &Value) -> Result<AuditInput, AuditInputError> {
        parse_audit_input(v.to_string().as_bytes())
    }

    fn err(v: &Value) -> (String, Violation) {
        let e = parse(v).unwrap_err();
        (e.field, e.violation)
    }

    #[test]
    fn valid_inputs() {
        let a = parse(&body()).unwrap();
        assert_eq!(a.source_system_name.as_str(), "patient-api");
        assert_eq!(a.resource.kind(), ResourceType::Patient);
        assert_eq!(a.resource.id().as_str(), PID);
        assert_eq!(a.resource.operation(), Operation::Read);
        assert!(a.resource.criteria().is_empty());
        for (t, k) in [
            ("patient", ResourceType::Patient),
            ("test", ResourceType::Test),
        ] {
            for (o, op) in [
                ("create", Operation::Create),
                ("read", Operation::Read),
                ("update", Operation::Update),
                ("search", Operation::Search),
            ] {
                let mut v = body();
                v["resource"]["type"] = json!(t);
                v["resource"]["operation"] = json!(o);
                let a = parse(&v).unwrap();
                assert_eq!((a.resource.kind(), a.resource.operation()), (k, op));
            }
        }
    }

    #[test]
    fn search_with_criteria() {
        let mut v = body();
        v["resource"] = json!({"type": "patient", "id": "*", "operation": "search", "criteria": ["firstName", "postCode"]});
        let a = parse(&v).unwrap();
        let names: Vec<_> = a.resource.criteria().iter().map(|c| c.as_str()).collect();
        assert_eq!(names, ["firstName", "postCode"]);
        v["resource"]["criteria"] = json!([]);
        assert!(parse(&v).unwrap().resource.criteria().is_empty());
        v["resource"]["criteria"] = Value::Null;
        assert!(parse(&v).unwrap().resource.criteria().is_empty());
    }

    #[test]
    fn criteria_rules() {
        let with = |c: Value, op: &str| {
            let mut v = body();
            v["resource"]["operation"] = json!(op);
            v["resource"]["criteria"] = c;
            v
        };
        assert_eq!(
            err(&with(json!(["firstName"]), "read")),
            ("resource.criteria".into(), Violation::CriteriaNotAllowed)
        );
        assert_eq!(
            err(&with(json!([]), "create")).1,
            Violation::CriteriaNotAllowed
        );
        assert_eq!(
            err(&with(json!("firstName"), "search")),
            ("resource.criteria".into(), Violation::WrongType("an array"))
        );
        assert_eq!(
            err(&with(json!(["a", 1]), "search")),
            (
                "resource.criteria[1]".into(),
                Violation::WrongType("a string")
            )
        );
        assert_eq!(
            err(&with(json!(["a", "first name"]), "search")),
            (
                "resource.criteria[1]".into(),
                Violation::InvalidCharacters(LETTERS)
            )
        );
        assert_eq!(
            err(&with(json!(["a", "Ana1"]), "search")).1,
            Violation::InvalidCharacters(LETTERS)
        );
        assert_eq!(
            err(&with(json!([""]), "search")),
            ("resource.criteria[0]".into(), Violation::Empty)
        );
        assert!(parse(&with(json!(["a".repeat(64)]), "search")).is_ok());
        assert_eq!(
            err(&with(json!(["a".repeat(65)]), "search")).1,
            Violation::TooLong { max: 64 }
        );
        assert_eq!(
            err(&with(json!(["a", "b", "a"]), "search")),
            ("resource.criteria[2]".into(), Violation::DuplicateItem)
        );
        let letters = |n: usize| -> Vec<String> { (0..n).map(|i| "x".repeat(i + 1)).collect() };
        assert!(parse(&with(json!(letters(20)), "search")).is_ok());
        assert_eq!(
            err(&with(json!(letters(21)), "search")),
            (
                "resource.criteria".into(),
                Violation::TooManyItems { max: 20 }
            )
        );
    }

    #[test]
    fn resource_id_rules() {
        let with = |id: Value| {
            let mut v = body();
            v["resource"]["id"] = id;
            v
        };
        for ok in ["*", "a", "A-z_0.9*", &"a".repeat(128)] {
            assert!(parse(&with(json!(ok))).is_ok(), "{ok}");
        }
        assert_eq!(
            err(&with(json!("a".repeat(129)))),
            ("resource.id".into(), Violation::TooLong { max: 128 })
        );
        assert_eq!(err(&with(json!(""))).1, Violation::Empty);
        for bad in ["a b", "a/b", "é", "{\"firstName\":\"Ana\"}", "a:b"] {
            assert_eq!(
                err(&with(json!(bad))),
                ("resource.id".into(), Violation::InvalidCharacters(ID_CHARS)),
                "{bad}"
            );
        }
        assert_eq!(err(&with(json!(1))).1, Violation::WrongType("a string"));
    }

    #[test]
    fn source_system_name_rules() {
        let with = |s: Value| {
            let mut v = body();
            v["sourceSystemName"] = s;
            v
        };
        assert!(parse(&with(json!("x".repeat(128)))).is_ok());
        assert!(parse(&with(json!("Lab System #2 (EU)"))).is_ok());
        assert_eq!(
            err(&with(json!("x".repeat(129)))),
            ("sourceSystemName".into(), Violation::TooLong { max: 128 })
        );
        assert_eq!(err(&with(json!(""))).1, Violation::Empty);
        for bad in ["tab\there", "é", " lead", "trail ", "nl\n"] {
            assert_eq!(
                err(&with(json!(bad))).1,
                Violation::InvalidCharacters(PRINTABLE),
                "{bad:?}"
            );
        }
        assert_eq!(
            err(&with(Value::Null)),
            ("sourceSystemName".into(), Violation::Required)
        );
        assert_eq!(err(&with(json!(["x"]))).1, Violation::WrongType("a string"));
    }

    #[test]
    fn structure_rules() {
        let mut v = body();
        v["id"] = json!("x");
        assert_eq!(err(&v), ("id".into(), Violation::UnknownField));
        let mut v = body();
        v["resource"]["value"] = json!("Ana");
        assert_eq!(err(&v), ("resource.value".into(), Violation::UnknownField));
        let mut v = body();
        v["resource"] = json!("patient");
        assert_eq!(
            err(&v),
            ("resource".into(), Violation::WrongType("an object"))
        );
        let mut v = body();
        v.as_object_mut().unwrap().remove("resource");
        assert_eq!(err(&v), ("resource".into(), Violation::Required));
        for k in ["type", "id", "operation"] {
            let mut v = body();
            v["resource"].as_object_mut().unwrap().remove(k);
            assert_eq!(err(&v), (format!("resource.{k}"), Violation::Required));
        }
        let mut v = body();
        v["resource"]["type"] = json!("Patient");
        assert_eq!(
            err(&v),
            (
                "resource.type".into(),
                Violation::NotOneOf(ResourceType::VALUES)
            )
        );
        let mut v = body();
        v["resource"]["operation"] = json!("delete");
        assert_eq!(
            err(&v),
            (
                "resource.operation".into(),
                Violation::NotOneOf(Operation::VALUES)
            )
        );
        assert_eq!(parse_audit_input(b"[]").unwrap_err().field, "body");
        let dup = br#"{"sourceSystemName":"a","sourceSystemName":"b","resource":{}}"#;
        assert_eq!(
            parse_audit_input(dup).unwrap_err().violation,
            Violation::DuplicateField
        );
    }

    #[test]
    fn to_json_round_trips() {
        let plain = parse(&body()).unwrap();
        assert_eq!(plain.to_json(), body());
        let search = AuditInput {
            source_system_name: SourceSystemName::parse("patient-api").unwrap(),
            resource: AuditResource::search(
                ResourceType::Patient,
                ResourceId::parse("*").unwrap(),
                vec![CriterionName::parse("gender").unwrap()],
            )
            .unwrap(),
        };
        let j = search.to_json();
        assert_eq!(j["resource"]["criteria"], json!(["gender"]));
        assert_eq!(parse(&j).unwrap(), search);
    }

    #[test]
    fn search_constructor_checks_criteria() {
        let id = ResourceId::parse("*").unwrap();
        let n = |s: &str| CriterionName::parse(s).unwrap();
        let e = AuditResource::search(ResourceType::Patient, id.clone(), vec![n("a"), n("a")])
            .unwrap_err();
        assert_eq!(e.violation, Violation::DuplicateItem);
        let many: Vec<_> = (0..21).map(|i| n(&"q".repeat(i + 1))).collect();
        let e = AuditResource::search(ResourceType::Patient, id, many).unwrap_err();
        assert_eq!(e.violation, Violation::TooManyItems { max: 20 });
    }

    #[test]
    fn header_values() {
        assert!(CorrelationId::parse("0af7651916cd43dd8448eb211c80319c").is_ok());
        // The longest actor the gateway can name is recorded; one more is not.
        let longest = actor::both(
            &"n".repeat(actor::MAX_SUBSCRIPTION_NAME_CHARS),
            &"s".repeat(actor::MAX_SUBJECT_CHARS),
        );
        assert_eq!(longest.len(), 327);
        assert!(Actor::parse(&longest).is_ok());
        assert_eq!(
            Actor::parse(&format!("{longest}s")).unwrap_err().violation,
            Violation::TooLong { max: 327 }
        );
        assert_eq!(
            Actor::parse("").unwrap_err(),
            AuditInputError::new("actor", Violation::Empty)
        );
        assert_eq!(
            CorrelationId::parse("a\r\nb").unwrap_err().field,
            "correlationId"
        );
        assert_eq!(
            Actor::parse("ü").unwrap_err().violation,
            Violation::InvalidCharacters(PRINTABLE)
        );
        // Over-long non-ASCII text is reported as bad characters, not length.
        assert_eq!(
            Actor::parse(&"ü".repeat(100)).unwrap_err().violation,
            Violation::InvalidCharacters(PRINTABLE)
        );
        assert!(Actor::parse("~!@#$%^&*()_+{}|:\"<>?`-=[]\\;',./ x").is_ok());
    }

    #[test]
    fn a_reference_is_a_record_id_in_its_one_spelling() {
        let search = "b0a7651e-16cd-43dd-8448-eb211c80319c";
        let mut v = body();
        v["resource"]["operation"] = json!("search");
        v["resource"]["criteria"] = json!([]);
        v["resource"]["reference"] = json!(search);
        let a = parse(&v).unwrap();
        assert_eq!(a.resource.reference().unwrap().to_string(), search);
        assert_eq!(a.to_json(), v, "round trip");
        for bad in [
            json!("B0A7651E-16CD-43DD-8448-EB211C80319C"),
            json!("b0a7651e16cd43dd8448eb211c80319c"),
            json!("not-a-guid"),
            json!(""),
        ] {
            let mut v = v.clone();
            v["resource"]["reference"] = bad.clone();
            let (field, violation) = err(&v);
            assert_eq!(field, "resource.reference", "{bad}");
            assert!(matches!(violation, Violation::NotCanonical(_)), "{bad}");
        }
        let mut v = v.clone();
        v["resource"]["reference"] = json!(7);
        assert_eq!(err(&v).0, "resource.reference");
    }

    #[test]
    fn a_batch_is_one_to_max_inputs_and_errors_name_the_item() {
        let one = body();
        let ok = parse_audit_batch(json!({"records": [one, one]}).to_string().as_bytes()).unwrap();
        assert_eq!(ok.len(), 2);
        let fails = |v: Value| parse_audit_batch(v.to_string().as_bytes()).unwrap_err();
        assert_eq!(fails(json!({"records": []})).field, "records");
        assert_eq!(fails(json!({})).field, "records");
        assert_eq!(fails(json!({"records": [one], "x": 1})).field, "x");
        let mut bad = body();
        bad["resource"]["id"] = json!("a b");
        assert_eq!(
            fails(json!({"records": [one, bad]})).field,
            "records[1].resource.id"
        );
        let many = vec![body(); MAX_BATCH + 1];
        assert!(matches!(
            fails(json!({"records": many})).violation,
            Violation::TooManyItems { max: MAX_BATCH }
        ));
        assert_eq!(
            parse_audit_batch(
                json!({"records": vec![body(); MAX_BATCH]})
                    .to_string()
                    .as_bytes()
            )
            .unwrap()
            .len(),
            MAX_BATCH
        );
    }
}

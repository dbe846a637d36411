//! The one query shape the store supports:
//!
//! ```text
//! SELECT * FROM <container> [[AS] <alias>]
//!   [WHERE <conj> [OR <conj>]*]
//!   [ORDER BY <alias>.<path> [ASC|DESC]]
//! <conj> := <term> [AND <term>]*
//! <term> := <cond> | ( <conj> )
//! <cond> := <alias>.<path> <op> @param | @param <op> <alias>.<path>
//!         | STARTSWITH(<alias>.<path>, @param)
//! <op>   := = | != | <> | < | <= | > | >=
//! <path> := name (.name | ["name"] | [index])*  (also starting with ["name"])
//! ```
//!
//! So a filter is alternatives of conditions that must all hold (AND binds
//! tighter than OR, as in Cosmos DB SQL): the shape the Cosmos SDKs' ReadMany
//! sends, `(c.id = @i0 AND c.pk = @p0) OR (c.id = @i1 AND c.pk = @p1)`.
//! OR inside parentheses is refused.
//!
//! Keywords are case-insensitive. Values are only ever parameters: a literal
//! in a query is refused, so no value can reach the SQL text.
//! Anything else is an [`UnsupportedQuery`] naming the construct.

/// A query the store can run.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    /// The filter in disjunctive normal form: a document matches when it
    /// meets every condition of at least one alternative. A query without
    /// WHERE has one alternative with no conditions: everything matches.
    pub alternatives: Vec<Vec<Condition>>,
    pub order_by: Option<OrderBy>,
}

/// At most this many alternatives (`... OR ...`): one per document of a
/// ReadMany of a page, with room to spare, and a bound on the SQL it makes.
pub const MAX_ALTERNATIVES: usize = 100;

/// Parentheses nest at most this deep (the parser recurses into them).
const MAX_NESTING: usize = 8;

impl Query {
    /// Every condition of every alternative.
    pub fn conditions(&self) -> impl Iterator<Item = &Condition> {
        self.alternatives.iter().flatten()
    }
}

/// One step of a property path from the document root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathStep {
    Key(String),
    Index(u32),
}

/// A property path from the document root, e.g. `c.a.b` or `c["a"][0]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PropertyPath(Vec<PathStep>);

impl PropertyPath {
    pub fn steps(&self) -> &[PathStep] {
        &self.0
    }

    /// The SQLite JSON path (`$."a"[0]`). Keys never contain `"` (the parser
    /// refuses them), so quoting each key is enough. The result is always
    /// bound as a parameter, never spliced into SQL.
    pub fn sqlite_json_path(&self) -> String {
        let mut out = String::from("$");
        for step in &self.0 {
            match step {
                PathStep::Key(key) => {
                    out.push_str(".\"");
                    out.push_str(key);
                    out.push('"');
                }
                PathStep::Index(i) => out.push_str(&format!("[{i}]")),
            }
        }
        out
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl CompareOp {
    /// The operator with its operands swapped (`@p < c.x` is `c.x > @p`).
    fn flipped(self) -> Self {
        match self {
            CompareOp::Eq => CompareOp::Eq,
            CompareOp::Ne => CompareOp::Ne,
            CompareOp::Lt => CompareOp::Gt,
            CompareOp::Le => CompareOp::Ge,
            CompareOp::Gt => CompareOp::Lt,
            CompareOp::Ge => CompareOp::Le,
        }
    }

    /// The SQL spelling: one of a fixed set of operators.
    pub fn sql(self) -> &'static str {
        match self {
            CompareOp::Eq => "=",
            CompareOp::Ne => "<>",
            CompareOp::Lt => "<",
            CompareOp::Le => "<=",
            CompareOp::Gt => ">",
            CompareOp::Ge => ">=",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    /// `path op @param`
    Compare {
        path: PropertyPath,
        op: CompareOp,
        param: String,
    },
    /// `STARTSWITH(path, @param)`
    StartsWith { path: PropertyPath, param: String },
}

#[derive(Debug, Clone, PartialEq)]
pub struct OrderBy {
    pub path: PropertyPath,
    pub descending: bool,
}

/// Why a query is refused: names the construct the store does not support.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsupportedQuery(pub String);

impl std::fmt::Display for UnsupportedQuery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Unsupported query: {}", self.0)
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Ident(String),
    Param(String),
    Str(String),
    Number(String),
    Symbol(&'static str),
}

impl Token {
    fn describe(&self) -> String {
        match self {
            Token::Ident(s) => format!("'{s}'"),
            Token::Param(s) => format!("parameter '{s}'"),
            Token::Str(_) => "a string literal".to_string(),
            Token::Number(n) => format!("the number literal {n}"),
            Token::Symbol(s) => format!("'{s}'"),
        }
    }

    fn is_keyword(&self, keyword: &str) -> bool {
        matches!(self, Token::Ident(s) if s.eq_ignore_ascii_case(keyword))
    }
}

const SYMBOLS: [&str; 17] = [
    "!=", "<>", "<=", ">=", "||", "??", "=", "<", ">", "*", ",", ".", "(", ")", "[", "]", "+",
];

// Words that cannot be an alias (a subset of Cosmos DB's reserved words that
// could otherwise be mistaken for one here).
const RESERVED: &[&str] = &[
    "select",
    "from",
    "where",
    "and",
    "or",
    "not",
    "order",
    "by",
    "asc",
    "desc",
    "as",
    "in",
    "join",
    "top",
    "value",
    "offset",
    "limit",
    "group",
    "having",
    "like",
    "between",
    "exists",
    "true",
    "false",
    "null",
    "undefined",
    "distinct",
];

fn unsupported(what: impl Into<String>) -> UnsupportedQuery {
    UnsupportedQuery(what.into())
}

fn tokenize(text: &str) -> Result<Vec<Token>, UnsupportedQuery> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '-' && chars.get(i + 1) == Some(&'-') {
            return Err(unsupported("comments (--)"));
        } else if c.is_ascii_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            tokens.push(Token::Ident(chars[start..i].iter().collect()));
        } else if c == '@' {
            let start = i;
            i += 1;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            if i == start + 1 {
                return Err(unsupported("'@' without a parameter name"));
            }
            tokens.push(Token::Param(chars[start..i].iter().collect()));
        } else if c.is_ascii_digit() {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                i += 1;
            }
            tokens.push(Token::Number(chars[start..i].iter().collect()));
        } else if c == '"' || c == '\'' {
            let quote = c;
            let mut value = String::new();
            i += 1;
            loop {
                match chars.get(i) {
                    None => return Err(unsupported("an unterminated string literal")),
                    Some(&ch) if ch == quote => {
                        i += 1;
                        break;
                    }
                    Some('\\') => {
                        let escaped = chars
                            .get(i + 1)
                            .ok_or_else(|| unsupported("an unterminated string literal"))?;
                        value.push(match escaped {
                            'n' => '\n',
                            't' => '\t',
                            'r' => '\r',
                            other => *other,
                        });
                        i += 2;
                    }
                    Some(&ch) => {
                        value.push(ch);
                        i += 1;
                    }
                }
            }
            tokens.push(Token::Str(value));
        } else {
            let rest: String = chars[i..chars.len().min(i + 2)].iter().collect();
            let symbol = SYMBOLS
                .iter()
                .find(|s| rest.starts_with(**s))
                .ok_or_else(|| unsupported(format!("the character '{c}'")))?;
            i += symbol.chars().count();
            tokens.push(Token::Symbol(symbol));
        }
    }
    Ok(tokens)
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
    alias: String,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    fn next(&mut self) -> Option<Token> {
        let token = self.tokens.get(self.pos).cloned();
        self.pos += 1;
        token
    }

    fn describe_next(&self) -> String {
        self.peek()
            .map_or_else(|| "the end of the query".to_string(), Token::describe)
    }

    fn expect_keyword(&mut self, keyword: &str, context: &str) -> Result<(), UnsupportedQuery> {
        if self.peek().is_some_and(|t| t.is_keyword(keyword)) {
            self.pos += 1;
            Ok(())
        } else {
            Err(unsupported(format!(
                "expected {} {context}, found {}",
                keyword.to_uppercase(),
                self.describe_next()
            )))
        }
    }

    fn eat_symbol(&mut self, symbol: &str) -> bool {
        if matches!(self.peek(), Some(Token::Symbol(s)) if *s == symbol) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn identifier(&mut self, what: &str) -> Result<String, UnsupportedQuery> {
        match self.next() {
            Some(Token::Ident(name)) if !RESERVED.contains(&name.to_ascii_lowercase().as_str()) => {
                Ok(name)
            }
            other => Err(unsupported(format!(
                "expected {what}, found {}",
                other.map_or_else(|| "the end of the query".to_string(), |t| t.describe())
            ))),
        }
    }

    /// `alias.a["b"][0]`: the alias, then at least one step.
    fn property_path(&mut self) -> Result<PropertyPath, UnsupportedQuery> {
        match self.next() {
            Some(Token::Ident(name)) if name == self.alias => {}
            Some(Token::Ident(name)) => {
                return Err(unsupported(format!(
                    "'{name}' is not the query's alias '{}' (property paths start with it)",
                    self.alias
                )))
            }
            Some(Token::Str(_)) | Some(Token::Number(_)) => {
                return Err(unsupported(
                    "literal values (pass values as parameters such as @value)",
                ))
            }
            other => {
                return Err(unsupported(format!(
                    "expected a property path such as {}.name, found {}",
                    self.alias,
                    other.map_or_else(|| "the end of the query".to_string(), |t| t.describe())
                )))
            }
        }
        let mut steps = Vec::new();
        loop {
            if self.eat_symbol(".") {
                match self.next() {
                    Some(Token::Ident(name)) => steps.push(PathStep::Key(name)),
                    other => {
                        return Err(unsupported(format!(
                            "expected a property name after '.', found {}",
                            other.map_or_else(
                                || "the end of the query".to_string(),
                                |t| t.describe()
                            )
                        )))
                    }
                }
            } else if self.eat_symbol("[") {
                match self.next() {
                    Some(Token::Str(key)) => {
                        if key.contains('"') {
                            return Err(unsupported("property names containing '\"'"));
                        }
                        // SQLite's JSON paths end at NUL and read backslashes
                        // as escapes, so such names would fail or match the
                        // wrong property.
                        if key.contains('\0') {
                            return Err(unsupported("property names containing NUL"));
                        }
                        if key.contains('\\') {
                            return Err(unsupported("property names containing '\\'"));
                        }
                        steps.push(PathStep::Key(key));
                    }
                    Some(Token::Number(n)) => {
                        let index = n
                            .parse::<u32>()
                            .map_err(|_| unsupported(format!("the array index {n}")))?;
                        steps.push(PathStep::Index(index));
                    }
                    other => {
                        return Err(unsupported(format!(
                        "expected a quoted property name or an array index inside [ ], found {}",
                        other.map_or_else(|| "the end of the query".to_string(), |t| t.describe())
                    )))
                    }
                }
                if !self.eat_symbol("]") {
                    return Err(unsupported(format!(
                        "expected ']', found {}",
                        self.describe_next()
                    )));
                }
            } else {
                break;
            }
        }
        if steps.is_empty() {
            return Err(unsupported(format!(
                "a bare '{}' (compare a property such as {}.name)",
                self.alias, self.alias
            )));
        }
        Ok(PropertyPath(steps))
    }

    fn operator(&mut self) -> Result<CompareOp, UnsupportedQuery> {
        let op = match self.peek() {
            Some(Token::Symbol("=")) => CompareOp::Eq,
            Some(Token::Symbol("!=")) | Some(Token::Symbol("<>")) => CompareOp::Ne,
            Some(Token::Symbol("<")) => CompareOp::Lt,
            Some(Token::Symbol("<=")) => CompareOp::Le,
            Some(Token::Symbol(">")) => CompareOp::Gt,
            Some(Token::Symbol(">=")) => CompareOp::Ge,
            Some(t) if t.is_keyword("in") => return Err(unsupported("the IN operator")),
            Some(t) if t.is_keyword("like") => return Err(unsupported("the LIKE operator")),
            Some(t) if t.is_keyword("between") => return Err(unsupported("the BETWEEN operator")),
            _ => {
                return Err(unsupported(format!(
                    "expected a comparison operator (= != <> < <= > >=), found {}",
                    self.describe_next()
                )))
            }
        };
        self.pos += 1;
        Ok(op)
    }

    fn parameter(&mut self) -> Result<String, UnsupportedQuery> {
        match self.next() {
            Some(Token::Param(name)) => Ok(name),
            Some(Token::Str(_)) | Some(Token::Number(_)) => Err(unsupported(
                "literal values (pass values as parameters such as @value)",
            )),
            Some(t) if t.is_keyword("true") || t.is_keyword("false") || t.is_keyword("null") => {
                Err(unsupported(
                    "literal values (pass values as parameters such as @value)",
                ))
            }
            other => Err(unsupported(format!(
                "expected a parameter such as @value, found {}",
                other.map_or_else(|| "the end of the query".to_string(), |t| t.describe())
            ))),
        }
    }

    /// Conditions joined by AND, each a condition or a parenthesised
    /// conjunction (flattened: `a AND (b AND c)` is `a AND b AND c`).
    fn conjunction(&mut self, depth: usize) -> Result<Vec<Condition>, UnsupportedQuery> {
        let mut conditions = Vec::new();
        loop {
            if self.eat_symbol("(") {
                if depth == MAX_NESTING {
                    return Err(unsupported(format!(
                        "parentheses nested more than {MAX_NESTING} deep"
                    )));
                }
                conditions.extend(self.conjunction(depth + 1)?);
                if self.peek().is_some_and(|t| t.is_keyword("or")) {
                    return Err(unsupported(
                        "OR inside parentheses (write the filter as alternatives: (a AND b) OR (c AND d))",
                    ));
                }
                if !self.eat_symbol(")") {
                    return Err(unsupported(format!(
                        "expected ')', found {}",
                        self.describe_next()
                    )));
                }
            } else {
                conditions.push(self.condition()?);
            }
            match self.peek() {
                Some(t) if t.is_keyword("and") => self.pos += 1,
                _ => return Ok(conditions),
            }
        }
    }

    fn condition(&mut self) -> Result<Condition, UnsupportedQuery> {
        match self.peek().cloned() {
            Some(Token::Param(_)) => {
                let param = self.parameter()?;
                let op = self.operator()?.flipped();
                let path = self.property_path()?;
                Ok(Condition::Compare { path, op, param })
            }
            Some(t) if t.is_keyword("startswith") => {
                self.pos += 1;
                if !self.eat_symbol("(") {
                    return Err(unsupported(format!(
                        "expected '(' after STARTSWITH, found {}",
                        self.describe_next()
                    )));
                }
                let path = self.property_path()?;
                if !self.eat_symbol(",") {
                    return Err(unsupported(format!(
                        "expected ',' in STARTSWITH, found {}",
                        self.describe_next()
                    )));
                }
                let param = self.parameter()?;
                if self.eat_symbol(",") {
                    return Err(unsupported(
                        "STARTSWITH with a third (ignore case) argument",
                    ));
                }
                if !self.eat_symbol(")") {
                    return Err(unsupported(format!(
                        "expected ')' after STARTSWITH arguments, found {}",
                        self.describe_next()
                    )));
                }
                Ok(Condition::StartsWith { path, param })
            }
            Some(Token::Ident(name)) if name == self.alias => {
                let path = self.property_path()?;
                let op = self.operator()?;
                let param = self.parameter()?;
                Ok(Condition::Compare { path, op, param })
            }
            Some(Token::Ident(name))
                if self.tokens.get(self.pos + 1) == Some(&Token::Symbol("(")) =>
            {
                Err(unsupported(format!("the function {}", name.to_uppercase())))
            }
            Some(t) if t.is_keyword("not") => Err(unsupported("NOT")),
            // Not the alias, a literal, or the end: `property_path` names it.
            _ => Err(self
                .property_path()
                .err()
                .unwrap_or_else(|| unsupported("a condition that is not a comparison"))),
        }
    }
}

/// Parses a query of the supported shape.
pub fn parse(text: &str) -> Result<Query, UnsupportedQuery> {
    let tokens = tokenize(text)?;
    let mut parser = Parser {
        tokens,
        pos: 0,
        alias: String::new(),
    };
    parser.expect_keyword("select", "at the start")?;
    if let Some(t) = parser.peek() {
        for word in ["top", "value", "distinct"] {
            if t.is_keyword(word) {
                return Err(unsupported(format!("SELECT {}", word.to_uppercase())));
            }
        }
    }
    if !parser.eat_symbol("*") {
        return Err(unsupported(format!(
            "projections (only SELECT * is supported), found {}",
            parser.describe_next()
        )));
    }
    parser.expect_keyword("from", "after SELECT *")?;
    let container = parser.identifier("a container name after FROM")?;
    parser.alias = container;
    if parser.peek().is_some_and(|t| t.is_keyword("as")) {
        parser.pos += 1;
        parser.alias = parser.identifier("an alias after AS")?;
    } else if let Some(Token::Ident(name)) = parser.peek().cloned() {
        if !RESERVED.contains(&name.to_ascii_lowercase().as_str()) {
            parser.pos += 1;
            parser.alias = name;
        }
    }
    if parser.peek().is_some_and(|t| t.is_keyword("join")) {
        return Err(unsupported("JOIN"));
    }
    let mut alternatives = vec![Vec::new()];
    if parser.peek().is_some_and(|t| t.is_keyword("where")) {
        parser.pos += 1;
        alternatives.clear();
        loop {
            alternatives.push(parser.conjunction(0)?);
            if !parser.peek().is_some_and(|t| t.is_keyword("or")) {
                break;
            }
            if alternatives.len() == MAX_ALTERNATIVES {
                return Err(unsupported(format!(
                    "more than {MAX_ALTERNATIVES} alternatives joined by OR"
                )));
            }
            parser.pos += 1;
        }
    }
    let mut order_by = None;
    if parser.peek().is_some_and(|t| t.is_keyword("order")) {
        parser.pos += 1;
        parser.expect_keyword("by", "after ORDER")?;
        let path = parser.property_path()?;
        let descending = match parser.peek() {
            Some(t) if t.is_keyword("desc") => {
                parser.pos += 1;
                true
            }
            Some(t) if t.is_keyword("asc") => {
                parser.pos += 1;
                false
            }
            _ => false,
        };
        if parser.eat_symbol(",") {
            return Err(unsupported("ORDER BY on more than one property"));
        }
        order_by = Some(OrderBy { path, descending });
    }
    match parser.peek() {
        None => Ok(Query {
            alternatives,
            order_by,
        }),
        Some(t) if t.is_keyword("group") => Err(unsupported("GROUP BY")),
        Some(t) if t.is_keyword("offset") => Err(unsupported("OFFSET ... LIMIT")),
        Some(t) if t.is_keyword("order") => Err(unsupported("ORDER BY in this position")),
        Some(t) => Err(unsupported(format!(
            "unexpected {} after the query",
            t.describe()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(name: &str) -> PathStep {
        PathStep::Key(name.to_string())
    }

    #[test]
    fn accepts_the_supported_shapes() {
        assert_eq!(
            parse("SELECT * FROM c").unwrap(),
            Query {
                alternatives: vec![vec![]],
                order_by: None
            }
        );
        let q = parse(
            "select * from root r where r.a.b = @x and @y <= r[\"weird key\"] AND STARTSWITH(r.name, @p) order by r.n desc",
        )
        .unwrap();
        assert_eq!(
            q.alternatives,
            vec![vec![
                Condition::Compare {
                    path: PropertyPath(vec![key("a"), key("b")]),
                    op: CompareOp::Eq,
                    param: "@x".into()
                },
                Condition::Compare {
                    path: PropertyPath(vec![key("weird key")]),
                    op: CompareOp::Ge,
                    param: "@y".into()
                },
                Condition::StartsWith {
                    path: PropertyPath(vec![key("name")]),
                    param: "@p".into()
                },
            ]]
        );
        assert_eq!(
            q.order_by,
            Some(OrderBy {
                path: PropertyPath(vec![key("n")]),
                descending: true
            })
        );
        let q = parse("SELECT * FROM docs AS d WHERE d.tags[2] <> @t ORDER BY d['x'] ASC").unwrap();
        assert_eq!(
            q.alternatives[0][0],
            Condition::Compare {
                path: PropertyPath(vec![key("tags"), PathStep::Index(2)]),
                op: CompareOp::Ne,
                param: "@t".into()
            }
        );
        assert!(!q.order_by.unwrap().descending);
    }

    #[test]
    fn or_joins_alternatives_and_binds_looser_than_and() {
        let eq = |name: &str, param: &str| Condition::Compare {
            path: PropertyPath(vec![key(name)]),
            op: CompareOp::Eq,
            param: param.into(),
        };
        let q = parse(
            "SELECT * FROM c WHERE (c.id = @i0 AND c.k = @k0) OR c.id = @i1 AND (c.k = @k1) or (c.x = @x AND (c.y = @y))",
        )
        .unwrap();
        assert_eq!(
            q.alternatives,
            vec![
                vec![eq("id", "@i0"), eq("k", "@k0")],
                vec![eq("id", "@i1"), eq("k", "@k1")],
                vec![eq("x", "@x"), eq("y", "@y")],
            ]
        );
        assert_eq!(q.conditions().count(), 6);
        let most = vec!["c.a = @a"; MAX_ALTERNATIVES].join(" OR ");
        assert_eq!(
            parse(&format!("SELECT * FROM c WHERE {most}"))
                .unwrap()
                .alternatives
                .len(),
            MAX_ALTERNATIVES
        );
        let err = parse(&format!("SELECT * FROM c WHERE {most} OR c.a = @a")).unwrap_err();
        assert!(err.0.contains("more than 100 alternatives"), "{err}");
    }

    #[test]
    fn operators_flip_when_the_parameter_comes_first() {
        for (text, op) in [
            ("<", CompareOp::Gt),
            (">=", CompareOp::Le),
            ("!=", CompareOp::Ne),
            ("=", CompareOp::Eq),
        ] {
            let q = parse(&format!("SELECT * FROM c WHERE @v {text} c.n")).unwrap();
            assert!(
                matches!(&q.alternatives[0][0], Condition::Compare { op: o, .. } if *o == op),
                "{text}"
            );
        }
    }

    #[test]
    fn builds_quoted_sqlite_json_paths() {
        let q = parse("SELECT * FROM c WHERE c.a['b.c'][3].d = @x").unwrap();
        let Condition::Compare { path, .. } = &q.alternatives[0][0] else {
            panic!("not a comparison")
        };
        assert_eq!(path.sqlite_json_path(), "$.\"a\".\"b.c\"[3].\"d\"");
    }

    #[test]
    fn rejects_everything_else_naming_the_construct() {
        let cases = [
            ("SELECT c.id FROM c", "projections"),
            ("SELECT VALUE c FROM c", "SELECT VALUE"),
            ("SELECT TOP 5 * FROM c", "SELECT TOP"),
            ("SELECT DISTINCT * FROM c", "SELECT DISTINCT"),
            ("SELECT * FROM c WHERE c.a = 'x'", "literal values"),
            ("SELECT * FROM c WHERE c.a = 5", "literal values"),
            ("SELECT * FROM c WHERE c.a = true", "literal values"),
            (
                "SELECT * FROM c WHERE c.a = @a AND (c.b = @b OR c.c = @c)",
                "OR inside",
            ),
            ("SELECT * FROM c WHERE (c.a = @a OR c.b = @b)", "OR inside"),
            ("SELECT * FROM c WHERE (c.a = @a", "expected ')'"),
            ("SELECT * FROM c WHERE c.a = @a OR", "property path"),
            (
                "SELECT * FROM c WHERE ((((((((((c.a = @a))))))))))",
                "nested",
            ),
            ("SELECT * FROM c WHERE NOT c.a = @a", "NOT"),
            ("SELECT * FROM c WHERE c.a IN (@a)", "IN"),
            ("SELECT * FROM c WHERE c.a LIKE @a", "LIKE"),
            ("SELECT * FROM c WHERE CONTAINS(c.a, @a)", "CONTAINS"),
            ("SELECT * FROM c WHERE STARTSWITH(c.a, @a, true)", "third"),
            ("SELECT * FROM c WHERE x.a = @a", "alias"),
            ("SELECT * FROM c WHERE c = @a", "bare"),
            ("SELECT * FROM c JOIN t IN c.tags", "JOIN"),
            ("SELECT * FROM c ORDER BY c.a, c.b", "more than one"),
            ("SELECT * FROM c OFFSET 1 LIMIT 2", "OFFSET"),
            ("SELECT * FROM c GROUP BY c.a", "GROUP BY"),
            ("SELECT * FROM c; DROP TABLE docstore_documents", "';'"),
            ("SELECT * FROM c -- comment", "comments"),
            ("SELECT * FROM c WHERE c.a = @", "'@'"),
            ("SELECT * FROM c WHERE c.a = \"unterminated", "unterminated"),
            ("SELECT * FROM c WHERE c[\"a\\\"b\"] = @x", "containing"),
            ("DELETE FROM c", "expected SELECT"),
            ("", "expected SELECT"),
            ("SELECT * FROM c WHERE c.a = @a AND", "property path"),
            ("SELECT * FROM c WHERE c.a + @b = @a", "comparison operator"),
        ];
        for (query, fragment) in cases {
            let err = parse(query).expect_err(query);
            assert!(
                err.to_string().starts_with("Unsupported query: "),
                "{query}"
            );
            assert!(
                err.0.contains(fragment),
                "{query}: {err} lacks {fragment:?}"
            );
        }
    }
}

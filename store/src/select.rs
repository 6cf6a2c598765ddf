//! Series selectors: `name{label="value",…}` with exact, negated and glob matchers.

use crate::model::SeriesKey;

/// How to compare a label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchOp {
    /// `k="v"`.
    Eq,
    /// `k!="v"`.
    Ne,
    /// `k=~"glob*"` (a shell glob with `*` and `?`, not a regex).
    Glob,
    /// `k!~"glob*"`.
    NotGlob,
}

/// One label matcher. A missing label matches as the empty string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Matcher {
    /// Label key.
    pub key: String,
    /// Comparison.
    pub op: MatchOp,
    /// Value or glob.
    pub value: String,
}

impl Matcher {
    /// Whether `key` satisfies this matcher.
    pub fn matches(&self, key: &SeriesKey) -> bool {
        let v = key.get(&self.key).unwrap_or("");
        match self.op {
            MatchOp::Eq => v == self.value,
            MatchOp::Ne => v != self.value,
            MatchOp::Glob => glob_match(&self.value, v),
            MatchOp::NotGlob => !glob_match(&self.value, v),
        }
    }
}

/// Series by name (a glob; empty means any) and label matchers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selector {
    /// Metric name or glob.
    pub name: String,
    /// Label matchers, all of which must hold.
    pub matchers: Vec<Matcher>,
}

impl Selector {
    /// Series called `name` (exactly, or a glob).
    pub fn name(name: &str) -> Self {
        Self { name: name.to_owned(), matchers: Vec::new() }
    }

    /// Add a matcher.
    pub fn with(mut self, key: &str, op: MatchOp, value: &str) -> Self {
        self.matchers.push(Matcher { key: key.to_owned(), op, value: value.to_owned() });
        self
    }

    /// Parse `name{k="v",k2!="w",k3=~"glob*"}` (braces optional).
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let (name, rest) = match text.find('{') {
            Some(i) => (&text[..i], Some(&text[i + 1..])),
            None => (text, None),
        };
        let mut sel = Selector::name(name.trim());
        let Some(rest) = rest else { return Ok(sel) };
        let body = rest.strip_suffix('}').ok_or_else(|| format!("invalid selector '{text}': missing closing '}}'"))?;
        let mut chars = body.chars().peekable();
        loop {
            while chars.peek().is_some_and(|c| c.is_whitespace() || *c == ',') {
                chars.next();
            }
            if chars.peek().is_none() {
                break;
            }
            let key: String =
                std::iter::from_fn(|| chars.next_if(|c| c.is_alphanumeric() || "_.-".contains(*c))).collect();
            if key.is_empty() {
                return Err(format!("invalid selector '{text}': expected a label name like op=\"vm.list\""));
            }
            let op = match (chars.next(), chars.peek().copied()) {
                (Some('='), Some('~')) => {
                    chars.next();
                    MatchOp::Glob
                }
                (Some('='), _) => MatchOp::Eq,
                (Some('!'), Some('=')) => {
                    chars.next();
                    MatchOp::Ne
                }
                (Some('!'), Some('~')) => {
                    chars.next();
                    MatchOp::NotGlob
                }
                _ => return Err(format!("invalid selector '{text}': expected =, !=, =~ or !~ after '{key}'")),
            };
            if chars.next() != Some('"') {
                return Err(format!("invalid selector '{text}': the value of '{key}' must be in double quotes"));
            }
            let mut value = String::new();
            loop {
                match chars.next() {
                    Some('\\') => value.extend(chars.next()),
                    Some('"') => break,
                    Some(c) => value.push(c),
                    None => return Err(format!("invalid selector '{text}': unterminated value of '{key}'")),
                }
            }
            sel.matchers.push(Matcher { key, op, value });
        }
        Ok(sel)
    }

    /// Whether a series matches.
    pub fn matches(&self, key: &SeriesKey) -> bool {
        (self.name.is_empty() || glob_match(&self.name, &key.name)) && self.matchers.iter().all(|m| m.matches(key))
    }
}

/// Shell-style glob: `*` any run, `?` any one character.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            pi += 1;
            mark = ti;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selector_parses_matchers_and_reports_errors() {
        let s = Selector::parse(r#"op.duration{op="vm.list", outcome!="ok",service=~"api-*"}"#).unwrap();
        assert_eq!(s.name, "op.duration");
        assert_eq!(s.matchers.len(), 3);
        assert_eq!(s.matchers[1].op, MatchOp::Ne);
        assert_eq!(s.matchers[2].op, MatchOp::Glob);
        let err = Selector::parse(r#"x{op=vm}"#).unwrap_err();
        assert!(err.contains("double quotes"), "{err}");
        assert!(Selector::parse("x{op=\"a\"").unwrap_err().contains("closing"));
    }

    #[test]
    fn glob() {
        assert!(glob_match("vm.*", "vm.list"));
        assert!(glob_match("*", ""));
        assert!(glob_match("a?c", "abc"));
        assert!(!glob_match("vm.*", "blob.read"));
        assert!(glob_match("*.read", "blob.read"));
    }
}

//! A small glob matcher for command names: `*`, `?`, `[set]` / `[a-z]` / `[!set]`, `\` escapes.

/// One element of a compiled pattern.
#[derive(Debug, Clone, PartialEq)]
enum Token {
    Literal(char),
    Any,
    Star,
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
}

/// A compiled glob that matches a whole string.
#[derive(Debug, Clone, PartialEq)]
pub struct Glob {
    tokens: Vec<Token>,
}

/// Longest pattern accepted, in bytes.
pub const MAX_PATTERN_BYTES: usize = 256;

impl Glob {
    /// Compiles `pattern`; `Err` says what is wrong with it.
    pub fn new(pattern: &str) -> Result<Self, String> {
        if pattern.len() > MAX_PATTERN_BYTES {
            return Err(format!(
                "pattern of {} bytes is longer than {MAX_PATTERN_BYTES}",
                pattern.len()
            ));
        }
        let mut tokens = Vec::new();
        let mut chars = pattern.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '*' => {
                    if tokens.last() != Some(&Token::Star) {
                        tokens.push(Token::Star)
                    }
                }
                '?' => tokens.push(Token::Any),
                '\\' => match chars.next() {
                    Some(e) => tokens.push(Token::Literal(e)),
                    None => return Err("pattern ends with a lone '\\'".into()),
                },
                '[' => {
                    let negated = matches!(chars.peek(), Some('!') | Some('^'));
                    if negated {
                        chars.next();
                    }
                    let mut ranges = Vec::new();
                    let mut closed = false;
                    let mut first = true;
                    while let Some(c) = chars.next() {
                        if c == ']' && !first {
                            closed = true;
                            break;
                        }
                        first = false;
                        let lo = if c == '\\' {
                            chars.next().ok_or("pattern ends inside '[...]'")?
                        } else {
                            c
                        };
                        if chars.peek() == Some(&'-') {
                            chars.next();
                            match chars.next() {
                                Some(']') => {
                                    ranges.push((lo, lo));
                                    ranges.push(('-', '-'));
                                    closed = true;
                                    break;
                                }
                                Some(hi) if hi >= lo => ranges.push((lo, hi)),
                                Some(hi) => {
                                    return Err(format!("bad range '{lo}-{hi}' in '[...]'"));
                                }
                                None => return Err("unclosed '[' in pattern".into()),
                            }
                        } else {
                            ranges.push((lo, lo));
                        }
                    }
                    if !closed {
                        return Err("unclosed '[' in pattern".into());
                    }
                    tokens.push(Token::Class { negated, ranges });
                }
                c => tokens.push(Token::Literal(c)),
            }
        }
        Ok(Self { tokens })
    }

    /// Whether the whole of `text` matches.
    pub fn matches(&self, text: &str) -> bool {
        let text: Vec<char> = text.chars().collect();
        // Iterative matcher with single-star backtracking (linear-ish, no recursion).
        let (mut t, mut p) = (0usize, 0usize);
        let mut star: Option<(usize, usize)> = None;
        while t < text.len() {
            let ok = match self.tokens.get(p) {
                Some(Token::Literal(c)) => *c == text[t],
                Some(Token::Any) => true,
                Some(Token::Class { negated, ranges }) => {
                    ranges.iter().any(|(lo, hi)| (*lo..=*hi).contains(&text[t])) != *negated
                }
                Some(Token::Star) => {
                    star = Some((p, t));
                    p += 1;
                    continue;
                }
                None => false,
            };
            if ok {
                t += 1;
                p += 1;
            } else if let Some((sp, st)) = star {
                p = sp + 1;
                t = st + 1;
                star = Some((sp, st + 1));
            } else {
                return false;
            }
        }
        self.tokens[p..].iter().all(|t| *t == Token::Star)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, t: &str) -> bool {
        Glob::new(p).unwrap().matches(t)
    }

    #[test]
    fn matching() {
        assert!(m("", ""));
        assert!(!m("", "a"));
        assert!(m("*", "anything"));
        assert!(m("ngin?", "nginx"));
        assert!(m("py*", "python3"));
        assert!(!m("py*", "xpython"));
        assert!(m("*sock*", "mysocktest"));
        assert!(m("a*b*c", "aXXbYYc"));
        assert!(!m("a*b*c", "aXXbYY"));
        assert!(m("[a-c]x", "bx"));
        assert!(!m("[!a-c]x", "bx"));
        assert!(m("\\*", "*"));
        assert!(!m("\\*", "a"));
        assert!(m("[]]", "]"));
        assert!(m("[a-]", "-"));
    }

    #[test]
    fn bad_patterns() {
        assert!(Glob::new("[abc").unwrap_err().contains("unclosed"));
        assert!(Glob::new("abc\\").is_err());
        assert!(Glob::new("[z-a]").unwrap_err().contains("bad range"));
        assert!(Glob::new(&"a".repeat(300)).unwrap_err().contains("longer"));
    }
}

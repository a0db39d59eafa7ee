//! A set of prefixes that matches a string in O(log n): sorted, without any prefix of
//! another (the longer one adds nothing), so the greatest prefix <= the string is the only
//! one that can be a prefix of it.

/// Prefixes, sorted and free of redundant ones.
#[derive(Debug, Default, Clone)]
pub struct PrefixSet {
    sorted: Vec<String>,
}

impl PrefixSet {
    pub fn new(prefixes: &[String]) -> Self {
        let mut all: Vec<String> = prefixes.to_vec();
        all.sort_unstable();
        let mut sorted: Vec<String> = Vec::with_capacity(all.len());
        for p in all {
            // Sorted, a prefix comes right before the strings it starts: one check suffices.
            if sorted
                .last()
                .is_none_or(|kept| !p.starts_with(kept.as_str()))
            {
                sorted.push(p);
            }
        }
        Self { sorted }
    }

    pub fn is_empty(&self) -> bool {
        self.sorted.is_empty()
    }

    /// The prefixes, sorted, none a prefix of another.
    pub fn as_slice(&self) -> &[String] {
        &self.sorted
    }

    /// Whether some prefix of the set starts `text`. Any string between a prefix and a
    /// string it starts also starts with it, so with no prefix of another in the set, the
    /// greatest member <= `text` is the only candidate.
    pub fn matches(&self, text: &str) -> bool {
        let after = self.sorted.partition_point(|p| p.as_str() <= text);
        after > 0 && text.starts_with(self.sorted[after - 1].as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(prefixes: &[&str]) -> PrefixSet {
        PrefixSet::new(&prefixes.iter().map(|p| p.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn matches_exactly_the_strings_some_prefix_starts() {
        let s = set(&["3f2a", "77aa00ff", "3f2a9c", "ab", "abc0"]);
        assert_eq!(
            s.sorted,
            ["3f2a", "77aa00ff", "ab"],
            "redundant prefixes are dropped"
        );
        for (id, want) in [
            ("3f2a9c01", true),
            ("3f2a", true),
            ("3f2", false),
            ("3f2b", false),
            ("77aa00ff11", true),
            ("77aa00fe", false),
            ("abz", true),
            ("a", false),
            ("", false),
            ("zz", false),
        ] {
            assert_eq!(s.matches(id), want, "{id}");
        }
        assert!(!set(&[]).matches("x"));
    }

    #[test]
    fn agrees_with_a_linear_scan() {
        // Prefixes of varied lengths over a small alphabet, so many share beginnings.
        let prefixes: Vec<String> = (0..600u32)
            .map(|i| format!("{:x}", i.wrapping_mul(2_654_435_761) % 0x10_0000))
            .map(|p| p[..(p.len() % 4 + 2).min(p.len())].to_owned())
            .collect();
        let s = PrefixSet::new(&prefixes);
        for i in 0..5000u32 {
            let id = format!("{:08x}", i.wrapping_mul(40_503));
            let linear = prefixes.iter().any(|p| id.starts_with(p.as_str()));
            assert_eq!(s.matches(&id), linear, "{id}");
        }
    }
}

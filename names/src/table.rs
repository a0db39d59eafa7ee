//! A name table: (number, name) rows looked up either way, names case-insensitively.

pub type Table = &'static [(i32, &'static str)];

/// The first name given to `value`.
pub fn name_of(table: Table, value: i32) -> Option<&'static str> {
    table.iter().find(|(v, _)| *v == value).map(|(_, n)| *n)
}

/// The number a name (any case) stands for.
pub fn value_of(table: Table, name: &str) -> Option<i32> {
    table
        .iter()
        .find(|(_, n)| n.eq_ignore_ascii_case(name))
        .map(|(v, _)| *v)
}

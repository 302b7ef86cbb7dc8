//! A permissions snapshot `{ role?, modules: string[], pages: { [page]: string[] } }`: read
//! from its stored JSON in one pass, accepted as `checkSnapshot` (lib/permissions/snapshot.js)
//! accepts it, and answered by the rules of `lib/permissions/rules.js` (both held to
//! `__test__/fixtures/permission_rules.json`).
//!
//! Two forms:
//! - [`Stored`]: the JSON read in place, its strings borrowed from it where they hold no
//!   escape. A check whose snapshot nobody keeps (the near cache off or untrusted) is answered
//!   from it, so it costs a scan of the JSON and a few vectors, not a tree of strings.
//! - [`Snapshot`]: owned, with the sets the checks look up built once; what the near cache
//!   keeps and answers from.
//!
//! The reader is a serde visitor rather than `serde_json::Value` because a `Value` allocates
//! every string, array and object of the snapshot (and the sets were built from it again).

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::rules::PERMISSION_WILDCARD;

/// One check of a user's snapshot: `hasModulePermission` or `hasPagePermission`.
#[derive(Debug)]
pub enum Check {
    Module(String),
    Page { page: String, action: String },
}

impl Check {
    pub fn on(&self, s: &Snapshot) -> bool {
        match self {
            Check::Module(m) => s.has_module(m),
            Check::Page { page, action } => s.has_page(page, action),
        }
    }

    /// The same answer as [`on`](Self::on), from the snapshot as read.
    pub fn on_stored(&self, s: &Stored<'_>, super_roles: &[String]) -> bool {
        let granted = |list: &[Cow<'_, str>], what: &str| {
            list.iter().any(|x| x == PERMISSION_WILDCARD || x == what)
        };
        s.is_super(super_roles)
            || match self {
                Check::Module(m) => granted(&s.modules, m),
                // A page named twice: the last one counts (as in JSON.parse).
                Check::Page { page, action } => s
                    .pages
                    .iter()
                    .rev()
                    .find(|(p, _)| p == page)
                    .is_some_and(|(_, actions)| granted(actions, action)),
            }
    }
}

/// A snapshot as read from its JSON (see the module's doc).
pub struct Stored<'a> {
    /// The role as JS `String(role)` spells it (strings and numbers; anything else is no role).
    role: Option<Cow<'a, str>>,
    modules: Vec<Cow<'a, str>>,
    /// In the JSON's order; a page named twice appears twice (the last one counts).
    pages: Vec<(Cow<'a, str>, Vec<Cow<'a, str>>)>,
}

impl<'a> Stored<'a> {
    /// None when `json` is not a snapshot as `setUserPermissions` accepts one: a JSON object
    /// whose `modules`, if present, is an array of strings and whose `pages`, if present, is
    /// an object of string arrays. A key given twice counts by its last value, as in
    /// `JSON.parse`. Such a value is corrupt: never cached near, never answered from.
    pub fn read(json: &'a str) -> Option<Stored<'a>> {
        let mut de = serde_json::Deserializer::from_str(json);
        let stored = de.deserialize_any(Top).ok()??;
        de.end().ok()?;
        Some(stored)
    }

    pub fn is_super(&self, super_roles: &[String]) -> bool {
        self.role
            .as_deref()
            .is_some_and(|r| super_roles.iter().any(|s| s == r))
    }
}

struct Page {
    all: bool,
    actions: HashSet<String>,
}

/// A snapshot with the answers the checks need precomputed (what the near cache keeps).
pub struct Snapshot {
    pub json: String,
    is_super: bool,
    all_modules: bool,
    modules: HashSet<String>,
    pages: HashMap<String, Page>,
}

impl Snapshot {
    /// The snapshot `json` holds, or `json` back when it is not one (see [`Stored::read`]).
    pub fn parse(json: String, super_roles: &[String]) -> Result<Snapshot, String> {
        let built = Stored::read(&json).map(|s| {
            let owned = |list: &[Cow<'_, str>]| -> (bool, HashSet<String>) {
                let all = list.iter().any(|x| x == PERMISSION_WILDCARD);
                (all, list.iter().map(|x| x.to_string()).collect())
            };
            let (all_modules, modules) = owned(&s.modules);
            // Inserted in order: a page named twice keeps its last list.
            let pages = s
                .pages
                .iter()
                .map(|(page, list)| {
                    let (all, actions) = owned(list);
                    (page.to_string(), Page { all, actions })
                })
                .collect();
            (s.is_super(super_roles), all_modules, modules, pages)
        });
        let Some((is_super, all_modules, modules, pages)) = built else {
            return Err(json);
        };
        Ok(Snapshot {
            json,
            is_super,
            all_modules,
            modules,
            pages,
        })
    }

    pub fn has_module(&self, module: &str) -> bool {
        self.is_super || self.all_modules || self.modules.contains(module)
    }

    /// The role is one of the super roles (the JS near cache takes this answer as is, so the
    /// two never disagree on how a numeric role is spelled).
    pub fn is_super(&self) -> bool {
        self.is_super
    }

    pub fn has_page(&self, page: &str, action: &str) -> bool {
        self.is_super
            || self
                .pages
                .get(page)
                .is_some_and(|p| p.all || p.actions.contains(action))
    }
}

// ---- the reader ---------------------------------------------------------------------------
//
// Each visitor answers `Option<…>`: `None` is a value of a kind the place does not take (it
// is consumed whole, so a later key can still replace it; whether it makes the snapshot
// corrupt is decided at the end, by the value that counts).

/// Visitor methods answering `None` for the JSON kinds named (arrays and objects are read
/// through and dropped).
macro_rules! none_for {
    (scalars) => {
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
    };
    (numbers) => {
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
            Ok(None)
        }
    };
    (str) => {
        fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
            Ok(None)
        }
    };
    (seq) => {
        fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Self::Value, A::Error> {
            while a.next_element::<IgnoredAny>()?.is_some() {}
            Ok(None)
        }
    };
    (map) => {
        fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Self::Value, A::Error> {
            while a.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
            Ok(None)
        }
    };
}

/// Implements `DeserializeSeed` for a unit visitor by reading any JSON value with it.
macro_rules! seed_of_any {
    ($t:ty) => {
        impl<'de> DeserializeSeed<'de> for $t {
            type Value = <$t as Visitor<'de>>::Value;
            fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
                d.deserialize_any(self)
            }
        }
    };
}

/// A string, borrowed where the JSON spells it without escapes.
struct Str;

impl<'de> Visitor<'de> for Str {
    type Value = Option<Cow<'de, str>>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string")
    }
    fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Self::Value, E> {
        Ok(Some(Cow::Borrowed(s)))
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
        Ok(Some(Cow::Owned(s.to_string())))
    }
    none_for!(scalars);
    none_for!(numbers);
    none_for!(seq);
    none_for!(map);
}
seed_of_any!(Str);

/// The role as JS `String(role)` spells it: strings, and numbers as `serde_json` writes them.
struct Role;

impl<'de> Visitor<'de> for Role {
    type Value = Option<Cow<'de, str>>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a role")
    }
    fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Self::Value, E> {
        Str.visit_borrowed_str(s)
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
        Str.visit_str(s)
    }
    fn visit_i64<E: de::Error>(self, n: i64) -> Result<Self::Value, E> {
        Ok(Some(Cow::Owned(serde_json::Number::from(n).to_string())))
    }
    fn visit_u64<E: de::Error>(self, n: u64) -> Result<Self::Value, E> {
        Ok(Some(Cow::Owned(serde_json::Number::from(n).to_string())))
    }
    fn visit_f64<E: de::Error>(self, n: f64) -> Result<Self::Value, E> {
        Ok(serde_json::Number::from_f64(n).map(|n| Cow::Owned(n.to_string())))
    }
    none_for!(scalars);
    none_for!(seq);
    none_for!(map);
}
seed_of_any!(Role);

/// An array of strings; `None` for anything else (an array holding a non-string included).
struct Strings;

impl<'de> Visitor<'de> for Strings {
    type Value = Option<Vec<Cow<'de, str>>>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of strings")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Self::Value, A::Error> {
        let mut list = Vec::with_capacity(a.size_hint().unwrap_or(0).min(64));
        let mut all_strings = true;
        while let Some(item) = a.next_element_seed(Str)? {
            match item {
                Some(s) if all_strings => list.push(s),
                Some(_) => {}
                None => all_strings = false,
            }
        }
        Ok(all_strings.then_some(list))
    }
    none_for!(scalars);
    none_for!(numbers);
    none_for!(str);
    none_for!(map);
}
seed_of_any!(Strings);

/// An object of string arrays, in order; `None` for anything else.
struct Pages;

impl<'de> Visitor<'de> for Pages {
    type Value = Option<Vec<(Cow<'de, str>, Vec<Cow<'de, str>>)>>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object of string arrays")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Self::Value, A::Error> {
        let mut read = Vec::new();
        while let Some(page) = a.next_key_seed(Str)? {
            // A JSON object's keys are strings.
            let page = page.ok_or_else(|| de::Error::custom("a key that is not a string"))?;
            read.push((page, a.next_value_seed(Strings)?));
        }
        // A page whose list is not a string array is corrupt unless a later entry of the same
        // page replaces it.
        let replaced = |i: usize| read[i + 1..].iter().any(|(p, _)| *p == read[i].0);
        if (0..read.len()).any(|i| read[i].1.is_none() && !replaced(i)) {
            return Ok(None);
        }
        Ok(Some(
            read.into_iter()
                .filter_map(|(page, list)| Some((page, list?)))
                .collect(),
        ))
    }
    none_for!(scalars);
    none_for!(numbers);
    none_for!(str);
    none_for!(seq);
}
seed_of_any!(Pages);

/// The snapshot object; `None` for any other JSON value or a field of the wrong kind.
struct Top;

impl<'de> Visitor<'de> for Top {
    type Value = Option<Stored<'de>>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a permissions snapshot")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Self::Value, A::Error> {
        let mut role = None;
        // Some(None): present, and not what a snapshot holds there.
        let mut modules = None;
        let mut pages = None;
        while let Some(key) = a.next_key_seed(Str)? {
            match key.as_deref() {
                Some("role") => role = a.next_value_seed(Role)?,
                Some("modules") => modules = Some(a.next_value_seed(Strings)?),
                Some("pages") => pages = Some(a.next_value_seed(Pages)?),
                _ => {
                    a.next_value::<IgnoredAny>()?;
                }
            }
        }
        let (Some(modules), Some(pages)) = (
            modules.unwrap_or(Some(Vec::new())),
            pages.unwrap_or(Some(Vec::new())),
        ) else {
            return Ok(None);
        };
        Ok(Some(Stored {
            role,
            modules,
            pages,
        }))
    }
    none_for!(scalars);
    none_for!(numbers);
    none_for!(str);
    none_for!(seq);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(p: &str, a: &str) -> Check {
        Check::Page {
            page: p.into(),
            action: a.into(),
        }
    }

    /// Both forms give the same answers, and a value is corrupt for both or for neither.
    fn agree(json: &str, roles: &[String], checks: &[Check]) -> Option<Vec<bool>> {
        let stored = Stored::read(json);
        let snap = Snapshot::parse(json.to_string(), roles).ok();
        assert_eq!(stored.is_some(), snap.is_some(), "{json}");
        let (stored, snap) = (stored?, snap?);
        assert_eq!(stored.is_super(roles), snap.is_super(), "{json}");
        Some(
            checks
                .iter()
                .map(|c| {
                    let (a, b) = (c.on_stored(&stored, roles), c.on(&snap));
                    assert_eq!(a, b, "{json}");
                    a
                })
                .collect(),
        )
    }

    #[test]
    fn a_key_given_twice_counts_by_its_last_value_as_in_json_parse() {
        let none: &[String] = &[];
        let c = [Check::Module("A".into()), Check::Module("B".into())];
        assert_eq!(
            agree(r#"{"modules":["A"],"modules":["B"]}"#, none, &c),
            Some(vec![false, true])
        );
        assert_eq!(
            agree(r#"{"modules":[1],"modules":["A"]}"#, none, &c),
            Some(vec![true, false])
        );
        assert_eq!(agree(r#"{"modules":["A"],"modules":null}"#, none, &c), None);
        let p = [page("p", "view"), page("p", "edit")];
        assert_eq!(
            agree(r#"{"pages":{"p":["view"],"p":["edit"]}}"#, none, &p),
            Some(vec![false, true])
        );
        assert_eq!(
            agree(r#"{"pages":{"p":"view","p":["edit"]}}"#, none, &p),
            Some(vec![false, true])
        );
        assert_eq!(agree(r#"{"pages":{"p":["view"],"p":7}}"#, none, &p), None);
        assert_eq!(
            agree(r#"{"pages":{"p":["view"]},"pages":[]}"#, none, &p),
            None
        );
    }

    #[test]
    fn escapes_nesting_and_other_keys_read_as_json_parse_reads_them() {
        let none: &[String] = &[];
        let c = [Check::Module("SALES".into()), page("a\"b", "view")];
        assert_eq!(
            agree(
                r#"{"other":{"deep":[[1,{"x":null}]]},"mod\u0075les":["SAL\u0045S"],"pages":{"a\"b":["view"]}}"#,
                none,
                &c
            ),
            Some(vec![true, true])
        );
        // Trailing text after the object is not JSON.
        assert_eq!(agree(r#"{"modules":["SALES"]} x"#, none, &c), None);
        assert_eq!(
            agree(r#"  {"modules":["SALES"]}  "#, none, &c),
            Some(vec![true, false])
        );
    }

    #[test]
    fn a_numeric_role_is_spelled_as_before() {
        let roles = ["7".to_string(), "1.5".to_string()];
        let c = [Check::Module("X".into())];
        assert_eq!(agree(r#"{"role":7}"#, &roles, &c), Some(vec![true]));
        assert_eq!(agree(r#"{"role":1.5}"#, &roles, &c), Some(vec![true]));
        assert_eq!(agree(r#"{"role":-3}"#, &roles, &c), Some(vec![false]));
        assert_eq!(
            agree(r#"{"role":true}"#, &["true".into()], &c),
            Some(vec![false])
        );
        assert_eq!(agree(r#"{"role":["7"]}"#, &roles, &c), Some(vec![false]));
    }
}

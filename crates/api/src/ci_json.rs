//! The lenient JSON reader of every v5 route, as the wire rules ask (`api-v5-jobs.md`).
//!
//! - Property names and enum values in any case: serde's derive tells a deserializer the exact
//!   field names of each struct it builds (`deserialize_struct(name, fields, ..)`); this
//!   deserializer wraps a parsed `serde_json::Value` and, at each object, renames incoming keys to
//!   the field they match ignoring letter case, and does the same for string-valued enum variants.
//! - Booleans and numbers also as strings (`"true"`, `"True"`, `"3"`): portals build bodies by
//!   string concatenation.
//! - A trailing comma before `]` or `}` is dropped before parsing.
//! - Unknown properties stay unknown (ignored unless a type denies them), so a client may send
//!   back an object it fetched, `id` and `_links` included.
//!
//! Anything else malformed is a 400 whose text carries the path of the offending value
//! (`[0].groupMember.login`).

use std::borrow::Cow;

use serde::de::{
    self, DeserializeOwned, DeserializeSeed, IntoDeserializer, MapAccess, SeqAccess, Visitor,
};
use serde::forward_to_deserialize_any;
use serde_json::{Map, Value};

/// Parses a JSON body into `T`. The error text is meant for the client.
pub fn from_slice<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    let value: Value = serde_json::from_slice(&without_trailing_commas(bytes))
        .map_err(|e| format!("malformed JSON: {e}"))?;
    from_value(value)
}

/// `bytes` with every comma that is followed (after whitespace) by `]` or `}` removed, outside
/// string literals.
pub(crate) fn without_trailing_commas(bytes: &[u8]) -> Cow<'_, [u8]> {
    let mut out: Option<Vec<u8>> = None;
    let (mut in_string, mut escaped) = (false, false);
    for (i, &b) in bytes.iter().enumerate() {
        let mut keep = true;
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
        } else if b == b'"' {
            in_string = true;
        } else if b == b',' {
            let next = bytes[i + 1..].iter().find(|c| !c.is_ascii_whitespace());
            keep = !matches!(next, Some(b']' | b'}'));
        }
        match (&mut out, keep) {
            (Some(o), true) => o.push(b),
            (None, false) => out = Some(bytes[..i].to_vec()),
            _ => {}
        }
    }
    match out {
        Some(o) => Cow::Owned(o),
        None => Cow::Borrowed(bytes),
    }
}

pub fn from_value<T: DeserializeOwned>(value: Value) -> Result<T, String> {
    serde_path_to_error::deserialize(CiValue(value)).map_err(|e| {
        let path = e.path().to_string();
        if path == "." {
            format!("invalid request body: {}", e.inner())
        } else {
            format!("invalid request body at '{path}': {}", e.inner())
        }
    })
}

struct CiValue(Value);

/// Number deserializers that also take the number as a string (`"3"`, `" 2.5 "`); integer ones
/// also take a whole number written with a fraction (`276.0`), an integer in JSON Schema's sense.
macro_rules! number_from_string {
    ($convert:path: $($method:ident)*) => {
        $(
            fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
                match self.0 {
                    Value::String(s) => match serde_json::from_str::<serde_json::Number>(s.trim()) {
                        Ok(n) => $convert(Value::Number(n)).$method(visitor),
                        Err(_) => Value::String(s).$method(visitor),
                    },
                    other => $convert(other).$method(visitor),
                }
            }
        )*
    };
}

/// A whole number written as a float (`276.0`, `-3e2`) as an integer; anything else unchanged.
fn integral(value: Value) -> Value {
    const LIMIT: f64 = 9_223_372_036_854_775_808.0; // 2^63
    match value.as_f64() {
        Some(f) if value.is_f64() && f.fract() == 0.0 && (-LIMIT..LIMIT).contains(&f) => {
            Value::from(f as i64)
        }
        _ => value,
    }
}

fn unchanged(value: Value) -> Value {
    value
}

fn canonical(name: String, candidates: &'static [&'static str]) -> String {
    match candidates.iter().find(|c| c.eq_ignore_ascii_case(&name)) {
        Some(c) => (*c).to_owned(),
        None => name,
    }
}

impl<'de> de::Deserializer<'de> for CiValue {
    type Error = serde_json::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match self.0 {
            Value::Object(map) => visitor.visit_map(CiMap::new(map, &[])),
            Value::Array(items) => visitor.visit_seq(CiSeq(items.into_iter())),
            other => de::Deserializer::deserialize_any(other, visitor),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match self.0 {
            Value::Null => visitor.visit_none(),
            other => visitor.visit_some(CiValue(other)),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        match self.0 {
            Value::Object(map) => visitor.visit_map(CiMap::new(map, fields)),
            // serde_json would read an array as the fields in order: an object is an object.
            Value::Array(_) => Err(de::Error::invalid_type(de::Unexpected::Seq, &"an object")),
            other => other.deserialize_struct(name, fields, visitor),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        match self.0 {
            Value::String(s) => {
                Value::String(canonical(s, variants)).deserialize_enum(name, variants, visitor)
            }
            other => other.deserialize_enum(name, variants, visitor),
        }
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match self.0 {
            Value::String(s) if s.trim().eq_ignore_ascii_case("true") => visitor.visit_bool(true),
            Value::String(s) if s.trim().eq_ignore_ascii_case("false") => visitor.visit_bool(false),
            other => other.deserialize_bool(visitor),
        }
    }

    number_from_string! { integral:
        deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64 deserialize_i8
        deserialize_i16 deserialize_i32 deserialize_i64
    }
    number_from_string! { unchanged: deserialize_f32 deserialize_f64 }

    forward_to_deserialize_any! {
        i128 u128 char str string
        bytes byte_buf unit unit_struct seq tuple tuple_struct map identifier ignored_any
    }
}

struct CiMap {
    entries: serde_json::map::IntoIter,
    fields: &'static [&'static str],
    pending: Option<Value>,
}

impl CiMap {
    fn new(map: Map<String, Value>, fields: &'static [&'static str]) -> Self {
        Self {
            entries: map.into_iter(),
            fields,
            pending: None,
        }
    }
}

impl<'de> MapAccess<'de> for CiMap {
    type Error = serde_json::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Self::Error> {
        let Some((key, value)) = self.entries.next() else {
            return Ok(None);
        };
        self.pending = Some(value);
        let key: de::value::StringDeserializer<serde_json::Error> =
            canonical(key, self.fields).into_deserializer();
        seed.deserialize(key).map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, Self::Error> {
        let value = self
            .pending
            .take()
            .ok_or_else(|| de::Error::custom("value without a key"))?;
        seed.deserialize(CiValue(value))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len())
    }
}

struct CiSeq(std::vec::IntoIter<Value>);

impl<'de> SeqAccess<'de> for CiSeq {
    type Error = serde_json::Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Self::Error> {
        self.0
            .next()
            .map(|v| seed.deserialize(CiValue(v)))
            .transpose()
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.0.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Deserialize, Debug, PartialEq)]
    #[serde(rename_all = "camelCase")]
    struct Member {
        group_id: String,
        login: String,
        #[serde(rename = "type")]
        kind: Kind,
        is_cloud: Option<bool>,
    }

    #[derive(Deserialize, serde::Serialize, Debug, PartialEq, Clone)]
    enum Kind {
        User,
        Group,
    }

    #[derive(Deserialize, Debug, PartialEq)]
    #[serde(rename_all = "camelCase")]
    struct Account {
        group_member: Member,
        password: Option<String>,
    }

    #[test]
    fn matches_names_ignoring_case_and_ignores_extras() {
        let body = br#"[{"GroupMember":{"GROUPID":"g","Login":"l","Type":"user","extra":1},"Password":"p","more":[1]}]"#;
        let parsed: Vec<Account> = from_slice(body).unwrap();
        assert_eq!(
            parsed,
            vec![Account {
                group_member: Member {
                    group_id: "g".into(),
                    login: "l".into(),
                    kind: Kind::User,
                    is_cloud: None
                },
                password: Some("p".into()),
            }]
        );
    }

    #[test]
    fn errors_name_the_path() {
        let err = from_slice::<Vec<Account>>(br#"[{"groupMember":{"groupId":"g","type":"User"}}]"#)
            .unwrap_err();
        assert!(
            err.contains("[0].groupMember") && err.contains("login"),
            "{err}"
        );
        let err = from_slice::<Vec<Account>>(
            br#"[{"groupMember":{"groupId":"g","login":"l","type":"Robot"}}]"#,
        )
        .unwrap_err();
        assert!(err.contains("[0].groupMember.type"), "{err}");
        let err = from_slice::<Vec<Account>>(b"[{").unwrap_err();
        assert!(err.starts_with("malformed JSON"), "{err}");
    }

    #[derive(Deserialize, Debug, PartialEq)]
    #[serde(rename_all = "camelCase")]
    struct Policy {
        schedule_enabled: bool,
        retry_number: u32,
        #[serde(alias = "periodicInterval")]
        periodically_every: Option<String>,
        kind: Option<Kind>,
    }

    #[test]
    fn strings_for_booleans_and_numbers_trailing_commas_and_aliases() {
        let p: Policy = from_slice(
            br#"{"ScheduleEnabled":"True","retryNumber":"3","PeriodicInterval":"Hours1","kind":"GROUP",}"#,
        )
        .unwrap();
        assert_eq!(
            p,
            Policy {
                schedule_enabled: true,
                retry_number: 3,
                periodically_every: Some("Hours1".into()),
                kind: Some(Kind::Group),
            }
        );
        let p: Vec<Policy> =
            from_slice(b"[ {\"scheduleEnabled\": false, \"retryNumber\": 2 , } ,\n ]").unwrap();
        assert!(!p[0].schedule_enabled);
        // Commas inside strings stay.
        let s: Vec<String> = from_slice(br#"["a,]", "b\",}",]"#).unwrap();
        assert_eq!(s, vec!["a,]".to_owned(), "b\",}".to_owned()]);
        // Still strict about what cannot be read.
        assert!(from_slice::<Policy>(br#"{"scheduleEnabled":"yes","retryNumber":1}"#).is_err());
        assert!(
            from_slice::<Policy>(br#"{"scheduleEnabled":true,"retryNumber":"three"}"#).is_err()
        );
        assert!(from_slice::<Policy>(br#"{"scheduleEnabled":true,,"retryNumber":1}"#).is_err());
    }

    #[test]
    fn an_array_is_never_an_object() {
        let err = from_slice::<Policy>(br#"[true, 1, "Hours1", "User"]"#).unwrap_err();
        assert!(err.contains("an object"), "{err}");
        let err = from_slice::<Vec<Account>>(br#"[[{"groupId":"g"},"p"]]"#).unwrap_err();
        assert!(err.contains("[0]"), "{err}");
    }

    #[test]
    fn whole_numbers_with_a_fraction_are_integers() {
        let p: Policy = from_slice(br#"{"scheduleEnabled":true,"retryNumber":276.0}"#).unwrap();
        assert_eq!(p.retry_number, 276);
        let p: Policy = from_slice(br#"{"scheduleEnabled":true,"retryNumber":"3e0"}"#).unwrap();
        assert_eq!(p.retry_number, 3);
        for bad in ["2.5", "-1.0", "1e300", "\"x\""] {
            let body = format!(r#"{{"scheduleEnabled":true,"retryNumber":{bad}}}"#);
            assert!(from_slice::<Policy>(body.as_bytes()).is_err(), "{bad}");
        }
    }

    #[test]
    fn case_duplicates_are_refused() {
        let err = from_slice::<Account>(br#"{"groupMember":{"groupId":"g","login":"l","type":"User"},"password":"a","PASSWORD":"b"}"#)
            .unwrap_err();
        assert!(err.contains("duplicate field"), "{err}");
    }

    mod properties {
        use proptest::prelude::*;
        use serde::{Deserialize, Serialize};
        use serde_json::Value;

        use super::super::*;
        use super::Kind;

        /// JSON values without floats (serde_json's float text does not always read back to
        /// the same bits, which is not what these properties are about).
        fn json() -> impl Strategy<Value = Value> {
            let leaf = prop_oneof![
                Just(Value::Null),
                any::<bool>().prop_map(Value::Bool),
                any::<i64>().prop_map(Value::from),
                any::<u64>().prop_map(Value::from),
                "\\PC{0,12}".prop_map(Value::String),
                r#"[,\]}"\\ ]{0,6}"#.prop_map(Value::String),
            ];
            leaf.prop_recursive(4, 48, 6, |inner| {
                prop_oneof![
                    prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                    prop::collection::btree_map("[a-zA-Z,\\]} ]{0,8}", inner, 0..6)
                        .prop_map(|m| Value::Object(m.into_iter().collect())),
                ]
            })
        }

        /// `v` as JSON text with a comma and `ws` before the end of every non-empty container.
        fn with_trailing_commas(v: &Value, ws: &str, out: &mut String) {
            match v {
                Value::Array(items) if !items.is_empty() => {
                    out.push('[');
                    for item in items {
                        with_trailing_commas(item, ws, out);
                        out.push(',');
                    }
                    out.push_str(ws);
                    out.push(']');
                }
                Value::Object(map) if !map.is_empty() => {
                    out.push('{');
                    for (k, item) in map {
                        out.push_str(&Value::String(k.clone()).to_string());
                        out.push(':');
                        with_trailing_commas(item, ws, out);
                        out.push(',');
                    }
                    out.push_str(ws);
                    out.push('}');
                }
                other => out.push_str(&other.to_string()),
            }
        }

        #[derive(Serialize, Deserialize, Debug, PartialEq, Clone)]
        #[serde(rename_all = "camelCase")]
        struct Job {
            name: String,
            schedule_enabled: bool,
            retry_number: u32,
            offset_minutes: i64,
            description: Option<String>,
            kind: Option<Kind>,
            selected_items: Vec<Selected>,
        }

        #[derive(Serialize, Deserialize, Debug, PartialEq, Clone)]
        #[serde(rename_all = "camelCase")]
        struct Selected {
            item_id: String,
            is_folder: bool,
        }

        fn job() -> impl Strategy<Value = Job> {
            let selected = ("\\PC{0,8}", any::<bool>())
                .prop_map(|(item_id, is_folder)| Selected { item_id, is_folder });
            (
                "\\PC{0,8}",
                any::<bool>(),
                any::<u32>(),
                any::<i64>(),
                proptest::option::of("\\PC{0,8}"),
                proptest::option::of(prop_oneof![Just(Kind::User), Just(Kind::Group)]),
                prop::collection::vec(selected, 0..3),
            )
                .prop_map(
                    |(
                        name,
                        schedule_enabled,
                        retry_number,
                        offset_minutes,
                        description,
                        kind,
                        selected_items,
                    )| Job {
                        name,
                        schedule_enabled,
                        retry_number,
                        offset_minutes,
                        description,
                        kind,
                        selected_items,
                    },
                )
        }

        /// `v` as a sloppy portal writes it: keys and enum names in another case (chosen by
        /// `seed`'s bits), booleans and numbers as strings.
        fn sloppy(v: Value, seed: &mut u64) -> Value {
            fn flip(seed: &mut u64) -> bool {
                *seed = seed.rotate_left(1);
                *seed & 1 == 1
            }
            fn recase(s: String, seed: &mut u64) -> String {
                if flip(seed) {
                    s.to_uppercase()
                } else {
                    s.to_lowercase()
                }
            }
            match v {
                Value::Object(map) => Value::Object(
                    map.into_iter()
                        .map(|(k, v)| {
                            let v = match v {
                                Value::String(name) if k == "kind" => {
                                    Value::String(recase(name, seed))
                                }
                                v => sloppy(v, seed),
                            };
                            (recase(k, seed), v)
                        })
                        .collect(),
                ),
                Value::Array(items) => {
                    Value::Array(items.into_iter().map(|v| sloppy(v, seed)).collect())
                }
                Value::Bool(b) if flip(seed) => {
                    Value::String(if b { "TRUE".into() } else { " false".into() })
                }
                Value::Number(n) if flip(seed) => Value::String(format!(" {n} ")),
                other => other,
            }
        }

        proptest! {
            /// Strict JSON reads as itself, and so does it with trailing commas; the comma
            /// filter leaves text without trailing commas untouched.
            #[test]
            fn json_reads_as_itself_with_or_without_trailing_commas(v in json(), ws in "[ \t\r\n]{0,3}") {
                let strict = v.to_string();
                prop_assert!(matches!(without_trailing_commas(strict.as_bytes()), Cow::Borrowed(_)));
                prop_assert_eq!(from_slice::<Value>(strict.as_bytes()), Ok(v.clone()));
                let mut loose = String::new();
                with_trailing_commas(&v, &ws, &mut loose);
                prop_assert_eq!(from_slice::<Value>(loose.as_bytes()), Ok(v));
            }

            /// A body as portals write it reads as the body meant.
            #[test]
            fn sloppy_bodies_read_as_meant(job in job(), mut seed in any::<u64>()) {
                let text = sloppy(serde_json::to_value(&job).unwrap(), &mut seed).to_string();
                prop_assert_eq!(from_slice::<Job>(text.as_bytes()), Ok(job));
            }

            /// Any JSON value, or any bytes at all: a value or an error, never a panic.
            #[test]
            fn anything_is_a_value_or_an_error(v in json(), bytes in prop::collection::vec(any::<u8>(), 0..200)) {
                let _ = from_value::<Job>(v.clone());
                let _ = from_value::<Vec<Job>>(v);
                let _ = from_slice::<Job>(&bytes);
                let _ = from_slice::<Value>(&bytes);
                prop_assert!(without_trailing_commas(&bytes).len() <= bytes.len());
            }
        }
    }
}

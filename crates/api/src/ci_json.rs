//! JSON with case-insensitive property names.
//!
//! Serde's derive tells a deserializer the exact field names of each struct it builds
//! (`deserialize_struct(name, fields, ..)`). This deserializer wraps a parsed `serde_json::Value`
//! and, at each object, renames incoming keys to the field they match ignoring letter case, and
//! does the same for string-valued enum variants. Unknown properties stay unknown (ignored unless a
//! type denies them). Errors carry the path of the offending value (`[0].groupMember.login`).

use serde::de::{
    self, DeserializeOwned, DeserializeSeed, IntoDeserializer, MapAccess, SeqAccess, Visitor,
};
use serde::forward_to_deserialize_any;
use serde_json::{Map, Value};

/// Parses a JSON body into `T`. The error text is meant for the client.
pub fn from_slice<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    let value: Value = serde_json::from_slice(bytes).map_err(|e| format!("malformed JSON: {e}"))?;
    from_value(value)
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

    /// Booleans also as strings in any case (`"true"`, `"False"`), as v5 clients send them.
    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match self.0 {
            Value::String(s) if s.eq_ignore_ascii_case("true") => visitor.visit_bool(true),
            Value::String(s) if s.eq_ignore_ascii_case("false") => visitor.visit_bool(false),
            other => de::Deserializer::deserialize_any(other, visitor),
        }
    }

    forward_to_deserialize_any! {
        i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
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

    #[derive(Deserialize, Debug, PartialEq)]
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

    #[test]
    fn booleans_may_be_strings() {
        #[derive(Deserialize, Debug, PartialEq)]
        struct Flags {
            a: bool,
            b: Option<bool>,
        }
        let parsed: Flags = from_slice(br#"{"A":"True","b":"false"}"#).unwrap();
        assert_eq!(
            parsed,
            Flags {
                a: true,
                b: Some(false)
            }
        );
        assert!(from_slice::<Flags>(br#"{"a":"yes"}"#).is_err());
    }

    #[test]
    fn case_duplicates_are_refused() {
        let err = from_slice::<Account>(br#"{"groupMember":{"groupId":"g","login":"l","type":"User"},"password":"a","PASSWORD":"b"}"#)
            .unwrap_err();
        assert!(err.contains("duplicate field"), "{err}");
    }
}

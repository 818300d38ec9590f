//! What serde knows of an options struct, for the one-definition options of [`crate::config`]:
//! the field names a struct deserializes (its TOML keys; `#[serde(skip)]` fields excluded).

use serde::de::{self, Deserialize, Deserializer, Visitor};

/// The fields `T` reads from a map, in declaration order.
pub fn serde_fields<'de, T: Deserialize<'de>>() -> &'static [&'static str] {
    let mut fields: &'static [&'static str] = &[];
    // The probe records the fields and then refuses: nothing is deserialized.
    let _ = T::deserialize(FieldProbe {
        fields: &mut fields,
    });
    fields
}

/// A deserializer that only answers "which fields?" for a struct.
struct FieldProbe<'a> {
    fields: &'a mut &'static [&'static str],
}

impl<'de> Deserializer<'de> for FieldProbe<'_> {
    type Error = de::value::Error;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
        Err(de::Error::custom("only structs name their fields"))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, Self::Error> {
        *self.fields = fields;
        Err(de::Error::custom("fields recorded"))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
        ignored_any
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize)]
    #[allow(dead_code)]
    struct Example {
        kept: Option<u32>,
        #[serde(skip)]
        skipped: bool,
        also: String,
    }

    #[test]
    fn skipped_fields_are_not_keys() {
        assert_eq!(serde_fields::<Example>(), ["kept", "also"]);
    }
}

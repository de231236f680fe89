//! Compatibility levels and the check of a new schema against earlier versions, using
//! apache-avro's schema resolution rules.

use std::fmt;
use std::str::FromStr;

use apache_avro::Schema;
use apache_avro::error::CompatibilityError;
use apache_avro::schema_compatibility::{Compatibility, SchemaCompatibility};
use serde::{Deserialize, Serialize};

/// A subject's compatibility level, spelled as in Confluent's API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CompatibilityLevel {
    /// Any schema is accepted.
    None,
    /// The new schema can read data written with the latest version.
    #[default]
    Backward,
    /// The new schema can read data written with every earlier version.
    BackwardTransitive,
    /// The latest version can read data written with the new schema.
    Forward,
    /// Every earlier version can read data written with the new schema.
    ForwardTransitive,
    /// Backward and forward against the latest version.
    Full,
    /// Backward and forward against every earlier version.
    FullTransitive,
}

impl CompatibilityLevel {
    /// Every level, in the order Confluent documents them.
    pub const ALL: [CompatibilityLevel; 7] = [
        Self::None,
        Self::Backward,
        Self::BackwardTransitive,
        Self::Forward,
        Self::ForwardTransitive,
        Self::Full,
        Self::FullTransitive,
    ];

    /// The name used in the API and the database (`BACKWARD_TRANSITIVE`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "NONE",
            Self::Backward => "BACKWARD",
            Self::BackwardTransitive => "BACKWARD_TRANSITIVE",
            Self::Forward => "FORWARD",
            Self::ForwardTransitive => "FORWARD_TRANSITIVE",
            Self::Full => "FULL",
            Self::FullTransitive => "FULL_TRANSITIVE",
        }
    }

    fn is_transitive(self) -> bool {
        matches!(
            self,
            Self::BackwardTransitive | Self::ForwardTransitive | Self::FullTransitive
        )
    }

    fn checks_backward(self) -> bool {
        matches!(
            self,
            Self::Backward | Self::BackwardTransitive | Self::Full | Self::FullTransitive
        )
    }

    fn checks_forward(self) -> bool {
        matches!(
            self,
            Self::Forward | Self::ForwardTransitive | Self::Full | Self::FullTransitive
        )
    }

    /// The versions a registration must be checked against: the latest one, or all of
    /// them for the transitive levels. `existing` is ordered oldest first.
    pub fn versions_to_check<T>(self, existing: &[T]) -> &[T] {
        if self == Self::None {
            &[]
        } else if self.is_transitive() {
            existing
        } else {
            &existing[existing.len().saturating_sub(1)..]
        }
    }

    /// Checks `candidate` against each of `earlier` (version number, schema) in this
    /// level's direction. Returns one message per problem; empty means compatible.
    pub fn check(self, candidate: &Schema, earlier: &[(i32, &Schema)]) -> Vec<String> {
        let mut messages = Vec::new();
        for (version, old) in earlier {
            if self.checks_backward()
                && let Some(problem) = can_read(old, candidate)
            {
                messages.push(format!(
                    "the new schema cannot read data written with version {version} \
                     ({} check): {problem}",
                    self.as_str()
                ));
            }
            if self.checks_forward()
                && let Some(problem) = can_read(candidate, old)
            {
                messages.push(format!(
                    "version {version} cannot read data written with the new schema \
                     ({} check): {problem}",
                    self.as_str()
                ));
            }
        }
        messages
    }
}

/// Why `reader` cannot resolve everything `writer` may produce, or `None` when it can.
///
/// A partial match (a reader enum missing some writer symbols, a reader union missing
/// some writer branches) fails for some records, so it counts as incompatible, as in
/// Confluent's registry.
fn can_read(writer: &Schema, reader: &Schema) -> Option<String> {
    match SchemaCompatibility::can_read(writer, reader) {
        Ok(Compatibility::Full) => None,
        Ok(Compatibility::Partial) => Some(
            "only some values can be resolved (a writer enum symbol or union branch \
             has no counterpart in the reader)"
                .to_string(),
        ),
        Err(err) => Some(describe(&err)),
    }
}

/// A one-line account of `err`. apache-avro's own message for a type mismatch embeds
/// the Debug dump of both schemas (hundreds of lines for a real record), so that case
/// names the two kinds only; nested field mismatches become a path of field names.
fn describe(err: &CompatibilityError) -> String {
    match err {
        CompatibilityError::FieldTypeMismatch(field, inner) => {
            format!("field '{field}': {}", describe(inner))
        }
        CompatibilityError::WrongType {
            writer_schema_type,
            reader_schema_type,
        } => format!(
            "the writer's {} cannot be read as the reader's {}",
            kind_of(writer_schema_type),
            kind_of(reader_schema_type)
        ),
        other => other.to_string(),
    }
}

/// `Record` out of `Record(\n RecordSchema { ... })`.
fn kind_of(debug: &str) -> &str {
    debug
        .split(|c: char| c == '(' || c == '{' || c.is_whitespace())
        .next()
        .unwrap_or(debug)
}

impl fmt::Display for CompatibilityLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A compatibility level name that is not one of the seven levels.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid compatibility level '{0}'; valid values are NONE, BACKWARD, BACKWARD_TRANSITIVE, \
     FORWARD, FORWARD_TRANSITIVE, FULL and FULL_TRANSITIVE"
)]
pub struct UnknownCompatibilityLevel(pub String);

impl FromStr for CompatibilityLevel {
    type Err = UnknownCompatibilityLevel;

    /// Case-insensitive, as Confluent's registry accepts `backward` too.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|level| level.as_str().eq_ignore_ascii_case(text.trim()))
            .ok_or_else(|| UnknownCompatibilityLevel(text.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use CompatibilityLevel::*;

    fn record(fields: &str) -> Schema {
        Schema::parse_str(&format!(
            r#"{{"type":"record","name":"Order","namespace":"orderflow","fields":[{fields}]}}"#
        ))
        .unwrap()
    }

    fn v1() -> Schema {
        record(r#"{"name":"id","type":"string"},{"name":"amount","type":"long"}"#)
    }

    /// v1 plus an optional field with a default.
    fn v2_added_optional() -> Schema {
        record(
            r#"{"name":"id","type":"string"},{"name":"amount","type":"long"},
               {"name":"note","type":["null","string"],"default":null}"#,
        )
    }

    fn compatible(level: CompatibilityLevel, candidate: &Schema, earlier: &[&Schema]) -> bool {
        let numbered: Vec<(i32, &Schema)> = (1..).zip(earlier.iter().copied()).collect();
        level
            .check(candidate, level.versions_to_check(&numbered))
            .is_empty()
    }

    #[test]
    fn adding_an_optional_field_with_default_passes_every_level() {
        for level in CompatibilityLevel::ALL {
            assert!(compatible(level, &v2_added_optional(), &[&v1()]), "{level}");
        }
    }

    #[test]
    fn adding_a_required_field_breaks_backward_but_not_forward() {
        let added_required = record(
            r#"{"name":"id","type":"string"},{"name":"amount","type":"long"},
               {"name":"currency","type":"string"}"#,
        );
        assert!(!compatible(Backward, &added_required, &[&v1()]));
        assert!(!compatible(Full, &added_required, &[&v1()]));
        assert!(compatible(Forward, &added_required, &[&v1()]));
        assert!(compatible(None, &added_required, &[&v1()]));
        let messages = Backward.check(&added_required, &[(1, &v1())]);
        assert_eq!(messages.len(), 1);
        assert!(
            messages[0].contains("currency") && messages[0].contains("version 1"),
            "{messages:?}"
        );
    }

    #[test]
    fn removing_a_field_without_default_breaks_forward_but_not_backward() {
        let removed = record(r#"{"name":"id","type":"string"}"#);
        assert!(compatible(Backward, &removed, &[&v1()]));
        assert!(!compatible(Forward, &removed, &[&v1()]));
        assert!(!compatible(FullTransitive, &removed, &[&v1()]));
        let messages = Forward.check(&removed, &[(1, &v1())]);
        assert!(messages[0].contains("amount"), "{messages:?}");
    }

    #[test]
    fn changing_a_field_type_breaks_both_directions_except_promotions() {
        let as_string =
            record(r#"{"name":"id","type":"string"},{"name":"amount","type":"string"}"#);
        for level in [Backward, Forward, Full] {
            assert!(!compatible(level, &as_string, &[&v1()]), "{level}");
        }
        let messages = Backward.check(&as_string, &[(1, &v1())]);
        assert!(
            messages[0].ends_with(
                "field 'amount': the writer's Long cannot be read as the reader's String"
            ),
            "{messages:?}"
        );
        // int -> long is a promotion the new reader can do, but not the other way round.
        let int_amount = record(r#"{"name":"id","type":"string"},{"name":"amount","type":"int"}"#);
        assert!(compatible(Backward, &v1(), &[&int_amount]));
        assert!(!compatible(Forward, &v1(), &[&int_amount]));
    }

    #[test]
    fn transitive_levels_check_every_version_and_plain_levels_only_the_latest() {
        // Only the oldest version conflicts: v1 wrote `amount` as a string, v2 dropped it,
        // v3 brings it back as a long with a default.
        let old = record(r#"{"name":"id","type":"string"},{"name":"amount","type":"string"}"#);
        let middle = record(r#"{"name":"id","type":"string"}"#);
        let newest =
            record(r#"{"name":"id","type":"string"},{"name":"amount","type":"long","default":0}"#);
        assert!(compatible(Backward, &newest, &[&old, &middle]));
        assert!(!compatible(BackwardTransitive, &newest, &[&old, &middle]));
        let messages = BackwardTransitive.check(&newest, &[(1, &old), (2, &middle)]);
        assert!(messages[0].contains("version 1"), "{messages:?}");
    }

    #[test]
    fn enum_symbol_removal_is_a_partial_match_and_therefore_incompatible() {
        let with_symbols = |symbols: &str| {
            Schema::parse_str(&format!(
                r#"{{"type":"enum","name":"Status","symbols":[{symbols}]}}"#
            ))
            .unwrap()
        };
        let three = with_symbols(r#""NEW","PAID","SHIPPED""#);
        let two = with_symbols(r#""NEW","PAID""#);
        assert!(!compatible(Backward, &two, &[&three]));
        assert!(compatible(Backward, &three, &[&two]));
    }

    #[test]
    fn level_names_parse_case_insensitively_and_reject_unknown_names() {
        assert_eq!("full_transitive".parse(), Ok(FullTransitive));
        assert_eq!(" BACKWARD ".parse(), Ok(Backward));
        assert_eq!(CompatibilityLevel::default(), Backward);
        let err = "SIDEWAYS".parse::<CompatibilityLevel>().unwrap_err();
        assert!(err.to_string().contains("SIDEWAYS"));
        for level in CompatibilityLevel::ALL {
            assert_eq!(level.as_str().parse(), Ok(level));
            assert_eq!(
                serde_json::to_string(&level).unwrap(),
                format!("\"{level}\"")
            );
        }
    }
}

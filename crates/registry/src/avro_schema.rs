//! Parsing a submitted Avro schema and the form used to recognise it again.

use apache_avro::Schema;

use crate::error::error_chain;

/// The only schema type this registry stores (Confluent's default when `schemaType` is absent).
pub const AVRO: &str = "AVRO";

/// A schema that parsed, with the form used as its identity.
#[derive(Debug, Clone)]
pub struct ParsedSchema {
    /// The parsed schema, used for compatibility checks.
    pub schema: Schema,
    /// Identity of the schema: the parsed schema written back as compact JSON.
    ///
    /// Whitespace and key order do not change it; `default`, `doc` and `aliases` do.
    /// The Parsing Canonical Form (`Schema::canonical_form`) is not used as identity
    /// because it drops `default`: adding a default to a field decides BACKWARD
    /// compatibility, so it must yield a new schema id, as it does in Confluent's registry.
    pub normalized: String,
}

impl ParsedSchema {
    /// Parses `text` as an Avro schema. The error is the parser's message.
    pub fn parse(text: &str) -> Result<Self, String> {
        let schema = Schema::parse_str(text).map_err(|err| error_chain(&err))?;
        let normalized = serde_json::to_string(&schema)
            .map_err(|err| format!("cannot write the parsed schema back as JSON: {err}"))?;
        Ok(Self { schema, normalized })
    }

    /// The Parsing Canonical Form of the schema (Avro specification), for logs and fingerprints.
    pub fn canonical_form(&self) -> String {
        self.schema.canonical_form()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORDER: &str =
        r#"{"type":"record","name":"Order","fields":[{"name":"id","type":"string"}]}"#;

    #[test]
    fn whitespace_and_key_order_do_not_change_identity_but_defaults_do() {
        let compact = ParsedSchema::parse(ORDER).unwrap();
        let spaced = ParsedSchema::parse(
            "{\n  \"fields\": [ {\"type\": \"string\", \"name\": \"id\"} ],\n  \"name\": \"Order\",\n  \"type\": \"record\"\n}",
        )
        .unwrap();
        assert_eq!(compact.normalized, spaced.normalized);
        assert_eq!(compact.canonical_form(), spaced.canonical_form());

        let with_default = ParsedSchema::parse(
            r#"{"type":"record","name":"Order","fields":[{"name":"id","type":"string","default":""}]}"#,
        )
        .unwrap();
        assert_ne!(compact.normalized, with_default.normalized);
        // The canonical form alone could not tell them apart.
        assert_eq!(compact.canonical_form(), with_default.canonical_form());
    }

    #[test]
    fn invalid_schemas_report_the_parser_message() {
        let not_json = ParsedSchema::parse("{not json").unwrap_err();
        assert!(not_json.to_lowercase().contains("json"), "{not_json}");
        let unknown_type = ParsedSchema::parse(
            r#"{"type":"record","name":"Order","fields":[{"name":"id","type":"strng"}]}"#,
        )
        .unwrap_err();
        assert!(unknown_type.contains("strng"), "{unknown_type}");
    }
}

//! The resolution rules one by one, on small schemas.

use apache_avro::schema::ResolvedSchema;

use super::*;

/// Resolves `value` (of `writer`) to `reader`.
fn resolve(writer: &str, reader: &str, value: Value) -> Result<Value, String> {
    let writer = Schema::parse_str(writer).unwrap();
    let reader = Schema::parse_str(reader).unwrap();
    let (wn, rn) = (
        ResolvedSchema::try_from(&writer).unwrap(),
        ResolvedSchema::try_from(&reader).unwrap(),
    );
    Resolver {
        writer_names: wn.get_names(),
        reader_names: rn.get_names(),
    }
    .resolve(value, &writer, &reader)
}

fn record(fields: &[(&str, Value)]) -> Value {
    Value::Record(
        fields
            .iter()
            .map(|(n, v)| ((*n).to_owned(), v.clone()))
            .collect(),
    )
}

#[test]
fn union_branches_resolve_by_name_not_by_the_first_shape_that_fits() {
    let reader = r#"[{"type":"record","name":"A","fields":[{"name":"x","type":"long"}]},
                     {"type":"record","name":"B","fields":[{"name":"x","type":"long"},{"name":"y","type":"string"}]}]"#;
    let writer = r#"[{"type":"record","name":"B","fields":[{"name":"x","type":"long"},{"name":"y","type":"string"}]}]"#;
    let value = Value::Union(
        0,
        Box::new(record(&[
            ("x", Value::Long(1)),
            ("y", Value::String("s".into())),
        ])),
    );
    assert!(matches!(
        resolve(writer, reader, value).unwrap(),
        Value::Union(1, _)
    ));
    let unknown = r#"[{"type":"record","name":"C","fields":[{"name":"x","type":"long"}]}]"#;
    let error = resolve(
        unknown,
        reader,
        Value::Union(0, Box::new(record(&[("x", Value::Long(1))]))),
    )
    .unwrap_err();
    assert!(
        error.contains("record C") && error.contains("matches no branch"),
        "{error}"
    );
}

#[test]
fn aliases_of_the_reader_name_records_and_fields() {
    let writer =
        r#"{"type":"record","name":"Old","namespace":"x","fields":[{"name":"amt","type":"int"}]}"#;
    let reader = r#"{"type":"record","name":"New","namespace":"y","aliases":["Old"],
        "fields":[{"name":"amount","aliases":["amt"],"type":"long"},
                  {"name":"note","type":["null","string"],"default":null}]}"#;
    let resolved = resolve(writer, reader, record(&[("amt", Value::Int(5))])).unwrap();
    assert_eq!(
        resolved,
        record(&[
            ("amount", Value::Long(5)),
            ("note", Value::Union(0, Box::new(Value::Null)))
        ])
    );
    let no_alias = reader.replace(r#""aliases":["Old"],"#, "");
    let error = resolve(writer, &no_alias, record(&[("amt", Value::Int(5))])).unwrap_err();
    assert!(error.contains("Old") && error.contains("New"), "{error}");
}

#[test]
fn timestamps_convert_within_utc_or_local_time_and_a_plain_long_is_refused() {
    let ts = |unit: &str| format!(r#"{{"type":"long","logicalType":"{unit}"}}"#);
    let millis = ts("timestamp-millis");
    assert_eq!(
        resolve(
            &ts("timestamp-micros"),
            &millis,
            Value::TimestampMicros(1_500_999)
        )
        .unwrap(),
        Value::TimestampMillis(1_500)
    );
    assert_eq!(
        resolve(&ts("timestamp-nanos"), &millis, Value::TimestampNanos(-1)).unwrap(),
        Value::TimestampMillis(-1),
        "rounds toward the past"
    );
    assert_eq!(
        resolve(&millis, &ts("timestamp-micros"), Value::TimestampMillis(2)).unwrap(),
        Value::TimestampMicros(2_000)
    );
    assert!(
        resolve(
            &ts("local-timestamp-millis"),
            &millis,
            Value::LocalTimestampMillis(1)
        )
        .is_err()
    );
    let error = resolve(r#""long""#, &millis, Value::Long(1)).unwrap_err();
    assert!(error.contains("timestamp-millis"), "{error}");
    assert_eq!(
        resolve(&millis, r#""long""#, Value::TimestampMillis(7)).unwrap(),
        Value::Long(7)
    );
}

#[test]
fn enums_take_the_readers_default_for_an_unknown_symbol() {
    let writer = r#"{"type":"enum","name":"E","symbols":["A","B","Z"]}"#;
    let reader = r#"{"type":"enum","name":"E","symbols":["B","A","U"],"default":"U"}"#;
    assert_eq!(
        resolve(writer, reader, Value::Enum(0, "A".into())).unwrap(),
        Value::Enum(1, "A".into())
    );
    assert_eq!(
        resolve(writer, reader, Value::Enum(2, "Z".into())).unwrap(),
        Value::Enum(2, "U".into())
    );
}

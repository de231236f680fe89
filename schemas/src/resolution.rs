//! Avro schema resolution as the specification says it, for a datum decoded with its writer
//! schema and read with ours.
//!
//! apache-avro (0.22, and 0.23.0-rc0 alike) resolves a decoded `Value`, which has lost the
//! writer's record names, against the reader schema by shape: the first reader branch whose
//! fields fit wins, so a new `OrderRefunded{payment_id, amount_cents, reason}` branch reads as
//! `OrderPaid`. Here the writer schema walks beside the value, so each step knows what the
//! writer wrote:
//!
//! - union branches and named types match by unqualified name, then by the reader's aliases;
//!   a writer branch with no reader branch is an error naming it;
//! - record fields match by name or the reader field's aliases; a reader field the writer
//!   lacks takes its default or fails; writer fields the reader lacks are skipped;
//! - promotions int -> long/float/double, long -> float/double, float -> double and
//!   string <-> bytes;
//! - logical types are compared: timestamps convert between units (millis, micros, nanos)
//!   within UTC or within local time, never across; a plain `long` is refused where the
//!   reader expects a timestamp (its unit is unknown); a writer's logical type read where the
//!   reader has the plain underlying type gives the underlying value.

use std::collections::HashMap;

use apache_avro::Schema;
use apache_avro::schema::{Name, NamesRef, RecordSchema, UnionSchema};
use apache_avro::types::Value;

/// A writer schema and a reader schema with the name tables their references resolve in.
pub(crate) struct Resolver<'a> {
    /// Named types of the writer schema.
    pub writer_names: &'a NamesRef<'a>,
    /// Named types of the reader schema.
    pub reader_names: &'a NamesRef<'a>,
}

impl Resolver<'_> {
    /// `value`, decoded with `writer`, as the reader schema `reader` reads it. The error says
    /// where (a dotted field path) and what this reader cannot read.
    pub fn resolve(&self, value: Value, writer: &Schema, reader: &Schema) -> Result<Value, String> {
        self.at(value, writer, reader, "")
    }

    fn at(
        &self,
        value: Value,
        writer: &Schema,
        reader: &Schema,
        path: &str,
    ) -> Result<Value, String> {
        let writer = deref(writer, self.writer_names, path)?;
        let reader = deref(reader, self.reader_names, path)?;
        if let Schema::Union(union) = writer {
            let Value::Union(index, inner) = value else {
                return Err(format!("{}: a union value was expected", shown(path)));
            };
            let branch = union
                .variants()
                .get(index as usize)
                .ok_or_else(|| format!("{}: union branch {index} out of range", shown(path)))?;
            return self.at(*inner, branch, reader, path);
        }
        if let Schema::Union(union) = reader {
            let index = self.branch_for(writer, union).ok_or_else(|| {
                format!(
                    "{}: the writer's {} matches no branch of this reader's union [{}]",
                    shown(path),
                    describe(writer),
                    union
                        .variants()
                        .iter()
                        .map(describe)
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })?;
            let resolved = self.at(value, writer, &union.variants()[index], path)?;
            return Ok(Value::Union(index as u32, Box::new(resolved)));
        }
        match (writer, reader) {
            (Schema::Record(w), Schema::Record(r)) => self.record(value, w, r, path),
            (Schema::Enum(w), Schema::Enum(r)) => {
                names_match(&w.name, &r.name, r.aliases.as_deref(), path)?;
                let Value::Enum(_, symbol) = value else {
                    return Err(format!("{}: an enum value was expected", shown(path)));
                };
                let symbol = match r.symbols.iter().position(|s| *s == symbol) {
                    Some(_) => symbol,
                    None => r.default.clone().ok_or_else(|| {
                        format!(
                            "{}: symbol {symbol} is not in this reader's enum {} (no default)",
                            shown(path),
                            r.name.name()
                        )
                    })?,
                };
                let index = r.symbols.iter().position(|s| *s == symbol).unwrap_or(0);
                Ok(Value::Enum(index as u32, symbol))
            }
            (Schema::Fixed(w), Schema::Fixed(r)) => {
                names_match(&w.name, &r.name, r.aliases.as_deref(), path)?;
                if w.size != r.size {
                    return Err(format!(
                        "{}: fixed {} has size {} here, {} in the writer",
                        shown(path),
                        r.name.name(),
                        r.size,
                        w.size
                    ));
                }
                Ok(value)
            }
            (Schema::Array(w), Schema::Array(r)) => match value {
                Value::Array(items) => items
                    .into_iter()
                    .map(|item| self.at(item, &w.items, &r.items, path))
                    .collect::<Result<_, _>>()
                    .map(Value::Array),
                _ => Err(format!("{}: an array value was expected", shown(path))),
            },
            (Schema::Map(w), Schema::Map(r)) => match value {
                Value::Map(entries) => entries
                    .into_iter()
                    .map(|(k, v)| self.at(v, &w.types, &r.types, path).map(|v| (k, v)))
                    .collect::<Result<_, _>>()
                    .map(Value::Map),
                _ => Err(format!("{}: a map value was expected", shown(path))),
            },
            _ => convert_scalar(value, writer, reader).ok_or_else(|| {
                format!(
                    "{}: the writer's {} cannot be read as {}",
                    shown(path),
                    describe(writer),
                    describe(reader)
                )
            }),
        }
    }

    fn record(
        &self,
        value: Value,
        writer: &RecordSchema,
        reader: &RecordSchema,
        path: &str,
    ) -> Result<Value, String> {
        names_match(&writer.name, &reader.name, reader.aliases.as_deref(), path)?;
        let Value::Record(fields) = value else {
            return Err(format!("{}: a record value was expected", shown(path)));
        };
        let mut written: HashMap<String, Value> = fields.into_iter().collect();
        let mut out = Vec::with_capacity(reader.fields.len());
        for field in &reader.fields {
            let field_path = if path.is_empty() {
                field.name.clone()
            } else {
                format!("{path}.{}", field.name)
            };
            let source = std::iter::once(&field.name)
                .chain(&field.aliases)
                .find_map(|name| writer.fields.iter().find(|w| w.name == *name));
            let resolved = match source {
                Some(writer_field) => {
                    let value = written.remove(&writer_field.name).ok_or_else(|| {
                        format!("{}: the datum lacks this field", shown(&field_path))
                    })?;
                    self.at(value, &writer_field.schema, &field.schema, &field_path)?
                }
                None => {
                    let default = field.default.clone().ok_or_else(|| {
                        format!(
                            "{}: the writer's {} has no such field and this reader's has no default",
                            shown(&field_path),
                            writer.name.name()
                        )
                    })?;
                    Value::try_from(default)
                        .and_then(|value| {
                            value.resolve_with_names(&field.schema, self.reader_names)
                        })
                        .map_err(|e| format!("{}: default: {e}", shown(&field_path)))?
                }
            };
            out.push((field.name.clone(), resolved));
        }
        Ok(Value::Record(out))
    }

    /// The reader branch the writer's schema resolves to: a named type by name, then by the
    /// reader's aliases; any other type exactly, then by promotion or conversion.
    pub fn branch_for(&self, writer: &Schema, union: &UnionSchema) -> Option<usize> {
        let branches: Vec<&Schema> = union
            .variants()
            .iter()
            .map(|b| deref(b, self.reader_names, "").unwrap_or(b))
            .collect();
        if let Some(name) = writer.name() {
            let same_kind =
                |b: &Schema| std::mem::discriminant(b) == std::mem::discriminant(writer);
            let by_name = branches
                .iter()
                .position(|b| same_kind(b) && b.name().is_some_and(|n| n.name() == name.name()));
            return by_name.or_else(|| {
                branches.iter().position(|b| {
                    same_kind(b)
                        && b.aliases()
                            .is_some_and(|aliases| aliases.iter().any(|a| a.name() == name.name()))
                })
            });
        }
        branches
            .iter()
            .position(|b| std::mem::discriminant(*b) == std::mem::discriminant(writer))
            .or_else(|| {
                branches
                    .iter()
                    .position(|b| b.name().is_none() && scalar_readable(writer, b))
            })
    }
}

/// A reference resolved to the schema it names.
pub(crate) fn deref<'s>(
    schema: &'s Schema,
    names: &'s NamesRef<'s>,
    path: &str,
) -> Result<&'s Schema, String> {
    match schema {
        Schema::Ref { name } => names
            .get(name)
            .copied()
            .ok_or_else(|| format!("{}: unknown type {}", shown(path), name.name())),
        other => Ok(other),
    }
}

/// Named types resolve when their unqualified names are equal or the reader's aliases name
/// the writer's type.
pub(crate) fn names_match(
    writer: &Name,
    reader: &Name,
    reader_aliases: Option<&[apache_avro::schema::Alias]>,
    path: &str,
) -> Result<(), String> {
    let aliased =
        reader_aliases.is_some_and(|aliases| aliases.iter().any(|a| a.name() == writer.name()));
    if writer.name() == reader.name() || aliased {
        Ok(())
    } else {
        Err(format!(
            "{}: the writer's {} is not this reader's {} (nor one of its aliases)",
            shown(path),
            writer.name(),
            reader.name()
        ))
    }
}

/// Whether a value of unnamed type `writer` can be read as `reader`.
pub(crate) fn scalar_readable(writer: &Schema, reader: &Schema) -> bool {
    convert_scalar(sample(writer), writer, reader).is_some()
}

/// A value of `schema`'s type, for [`scalar_readable`].
fn sample(schema: &Schema) -> Value {
    match schema {
        Schema::Null => Value::Null,
        Schema::Boolean => Value::Boolean(false),
        Schema::Int => Value::Int(0),
        Schema::Long => Value::Long(0),
        Schema::Float => Value::Float(0.0),
        Schema::Double => Value::Double(0.0),
        Schema::Bytes => Value::Bytes(Vec::new()),
        Schema::String => Value::String(String::new()),
        Schema::Uuid(_) => Value::Uuid(uuid::Uuid::nil()),
        Schema::Date => Value::Date(0),
        Schema::TimeMillis => Value::TimeMillis(0),
        Schema::TimeMicros => Value::TimeMicros(0),
        Schema::TimestampMillis => Value::TimestampMillis(0),
        Schema::TimestampMicros => Value::TimestampMicros(0),
        Schema::TimestampNanos => Value::TimestampNanos(0),
        Schema::LocalTimestampMillis => Value::LocalTimestampMillis(0),
        Schema::LocalTimestampMicros => Value::LocalTimestampMicros(0),
        Schema::LocalTimestampNanos => Value::LocalTimestampNanos(0),
        _ => Value::Null,
    }
}

/// Timestamps: (local time?, nanoseconds per unit).
fn timestamp_unit(schema: &Schema) -> Option<(bool, i64)> {
    Some(match schema {
        Schema::TimestampMillis => (false, 1_000_000),
        Schema::TimestampMicros => (false, 1_000),
        Schema::TimestampNanos => (false, 1),
        Schema::LocalTimestampMillis => (true, 1_000_000),
        Schema::LocalTimestampMicros => (true, 1_000),
        Schema::LocalTimestampNanos => (true, 1),
        _ => return None,
    })
}

fn timestamp_value(local: bool, unit: i64, n: i64) -> Value {
    match (local, unit) {
        (false, 1_000_000) => Value::TimestampMillis(n),
        (false, 1_000) => Value::TimestampMicros(n),
        (false, _) => Value::TimestampNanos(n),
        (true, 1_000_000) => Value::LocalTimestampMillis(n),
        (true, 1_000) => Value::LocalTimestampMicros(n),
        (true, _) => Value::LocalTimestampNanos(n),
    }
}

/// A primitive or logical value of `writer` read as `reader`, or `None` when the types do
/// not resolve.
fn convert_scalar(value: Value, writer: &Schema, reader: &Schema) -> Option<Value> {
    if let (Some((w_local, w_unit)), Some((r_local, r_unit))) =
        (timestamp_unit(writer), timestamp_unit(reader))
    {
        if w_local != r_local {
            return None;
        }
        let n = match value {
            Value::TimestampMillis(n)
            | Value::TimestampMicros(n)
            | Value::TimestampNanos(n)
            | Value::LocalTimestampMillis(n)
            | Value::LocalTimestampMicros(n)
            | Value::LocalTimestampNanos(n)
            | Value::Long(n) => n,
            _ => return None,
        };
        let converted = if w_unit >= r_unit {
            n.checked_mul(w_unit / r_unit)?
        } else {
            // Finer writer unit: round toward negative infinity, as Java's Instant does.
            n.div_euclid(r_unit / w_unit)
        };
        return Some(timestamp_value(r_local, r_unit, converted));
    }
    Some(match (value, reader) {
        (Value::Null, Schema::Null) => Value::Null,
        (Value::Boolean(b), Schema::Boolean) => Value::Boolean(b),
        (Value::Int(n), Schema::Int) => Value::Int(n),
        (Value::Int(n), Schema::Long) => Value::Long(i64::from(n)),
        (Value::Int(n), Schema::Float) => Value::Float(n as f32),
        (Value::Int(n), Schema::Double) => Value::Double(f64::from(n)),
        (Value::Long(n), Schema::Long) => Value::Long(n),
        (Value::Long(n), Schema::Float) => Value::Float(n as f32),
        (Value::Long(n), Schema::Double) => Value::Double(n as f64),
        (Value::Float(x), Schema::Float) => Value::Float(x),
        (Value::Float(x), Schema::Double) => Value::Double(f64::from(x)),
        (Value::Double(x), Schema::Double) => Value::Double(x),
        (Value::String(s), Schema::String) => Value::String(s),
        (Value::String(s), Schema::Bytes) => Value::Bytes(s.into_bytes()),
        (Value::Bytes(b), Schema::Bytes) => Value::Bytes(b),
        (Value::Bytes(b), Schema::String) => Value::String(String::from_utf8(b).ok()?),
        // A string read as a uuid: the value is checked where the event is built.
        (Value::String(s), Schema::Uuid(_)) => Value::String(s),
        (Value::Uuid(u), Schema::Uuid(_)) => Value::Uuid(u),
        // A logical type read as its plain underlying type.
        (Value::Uuid(u), Schema::String) => Value::String(u.to_string()),
        (Value::Date(n) | Value::TimeMillis(n), Schema::Int) => Value::Int(n),
        (Value::Date(n), Schema::Date) => Value::Date(n),
        (Value::TimeMillis(n), Schema::TimeMillis) => Value::TimeMillis(n),
        (Value::TimeMicros(n), Schema::TimeMicros) => Value::TimeMicros(n),
        (
            Value::TimeMicros(n)
            | Value::TimestampMillis(n)
            | Value::TimestampMicros(n)
            | Value::TimestampNanos(n)
            | Value::LocalTimestampMillis(n)
            | Value::LocalTimestampMicros(n)
            | Value::LocalTimestampNanos(n),
            Schema::Long,
        ) => Value::Long(n),
        _ => return None,
    })
}

/// A schema as an error message names it.
pub(crate) fn describe(schema: &Schema) -> String {
    match schema {
        Schema::Record(r) => format!("record {}", r.name.name()),
        Schema::Enum(e) => format!("enum {}", e.name.name()),
        Schema::Fixed(f) => format!("fixed {}", f.name.name()),
        Schema::Ref { name } => name.name().to_owned(),
        Schema::Union(_) => "union".to_owned(),
        Schema::Array(_) => "array".to_owned(),
        Schema::Map(_) => "map".to_owned(),
        Schema::Uuid(_) => "string (uuid)".to_owned(),
        Schema::TimestampMillis => "long (timestamp-millis)".to_owned(),
        Schema::TimestampMicros => "long (timestamp-micros)".to_owned(),
        Schema::TimestampNanos => "long (timestamp-nanos)".to_owned(),
        Schema::LocalTimestampMillis => "long (local-timestamp-millis)".to_owned(),
        Schema::LocalTimestampMicros => "long (local-timestamp-micros)".to_owned(),
        Schema::LocalTimestampNanos => "long (local-timestamp-nanos)".to_owned(),
        Schema::Date => "int (date)".to_owned(),
        Schema::TimeMillis => "int (time-millis)".to_owned(),
        Schema::TimeMicros => "long (time-micros)".to_owned(),
        other => format!("{:?}", apache_avro::schema::SchemaKind::from(other)).to_lowercase(),
    }
}

fn shown(path: &str) -> &str {
    if path.is_empty() { "the record" } else { path }
}

#[cfg(test)]
#[path = "resolution_tests.rs"]
mod tests;

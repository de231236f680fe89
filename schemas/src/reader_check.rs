//! Can this build's reader read everything a candidate writer schema can write? The
//! registry's compatibility rule answers for the schemas registered before; this answers
//! for the reader compiled into this build, with the same rules the decoder applies
//! ([`crate::resolution`]), for every union branch, not only the ones a sample uses.

use std::collections::HashSet;

use apache_avro::Schema;
use apache_avro::schema::ResolvedSchema;

use crate::avro_schema::current_schema;
use crate::resolution::{Resolver, deref, describe, names_match, scalar_readable};

/// What this build's reader cannot read of records written with `writer`: one line per
/// problem (a dotted field path, then why); empty when every branch resolves.
pub fn reader_problems(writer: &Schema) -> Vec<String> {
    let writer_names = match ResolvedSchema::try_from(writer) {
        Ok(names) => names,
        Err(error) => return vec![format!("the writer schema does not resolve: {error}")],
    };
    let reader_names =
        ResolvedSchema::try_from(current_schema()).expect("embedded schemas resolve (unit-tested)");
    let resolver = Resolver {
        writer_names: writer_names.get_names(),
        reader_names: reader_names.get_names(),
    };
    let mut check = Check {
        resolver: &resolver,
        seen: HashSet::new(),
        problems: Vec::new(),
    };
    check.at(writer, current_schema(), "");
    check.problems
}

struct Check<'r, 'a> {
    resolver: &'r Resolver<'a>,
    /// Record pairs already checked (recursive types end here).
    seen: HashSet<(String, String)>,
    problems: Vec<String>,
}

impl Check<'_, '_> {
    fn at(&mut self, writer: &Schema, reader: &Schema, path: &str) {
        let shown = if path.is_empty() { "the record" } else { path };
        let (writer, reader) = match (
            deref(writer, self.resolver.writer_names, path),
            deref(reader, self.resolver.reader_names, path),
        ) {
            (Ok(w), Ok(r)) => (w, r),
            (Err(e), _) | (_, Err(e)) => return self.problems.push(e),
        };
        if let Schema::Union(union) = writer {
            for branch in union.variants() {
                self.at(branch, reader, path);
            }
            return;
        }
        if let Schema::Union(union) = reader {
            match self.resolver.branch_for(writer, union) {
                Some(index) => self.at(writer, &union.variants()[index], path),
                None => self.problems.push(format!(
                    "{shown}: the writer's {} matches no branch of this reader's union [{}]",
                    describe(writer),
                    union
                        .variants()
                        .iter()
                        .map(describe)
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
            }
            return;
        }
        match (writer, reader) {
            (Schema::Record(w), Schema::Record(r)) => {
                if let Err(e) = names_match(&w.name, &r.name, r.aliases.as_deref(), path) {
                    return self.problems.push(e);
                }
                let pair = (w.name.fullname(None), r.name.fullname(None));
                if !self.seen.insert(pair) {
                    return;
                }
                for field in &r.fields {
                    let field_path = if path.is_empty() {
                        field.name.clone()
                    } else {
                        format!("{path}.{}", field.name)
                    };
                    let source = std::iter::once(&field.name)
                        .chain(&field.aliases)
                        .find_map(|name| w.fields.iter().find(|wf| wf.name == *name));
                    match source {
                        Some(wf) => self.at(&wf.schema, &field.schema, &field_path),
                        None if field.default.is_some() => {}
                        None => self.problems.push(format!(
                            "{field_path}: the writer's {} has no such field and this reader's has no default",
                            w.name.name()
                        )),
                    }
                }
            }
            (Schema::Enum(w), Schema::Enum(r)) => {
                if let Err(e) = names_match(&w.name, &r.name, r.aliases.as_deref(), path) {
                    return self.problems.push(e);
                }
                let unknown: Vec<&str> = w
                    .symbols
                    .iter()
                    .filter(|s| !r.symbols.contains(s))
                    .map(String::as_str)
                    .collect();
                if !unknown.is_empty() && r.default.is_none() {
                    self.problems.push(format!(
                        "{shown}: symbols {} of enum {} are unknown to this reader (no default)",
                        unknown.join(", "),
                        w.name.name()
                    ));
                }
            }
            (Schema::Fixed(w), Schema::Fixed(r)) => {
                if let Err(e) = names_match(&w.name, &r.name, r.aliases.as_deref(), path) {
                    return self.problems.push(e);
                }
                if w.size != r.size {
                    self.problems.push(format!(
                        "{shown}: fixed {} has size {} in the writer, {} here",
                        w.name.name(),
                        w.size,
                        r.size
                    ));
                }
            }
            (Schema::Array(w), Schema::Array(r)) => self.at(&w.items, &r.items, path),
            (Schema::Map(w), Schema::Map(r)) => self.at(&w.types, &r.types, path),
            _ if scalar_readable(writer, reader) => {}
            _ => self.problems.push(format!(
                "{shown}: the writer's {} cannot be read as {}",
                describe(writer),
                describe(reader)
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::avro_schema::{SCHEMA_V1_JSON, SCHEMA_V2_JSON};

    fn problems(json: &str) -> Vec<String> {
        reader_problems(&Schema::parse_str(json).unwrap())
    }

    #[test]
    fn every_embedded_version_is_readable() {
        assert_eq!(problems(SCHEMA_V1_JSON), Vec::<String>::new());
        assert_eq!(problems(SCHEMA_V2_JSON), Vec::<String>::new());
    }

    #[test]
    fn unknown_branches_and_units_are_named() {
        let refund = SCHEMA_V2_JSON.replacen(
            r#""name": "OrderCancelled","#,
            r#""name": "OrderRefunded","#,
            1,
        );
        let found = problems(&refund);
        assert!(
            found.len() == 1 && found[0].contains("payload") && found[0].contains("OrderRefunded"),
            "{found:?}"
        );
        let local = SCHEMA_V2_JSON.replacen("timestamp-millis", "local-timestamp-millis", 1);
        let found = problems(&local);
        assert!(
            found.len() == 1 && found[0].starts_with("occurred_at"),
            "{found:?}"
        );
        assert!(
            problems(&SCHEMA_V2_JSON.replacen("timestamp-millis", "timestamp-micros", 1))
                .is_empty()
        );
        let renamed = SCHEMA_V2_JSON.replacen(r#""name": "carrier""#, r#""name": "shipper""#, 1);
        assert!(
            problems(&renamed)
                .iter()
                .any(|p| p.starts_with("payload.carrier")),
            "a renamed field without alias on the reader side"
        );
    }
}

package io.orderflow.evolution;

import com.fasterxml.jackson.databind.JsonNode;
import java.util.ArrayList;
import java.util.List;
import org.apache.avro.LogicalType;
import org.apache.avro.Schema;
import org.apache.avro.generic.GenericData;

/** The matrix's record (the same JSON the Python writer gets) as an Avro datum of a writer
 *  schema: fields by name, then by alias, defaults for the rest; a union of records takes
 *  {@code [record name, fields]}; {@code occurred_at} is given in milliseconds and written in
 *  the writer's own timestamp unit. */
final class JsonToAvro {
    private JsonToAvro() {}

    static Object datum(Schema schema, JsonNode node) {
        switch (schema.getType()) {
            case RECORD: {
                GenericData.Record record = new GenericData.Record(schema);
                for (Schema.Field field : schema.getFields()) {
                    JsonNode value = node.get(field.name());
                    for (String alias : field.aliases()) {
                        if (value == null) {
                            value = node.get(alias);
                        }
                    }
                    record.put(field.pos(), value == null
                            ? GenericData.get().getDefaultValue(field)
                            : datum(field.schema(), value));
                }
                return record;
            }
            case UNION:
                return branch(schema, node);
            case ARRAY: {
                List<Object> items = new ArrayList<>();
                node.forEach(item -> items.add(datum(schema.getElementType(), item)));
                return items;
            }
            case ENUM:
                return new GenericData.EnumSymbol(schema, node.asText());
            case STRING:
                return node.asText();
            case INT:
                return node.asInt();
            case LONG:
                return timestamp(schema.getLogicalType(), node.asLong());
            case DOUBLE:
                return node.asDouble();
            case FLOAT:
                return (float) node.asDouble();
            case BOOLEAN:
                return node.asBoolean();
            case NULL:
                return null;
            default:
                throw new IllegalArgumentException("no JSON mapping for " + schema);
        }
    }

    private static Object branch(Schema union, JsonNode node) {
        if (node.isNull()) {
            return null;
        }
        if (node.isArray() && node.size() == 2 && node.get(0).isTextual()) {
            String name = node.get(0).asText();
            for (Schema branch : union.getTypes()) {
                if (branch.getType() == Schema.Type.RECORD
                        && (branch.getFullName().equals(name) || branch.getName().equals(name))) {
                    return datum(branch, node.get(1));
                }
            }
            throw new IllegalArgumentException("no branch " + name + " in " + union);
        }
        for (Schema branch : union.getTypes()) {
            if (branch.getType() != Schema.Type.NULL) {
                return datum(branch, node);
            }
        }
        throw new IllegalArgumentException("no branch for " + node + " in " + union);
    }

    /** Milliseconds in the writer's unit. */
    private static long timestamp(LogicalType type, long millis) {
        if (type == null) {
            return millis;
        }
        switch (type.getName()) {
            case "timestamp-micros":
            case "local-timestamp-micros":
                return millis * 1_000L;
            case "timestamp-nanos":
            case "local-timestamp-nanos":
                return millis * 1_000_000L;
            default:
                return millis;
        }
    }
}

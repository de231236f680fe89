#!/usr/bin/env python3
"""Confluent's Python AvroSerializer as another team's producer, for the evolution matrix
(schemas/tests/schema_evolution.rs). No broker: the serializer only talks to the registry.

Reads a JSON array of cases on stdin, each {"case", "topic", "schemas": [first, ...],
"record"}: registers every schema but the last under <topic>-value (what the subject held
before), then serializes "record" with the last one through AvroSerializer with
auto.register.schemas, as a producer of that schema would. Prints a JSON array of
{"case", "value": hex} or {"case", "refused": registry message}.

"record" is fastavro's view: occurred_at in milliseconds (a datetime is built from it, so
each writer schema encodes it in its own unit) and payload as [record name, fields].
"""

import datetime
import json
import sys

from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.serialization import MessageField, SerializationContext

EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)


def main():
    # The client waits forever by default: a request the registry never answered hung
    # the whole test run (CI, 2026-12-07). With a timeout it is retried (max.retries).
    registry = SchemaRegistryClient({"url": sys.argv[1], "timeout": 20})
    out = []
    for case in json.load(sys.stdin):
        subject = case["topic"] + "-value"
        *earlier, writer = case["schemas"]
        for schema in earlier:
            registry.register_schema(subject, Schema(schema, "AVRO"))
        record = dict(case["record"])
        record["occurred_at"] = EPOCH + datetime.timedelta(milliseconds=record["occurred_at"])
        name, fields = record["payload"]
        record["payload"] = (name, fields)
        serializer = AvroSerializer(registry, writer, conf={"auto.register.schemas": True})
        try:
            value = serializer(record, SerializationContext(case["topic"], MessageField.VALUE))
            out.append({"case": case["case"], "value": value.hex()})
        except SchemaRegistryError as error:
            out.append({"case": case["case"], "refused": str(error)})
    print(json.dumps(out))


if __name__ == "__main__":
    main()

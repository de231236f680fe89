#!/usr/bin/env python3
"""Confluent's Python client on the other side of orderflow's Avro codec.

Driven by schemas/tests/confluent_interop.rs; needs the packages in requirements.txt
(confluent-kafka with its avro and schemaregistry extras).

  produce --topic T                 reads a JSON array of events on stdin, encodes each
                                    with AvroSerializer (schemas/avro/order_event.v2.avsc,
                                    registered under T-value) and produces it keyed by its
                                    order_id to partition 0; prints {"schema_id": N}
  consume --topic T --offset O --count C
                                    decodes C records of partition 0 from offset O with
                                    AvroDeserializer; prints them as a JSON array

Both take --brokers and --registry (or KAFKA_BROKERS and SCHEMA_REGISTRY_URL).

The JSON is fastavro's view of an OrderEvent: `occurred_at` in milliseconds since the
epoch, `event_id` as text, and `payload` as [record full name, fields] (fastavro's tuple
notation for a union of records), so both sides compare every field value.
"""

import argparse
import datetime
import json
import os
import sys
import uuid

try:
    from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
    from confluent_kafka.schema_registry import SchemaRegistryClient, topic_subject_name_strategy
    from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
    from confluent_kafka.serialization import MessageField, SerializationContext
except ImportError as error:
    requirements = os.path.join(os.path.dirname(os.path.abspath(__file__)), "requirements.txt")
    sys.exit(f"confluent_kafka with its avro and schemaregistry extras is not importable "
             f"({error}); install it with: pip install -r {requirements}")

SCHEMA_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                           "..", "..", "avro", "order_event.v2.avsc")
EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
WAIT_SECONDS = 60


def to_avro(event):
    """Interop JSON -> the dict AvroSerializer writes."""
    record = dict(event)
    name, fields = event["payload"]
    record["payload"] = (name, fields)
    return record


def to_json(record):
    """What AvroDeserializer returned (return_record_name=True) -> interop JSON."""
    event = dict(record)
    occurred_at = event["occurred_at"]
    if isinstance(occurred_at, datetime.datetime):
        event["occurred_at"] = (occurred_at - EPOCH) // datetime.timedelta(milliseconds=1)
    if isinstance(event["event_id"], uuid.UUID):
        event["event_id"] = str(event["event_id"])
    name, fields = event["payload"]
    event["payload"] = [name, fields]
    return event


def produce(args, registry):
    with open(SCHEMA_FILE, encoding="utf-8") as schema_file:
        serializer = AvroSerializer(registry, schema_file.read())
    context = SerializationContext(args.topic, MessageField.VALUE)
    errors = []
    producer = Producer({"bootstrap.servers": args.brokers, "enable.idempotence": True})
    schema_ids = set()
    for event in json.load(sys.stdin):
        value = serializer(to_avro(event), context)
        schema_ids.add(int.from_bytes(value[1:5], "big"))
        producer.produce(args.topic, partition=0, key=event["order_id"].encode(), value=value,
                         on_delivery=lambda err, msg: errors.append(err) if err else None)
    if producer.flush(WAIT_SECONDS) or errors:
        sys.exit(f"produce to {args.topic} on {args.brokers} failed: "
                 f"{errors[0] if errors else f'not acknowledged within {WAIT_SECONDS} s'}")
    (schema_id,) = schema_ids
    print(json.dumps({"schema_id": schema_id}))


def consume(args, registry):
    # Subject <topic>-value, as the serializer registers it. confluent-kafka 2.16's default
    # for deserializers first asks the registry's associations API, which Apicurio does
    # not implement: it answers 404 once, and a second such request on the same
    # keep-alive connection was seen never to be answered (the test hung for minutes).
    deserializer = AvroDeserializer(
        registry,
        return_record_name=True,
        conf={"subject.name.strategy": topic_subject_name_strategy},
    )
    context = SerializationContext(args.topic, MessageField.VALUE)
    consumer = Consumer({
        "bootstrap.servers": args.brokers,
        "group.id": f"interop-{uuid.uuid4().hex[:12]}",
        "enable.auto.commit": False,
    })
    events = []
    try:
        consumer.assign([TopicPartition(args.topic, 0, args.offset)])
        deadline = datetime.datetime.now() + datetime.timedelta(seconds=WAIT_SECONDS)
        while len(events) < args.count:
            if datetime.datetime.now() > deadline:
                sys.exit(f"read {len(events)} of {args.count} records of {args.topic} "
                         f"from offset {args.offset} within {WAIT_SECONDS} s")
            message = consumer.poll(1.0)
            if message is None:
                continue
            if message.error():
                raise KafkaException(message.error())
            events.append(to_json(deserializer(message.value(), context)))
    finally:
        consumer.close()
    print(json.dumps(events))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["produce", "consume"])
    parser.add_argument("--topic", required=True)
    parser.add_argument("--offset", type=int, default=0)
    parser.add_argument("--count", type=int, default=1)
    parser.add_argument("--brokers", default=os.environ.get("KAFKA_BROKERS"))
    parser.add_argument("--registry", default=os.environ.get("SCHEMA_REGISTRY_URL"))
    args = parser.parse_args()
    if not args.brokers or not args.registry:
        sys.exit("set --brokers and --registry (or KAFKA_BROKERS and SCHEMA_REGISTRY_URL)")
    # A registry that stops answering fails the run instead of hanging it.
    registry = SchemaRegistryClient({"url": args.registry, "timeout": 20})
    if args.command == "produce":
        produce(args, registry)
    else:
        consume(args, registry)


if __name__ == "__main__":
    main()

"""Relay end-to-end delay of scripts/bench-order-api.sh.

Usage: relay_delay.py BROKERS TOPIC CREATED_CSV

CREATED_CSV holds `order_id,epoch_seconds` of every outbox row (when the order's
transaction wrote it). Reads every record of TOPIC (LogAppendTime: the broker's append
time) and prints p50/p99/max of append time minus created time over the orders, with
how many were matched. One event per order (OrderCreated) is expected.
"""

import csv
import sys

from confluent_kafka import Consumer, TopicPartition


def percentile(sorted_values, q):
    index = min(len(sorted_values) - 1, max(0, round(q / 100 * len(sorted_values)) - 1))
    return sorted_values[index]


def main():
    brokers, topic, created_csv = sys.argv[1:4]
    with open(created_csv, newline="") as handle:
        created = {row[0]: float(row[1]) for row in csv.reader(handle) if row}
    consumer = Consumer({
        "bootstrap.servers": brokers,
        "group.id": "relay-delay",
        "enable.auto.commit": False,
    })
    metadata = consumer.list_topics(topic, timeout=10)
    partitions = [TopicPartition(topic, p, 0) for p in metadata.topics[topic].partitions]
    ends = {tp.partition: consumer.get_watermark_offsets(tp, timeout=10)[1] for tp in partitions}
    consumer.assign(partitions)
    remaining = sum(ends.values())
    delays = []
    while remaining > 0:
        message = consumer.poll(10)
        if message is None:
            raise SystemExit(f"relay_delay: {remaining} records of {topic} not read after 10 s")
        if message.error():
            raise SystemExit(f"relay_delay: {message.error()}")
        remaining -= 1
        key = (message.key() or b"").decode()
        if key in created:
            _, millis = message.timestamp()
            delays.append(millis / 1000 - created.pop(key))
    consumer.close()
    if not delays:
        raise SystemExit("relay_delay: no record matched an outbox row")
    delays.sort()
    print(
        f"p50 {percentile(delays, 50) * 1000:.1f} ms, p99 {percentile(delays, 99) * 1000:.1f} ms, "
        f"max {delays[-1] * 1000:.1f} ms over {len(delays)} orders"
        + (f" ({len(created)} outbox rows without a record)" if created else "")
    )


if __name__ == "__main__":
    main()

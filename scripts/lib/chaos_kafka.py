"""Kafka helpers for scripts/chaos.sh (confluent-kafka, no group membership).

Usage: chaos_kafka.py BOOTSTRAP create TOPIC PARTITIONS   # TOPIC and TOPIC.dlq, RF 3, min ISR 2
       chaos_kafka.py BOOTSTRAP lag TOPIC GROUP           # prints the group's total lag
       chaos_kafka.py BOOTSTRAP busiest-leader TOPIC GROUP  # broker leading the partition with most lag (then most records)
"""

import sys

from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

TIMEOUT = 15


def create(bootstrap, topic, partitions):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    config = {"min.insync.replicas": "2", "unclean.leader.election.enable": "false"}
    topics = [NewTopic(name, int(partitions), 3, config=config) for name in (topic, topic + ".dlq")]
    for future in admin.create_topics(topics, request_timeout=TIMEOUT).values():
        future.result()


def lags(bootstrap, topic, group):
    """(partition, leader, lag, log end) for each partition; lag counts from 0 when nothing is committed."""
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False}
    )
    try:
        metadata = consumer.list_topics(topic, timeout=TIMEOUT).topics[topic]
        partitions = sorted(metadata.partitions)
        committed = consumer.committed(
            [TopicPartition(topic, p) for p in partitions], timeout=TIMEOUT
        )
        result = []
        for tp in committed:
            _, high = consumer.get_watermark_offsets(
                TopicPartition(topic, tp.partition), timeout=TIMEOUT, cached=False
            )
            done = tp.offset if tp.offset >= 0 else 0
            leader = metadata.partitions[tp.partition].leader
            result.append((tp.partition, leader, high - done, high))
        return result
    finally:
        consumer.close()


def main(argv):
    bootstrap, command = argv[1], argv[2]
    if command == "create":
        create(bootstrap, argv[3], argv[4])
    elif command == "lag":
        print(sum(row[2] for row in lags(bootstrap, argv[3], argv[4])))
    elif command == "busiest-leader":
        busiest = max(lags(bootstrap, argv[3], argv[4]), key=lambda row: (row[2], row[3]))
        print(busiest[1])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)

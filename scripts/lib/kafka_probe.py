"""Readiness probe for a Kafka broker or cluster: one metadata request.

Usage: kafka_probe.py BOOTSTRAP [BROKERS]
Exits 0 when the bootstrap address answers a metadata request that lists at least
BROKERS brokers (default 1) and a controller; prints what it saw otherwise and exits 1.
"""

import sys

from confluent_kafka.admin import AdminClient


def main() -> int:
    bootstrap = sys.argv[1]
    expected = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    admin = AdminClient({"bootstrap.servers": bootstrap, "socket.timeout.ms": 2000,
                         "log_level": 0})
    try:
        metadata = admin.list_topics(timeout=2)
    except Exception as err:  # KafkaException: not answering yet
        print(f"no metadata from {bootstrap}: {err}")
        return 1
    if len(metadata.brokers) < expected:
        print(f"{len(metadata.brokers)} of {expected} brokers registered")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The chaos runs' HTTP workload: orders placed and moved through the order API as a
careful client does it, under faults (the service killed, PostgreSQL stopped).

Usage: chaos_http.py BASE_URL TOKEN ORDERS RATE LOG [--deadline S] [--workers N]

Places ORDERS orders at RATE orders per second (N lifecycles at a time). Four orders
of five are created, paid (the order's total) and shipped; every fifth is created and
cancelled. Every write carries its own Idempotency-Key and is retried with the same key
after a connection error, a timeout, a 5xx, a 429 (after Retry-After) or a 409 that
says the key is in use, until it gets a 2xx or --deadline seconds (default 180) have
passed since its first attempt. Each 2xx is a line of LOG, as JSON:
{"order_id", "event_id", "event_type"}; `orderflow verify --http-log LOG` then checks
that every acknowledged change is in the topic exactly once.

Prints a JSON summary on stdout (orders, requests, retries, acknowledged, replayed,
failed); exits 1 when a change never got a 2xx or got a 4xx it should not have.
"""

import argparse
import json
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor

# Endpoint suffix of each change, and the event type the service writes for it.
EVENT_TYPES = {
    "create": "OrderCreated",
    "pay": "OrderPaid",
    "ship": "OrderShipped",
    "cancel": "OrderCancelled",
}
REQUEST_TIMEOUT_S = 15


class Workload:
    def __init__(self, base, token, log, deadline):
        self.base = base.rstrip("/")
        self.token = token
        self.deadline = deadline
        self.log = log
        self.lock = threading.Lock()
        self.counts = {"requests": 0, "retries": 0, "acknowledged": 0, "replayed": 0}
        self.failures = []
        # No proxy: the service is on loopback.
        self.opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def count(self, name, n=1):
        with self.lock:
            self.counts[name] += n

    def write(self, path, body, change):
        """POSTs until a 2xx; returns the answer's JSON, or None after a failure."""
        key = str(uuid.uuid4())
        data = json.dumps(body).encode()
        first = time.monotonic()
        attempt = 0
        while True:
            attempt += 1
            self.count("requests")
            if attempt > 1:
                self.count("retries")
            request = urllib.request.Request(
                self.base + path,
                data=data,
                method="POST",
                headers={
                    "Content-Type": "application/json",
                    "Authorization": "Bearer " + self.token,
                    "Idempotency-Key": key,
                },
            )
            wait = 0.5
            try:
                with self.opener.open(request, timeout=REQUEST_TIMEOUT_S) as answer:
                    payload = json.loads(answer.read())
                    if answer.headers.get("Idempotent-Replayed") == "true":
                        self.count("replayed")
                    self.acknowledge(payload, change)
                    return payload
            except urllib.error.HTTPError as error:
                text = error.read().decode(errors="replace")[:300]
                retryable = error.code >= 500 or error.code == 429 or (
                    error.code == 409 and "Idempotency-Key" in text
                )
                if not retryable:
                    self.fail(f"POST {path}: {error.code} {text}")
                    return None
                wait = float(error.headers.get("Retry-After") or 0.5)
            except (OSError, ValueError):
                # Refused, reset or timed out (the service is down or restarting).
                pass
            if time.monotonic() - first > self.deadline:
                self.fail(f"POST {path}: no 2xx in {self.deadline} s ({attempt} attempts)")
                return None
            time.sleep(min(wait, 2.0))

    def acknowledge(self, payload, change):
        line = json.dumps(
            {
                "order_id": payload["order_id"],
                "event_id": payload["event_id"],
                "event_type": EVENT_TYPES[change],
            }
        )
        with self.lock:
            self.log.write(line + "\n")
            self.log.flush()
            self.counts["acknowledged"] += 1

    def fail(self, why):
        with self.lock:
            self.failures.append(why)
        print(why, file=sys.stderr, flush=True)

    def lifecycle(self, n):
        items = [
            {"sku": f"SKU-{n % 97}", "quantity": 1 + n % 3, "unit_price_cents": 500 + n % 1000},
            {"sku": f"SKU-{n % 89}-B", "quantity": 1, "unit_price_cents": 250},
        ]
        total = sum(item["quantity"] * item["unit_price_cents"] for item in items)
        created = self.write(
            "/orders",
            {"customer_id": f"chaos-{n % 500}", "currency": "EUR", "items": items},
            "create",
        )
        if created is None:
            return
        order = f"/orders/{created['order_id']}"
        if n % 5 == 4:
            self.write(order + "/cancel", {"reason": "changed my mind"}, "cancel")
            return
        if self.write(order + "/pay", {"payment_id": f"pay-{n}", "amount_cents": total}, "pay"):
            self.write(
                order + "/ship", {"carrier": "DHL", "tracking_number": f"TRK{n:08d}"}, "ship"
            )


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("base")
    parser.add_argument("token")
    parser.add_argument("orders", type=int)
    parser.add_argument("rate", type=float)
    parser.add_argument("log")
    parser.add_argument("--deadline", type=float, default=180.0)
    parser.add_argument("--workers", type=int, default=16)
    args = parser.parse_args()

    with open(args.log, "w", encoding="utf-8") as log:
        workload = Workload(args.base, args.token, log, args.deadline)
        start = time.monotonic()
        with ThreadPoolExecutor(max_workers=args.workers) as pool:
            for n in range(args.orders):
                # Paced starts: order n starts n / rate seconds after the first.
                delay = start + n / args.rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                pool.submit(workload.lifecycle, n)
    summary = dict(workload.counts, orders=args.orders, failed=len(workload.failures))
    print(json.dumps(summary))
    return 1 if workload.failures else 0


if __name__ == "__main__":
    sys.exit(main())

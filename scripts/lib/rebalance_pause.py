"""Measures the processing pause of a consumer group while a worker joins it.

Usage: rebalance_pause.py SECONDS JOIN_AT_S METRICS_URL [METRICS_URL...]
Samples every worker's /metrics every 20 ms for SECONDS, sums
orderflow_consumer_records_total over all of them, and prints JSON: the longest
stretch without progress that starts at or after JOIN_AT_S (the pause the join
caused), how long after the join the joining worker (the last URL) finished its
first record (the rebalance's length as its new member sees it), and the group's
rate before and after. A worker that is not up yet counts as 0. The caller starts
the joining worker JOIN_AT_S seconds after this starts.
"""

import json
import sys
import time
import urllib.request


def processed(url: str) -> float:
    try:
        with urllib.request.urlopen(url, timeout=0.5) as response:
            text = response.read().decode()
    except OSError:
        return 0.0
    total = 0.0
    for line in text.splitlines():
        if line.startswith("orderflow_consumer_records_total{"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def main() -> int:
    duration, join_at = float(sys.argv[1]), float(sys.argv[2])
    urls = sys.argv[3:]
    start = time.monotonic()
    samples = []
    joiner_first = None
    while (now := time.monotonic() - start) < duration:
        counts = [processed(u) for u in urls]
        samples.append((now, sum(counts)))
        if joiner_first is None and counts[-1] > 0:
            joiner_first = now
        time.sleep(0.02)
    longest, gap_start, last_change, last_value = 0.0, None, None, None
    for t, value in samples:
        if last_value is None or value != last_value:
            if last_change is not None and last_change >= join_at - 0.5:
                gap = t - last_change
                if gap > longest:
                    longest, gap_start = gap, last_change
            last_change, last_value = t, value
    def rate(t0, t1):
        inside = [(t, v) for t, v in samples if t0 <= t <= t1]
        if len(inside) < 2 or inside[-1][0] == inside[0][0]:
            return None
        return round((inside[-1][1] - inside[0][1]) / (inside[-1][0] - inside[0][0]), 1)
    print(json.dumps({
        "pause_s": round(longest, 3),
        "pause_started_s_after_join": None if gap_start is None else round(gap_start - join_at, 3),
        "joiner_first_record_s": None if joiner_first is None else round(joiner_first - join_at, 3),
        "rate_before": rate(max(0.0, join_at - 5), join_at),
        "rate_after": rate(duration - 5, duration),
        "processed": samples[-1][1] if samples else 0,
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())

-- wrk script of scripts/bench-order-api.sh. Environment:
--   BENCH_METHOD  POST (create an order, the default) or GET (read ORDER_ID)
--   ORDER_ID      the order GET reads
--   BENCH_DELAY_MS  pause of each connection between its requests (0: saturation)
--   API_TOKEN     bearer token, when the service requires one
-- Prints one JSON line at the end: throughput, latency percentiles, errors.
local method = os.getenv("BENCH_METHOD") or "POST"
local order_id = os.getenv("ORDER_ID") or ""
local delay_ms = tonumber(os.getenv("BENCH_DELAY_MS") or "0")
local token = os.getenv("API_TOKEN")

local body = '{"customer_id": "bench", "currency": "EUR", "items": '
    .. '[{"sku": "SKU-1", "quantity": 2, "unit_price_cents": 1250}]}'

function init(args)
    wrk.method = method
    if method == "POST" then
        wrk.path = "/orders"
        wrk.body = body
        wrk.headers["Content-Type"] = "application/json"
    else
        wrk.path = "/orders/" .. order_id
        wrk.body = nil
    end
    if token and token ~= "" then
        wrk.headers["Authorization"] = "Bearer " .. token
    end
end

function delay()
    return delay_ms
end

function done(summary, latency, requests)
    local secs = summary.duration / 1e6
    local errors = summary.errors.connect + summary.errors.read + summary.errors.write
        + summary.errors.timeout
    io.write(string.format(
        '{"requests": %d, "secs": %.2f, "rps": %.1f, "p50_ms": %.2f, "p99_ms": %.2f, '
            .. '"p999_ms": %.2f, "max_ms": %.2f, "socket_errors": %d, "non2xx": %d}\n',
        summary.requests, secs, summary.requests / secs,
        latency:percentile(50) / 1000, latency:percentile(99) / 1000,
        latency:percentile(99.9) / 1000, latency.max / 1000, errors,
        summary.errors.status))
end

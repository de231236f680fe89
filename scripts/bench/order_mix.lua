-- wrk script of scripts/bench-outbox-drain.sh: a mixed write workload, several events
-- per order. Each connection asks for the next step of an order it saw answered
-- before it places a new one:
--   created -> pay (90%) or cancel (10%);  paid -> ship (80%) or cancel (20%)
-- so an order gets 2 or 3 events (about 2.8 on average), each written by the API with
-- its outbox row, and an order's next change follows its previous answer.
-- Environment: API_TOKEN (bearer token, when the service requires one).
-- Prints one JSON line at the end: throughput, latency percentiles, errors.
local token = os.getenv("API_TOKEN")
local create_body = '{"customer_id": "bench", "currency": "EUR", "items": '
    .. '[{"sku": "SKU-1", "quantity": 2, "unit_price_cents": 1250}]}'
local pay_body = '{"payment_id": "pay-bench", "amount_cents": 2500}'
local ship_body = '{"carrier": "bench", "tracking_number": "TRK-1"}'
local cancel_body = '{"reason": "changed my mind"}'

-- The next steps of this thread's orders, oldest first (a FIFO of {path, body}).
local next_steps = {}
local first, last = 1, 0
local headers = { ["Content-Type"] = "application/json" }

function init(args)
    if token and token ~= "" then
        headers["Authorization"] = "Bearer " .. token
    end
    math.randomseed(os.time() + tonumber(tostring({}):match("0x(%x+)") or "0", 16))
end

local function push(path, body)
    last = last + 1
    next_steps[last] = { path, body }
end

function request()
    if first <= last then
        local step = next_steps[first]
        next_steps[first] = nil
        first = first + 1
        return wrk.format("POST", step[1], headers, step[2])
    end
    return wrk.format("POST", "/orders", headers, create_body)
end

function response(status, _, body)
    if status ~= 200 and status ~= 201 then
        return
    end
    local id = body:match('"order_id"%s*:%s*"([^"]+)"')
    local state = body:match('"status"%s*:%s*"(%a+)"')
    if not id then
        return
    end
    local roll = math.random()
    if state == "created" then
        if roll < 0.9 then
            push("/orders/" .. id .. "/pay", pay_body)
        else
            push("/orders/" .. id .. "/cancel", cancel_body)
        end
    elseif state == "paid" then
        if roll < 0.8 then
            push("/orders/" .. id .. "/ship", ship_body)
        else
            push("/orders/" .. id .. "/cancel", cancel_body)
        end
    end
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

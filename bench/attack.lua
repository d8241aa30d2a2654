-- wrk script for bench/attack.sh: POST to the URL given on the command line, empty body.
--   ATTACK_DELAY_MS=N   each connection waits N ms before each request (a paced client; the
--                       wait is not part of the measured latency). Unset or 0: full speed.
-- done() prints one machine-readable RESULT line (latencies in ms, from wrk's histogram).
wrk.method = "POST"
wrk.headers["Connection"] = "keep-alive"

local pause = tonumber(os.getenv("ATTACK_DELAY_MS") or "0") or 0
if pause > 0 then
  function delay()
    return pause
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  local secs = summary.duration / 1e6
  local function ms(p) return latency:percentile(p) / 1000 end
  io.write(string.format(
    "RESULT requests=%d seconds=%.2f rps=%.1f non2xx=%d connect_errors=%d read_errors=%d " ..
    "write_errors=%d timeouts=%d p50_ms=%.2f p90_ms=%.2f p99_ms=%.2f p999_ms=%.2f max_ms=%.2f\n",
    summary.requests, secs, summary.requests / secs, e.status, e.connect, e.read, e.write,
    e.timeout, ms(50), ms(90), ms(99), ms(99.9), latency.max / 1000))
end

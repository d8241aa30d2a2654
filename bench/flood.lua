-- wrk script for bench/flood.sh: POST a 300-byte JSON body to the URL on the command line.
--   FLOOD_BODY   the body (exactly as sent)
--   FLOOD_SIGS   optional: a file of hex HMAC-SHA256 signatures, one per line. Then request i
--                sends FLOOD_TEMPLATE with %010d replaced by i and X-Hub-Signature-256 of line
--                i + 1: every request is a different signed message (the same one repeated would
--                be a replay, answered from the first execution). Threads take interleaved i;
--                each formats all of its requests before the run.
--   FLOOD_THREADS  wrk's -t, for the interleaving.
-- done() prints one machine-readable RESULT line (latencies in ms, from wrk's histogram).
wrk.method = "POST"
wrk.headers["Connection"] = "keep-alive"
wrk.headers["Content-Type"] = "application/json"
wrk.body = os.getenv("FLOOD_BODY")

local sig_file = os.getenv("FLOOD_SIGS")
local next_tid = 0

function setup(thread)
  thread:set("tid", next_tid)
  next_tid = next_tid + 1
end

if sig_file and sig_file ~= "" then
  -- Every request this thread sends is formatted once, in init(), before the run: formatting
  -- each in request() (string.format of the body, wrk.format of the request) cost wrk more CPU
  -- than the server's own per-request work, on the same 2 cores (bench/RESULTS.md).
  local reqs, n, count = {}, 0, 0
  function init(args)
    local template = os.getenv("FLOOD_TEMPLATE")
    local stride = tonumber(os.getenv("FLOOD_THREADS") or "1")
    local sigs = {}
    for line in io.lines(sig_file) do sigs[#sigs + 1] = line end
    for i = tid, #sigs - 1, stride do
      local headers = { ["X-Hub-Signature-256"] = "sha256=" .. sigs[i + 1], ["X-GitHub-Event"] = "push" }
      reqs[#reqs + 1] = wrk.format(nil, nil, headers, string.format(template, i))
    end
    count = #reqs
  end
  function request()
    n = n + 1
    if n > count then n = 1 end  -- past the table: replays (flood.sh's durability check says so)
    return reqs[n]
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

-- wrk script for bench/run.py: counts every response whose status is not 2xx (wrk itself counts only
-- >= 400, so a redirect to the provider's login would pass as a success), how many of each such status,
-- and prints machine-readable "BENCH key value" lines at the end.

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  non2xx = 0
  statuses = {}  -- status -> count, responses not 2xx only (copied out of each thread's state by done)
end

function response(status, headers, body)
  if status < 200 or status > 299 then
    non2xx = non2xx + 1
    statuses[status] = (statuses[status] or 0) + 1
  end
end

function done(summary, latency, requests)
  local bad = 0
  local seen = {}
  for _, t in ipairs(threads) do
    bad = bad + t:get("non2xx")
    for status, n in pairs(t:get("statuses") or {}) do
      seen[status] = (seen[status] or 0) + n
    end
  end
  local e = summary.errors
  io.write(string.format("BENCH requests %d\n", summary.requests))
  io.write(string.format("BENCH duration_us %d\n", summary.duration))
  io.write(string.format("BENCH bytes %d\n", summary.bytes))
  io.write(string.format("BENCH non2xx %d\n", bad))
  for status, n in pairs(seen) do
    io.write(string.format("BENCH status_%d %d\n", status, n))
  end
  -- connect, read and write errors and timeouts (wrk's --timeout: counted, the request not aborted)
  io.write(string.format("BENCH socket_errors %d\n", e.connect + e.read + e.write + e.timeout))
  io.write(string.format("BENCH connect_errors %d\n", e.connect))
  io.write(string.format("BENCH read_errors %d\n", e.read))
  io.write(string.format("BENCH write_errors %d\n", e.write))
  io.write(string.format("BENCH timeouts %d\n", e.timeout))
  io.write(string.format("BENCH status_errors %d\n", e.status))
  for _, p in ipairs({50, 90, 99}) do
    io.write(string.format("BENCH p%d_us %d\n", p, latency:percentile(p)))
  end
  io.write(string.format("BENCH mean_us %d\n", latency.mean))
  io.write(string.format("BENCH max_us %d\n", latency.max))
end

-- wrk script for bench/heartbeat.sh: one request shape per run, and a count of the
-- answers by status. Arguments after "--": METHOD EXPECTED_STATUS [HOST].
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  wrk.method = args[1] or "GET"
  expected = tonumber(args[2] or "200")
  if args[3] then
    wrk.headers["X-Cis490-Host"] = args[3]
  end
  good, bad = 0, 0
end

function response(status, headers, body)
  if status == expected then
    good = good + 1
  else
    bad = bad + 1
  end
end

function done(summary, latency, requests)
  local g, b = 0, 0
  for _, t in ipairs(threads) do
    g = g + t:get("good")
    b = b + t:get("bad")
  end
  io.write(string.format("STATUS expected=%d got=%d other=%d\n", threads[1]:get("expected"), g, b))
end

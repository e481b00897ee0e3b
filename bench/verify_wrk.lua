-- wrk script for bench/bench_verify.py: GET /api/v1/verify/<token>, cycling through a list of
-- tokens (one per line, file given after `--`) so that no single token is hot in any cache.
-- Each wrk thread starts at a different place in the list.  At the end one line is printed:
--   BENCH-JSON {"requests":…,"duration_us":…,"p50_us":…,"p99_us":…,…errors…}

local threads = {}
local next_id = 0

function setup(thread)
   thread:set("id", next_id)
   next_id = next_id + 1
   table.insert(threads, thread)
end

local paths = {}
local i = 0

function init(args)
   local file = args[1]
   if file == nil then
      error("usage: wrk ... -s verify_wrk.lua URL -- TOKENS_FILE")
   end
   for line in io.lines(file) do
      if #line > 0 then
         paths[#paths + 1] = "/api/v1/verify/" .. line
      end
   end
   if #paths == 0 then
      error("no tokens in " .. file)
   end
   -- Spread the threads' starting points over the list.
   i = (id * 7919) % #paths
end

function request()
   i = i % #paths + 1
   return wrk.format("GET", paths[i])
end

function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      'BENCH-JSON {"requests":%d,"duration_us":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,' ..
      '"max_us":%d,"mean_us":%.1f,"errors_connect":%d,"errors_read":%d,"errors_write":%d,' ..
      '"errors_status":%d,"errors_timeout":%d}\n',
      summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
      latency:percentile(99), latency.max, latency.mean, e.connect, e.read, e.write, e.status,
      e.timeout))
end

-- Shared by the bench's wrk scripts (loaded with dofile): reading the request body from a file,
-- counting the answers that are not 2xx, and done(), which prints the run's summary as one JSON
-- line for wrk_load.py to parse.
--
-- wrk counts statuses >= 400 itself (summary.errors.status) but not 1xx/3xx, and a redirect is
-- no answer either: response() counts every status outside 200-299 in the thread's Lua state;
-- setup() keeps each thread so that done() can add their counts up.

local report = {}
local threads = {}

function report.read_body(path)
   if not path or path == "" then
      error("the request body's file must be given after --")
   end
   local file = assert(io.open(path, "rb"))
   local body = file:read("*a")
   file:close()
   return body
end

function report.post(body, content_type, headers)
   wrk.method = "POST"
   wrk.body = body
   wrk.headers["Content-Type"] = content_type
   for name, value in pairs(headers or {}) do
      wrk.headers[name] = value
   end
end

function setup(thread)
   table.insert(threads, thread)
end

non_2xx = 0
first_bad_status = 0

function response(status, headers, body)
   if status < 200 or status > 299 then
      non_2xx = non_2xx + 1
      if first_bad_status == 0 then
         first_bad_status = status
      end
   end
end

function done(summary, latency, requests)
   local bad, first_bad = 0, 0
   for _, thread in ipairs(threads) do
      bad = bad + thread:get("non_2xx")
      if first_bad == 0 then
         first_bad = thread:get("first_bad_status")
      end
   end
   local e = summary.errors
   io.write(string.format(
      '{"requests": %d, "non_2xx": %d, "first_bad_status": %d, "status_errors": %d, ' ..
      '"connect_errors": %d, "read_errors": %d, "write_errors": %d, "timeouts": %d, ' ..
      '"duration_us": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d}\n',
      summary.requests, bad, first_bad, e.status, e.connect, e.read, e.write, e.timeout,
      summary.duration, latency:percentile(50), latency:percentile(90),
      latency:percentile(99), latency.max))
end

return report

-- Shared by the bench's wrk scripts (loaded with dofile): reading the request body from a file,
-- and done(), which prints the run's summary as one JSON line for wrk_load.py to parse.
-- No response() callback: wrk parses every response in C and counts statuses >= 400 itself
-- (summary.errors.status); a Lua callback per response would cost the client CPU.

local report = {}

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

function done(summary, latency, requests)
   local e = summary.errors
   local socket_errors = e.connect + e.read + e.write + e.timeout
   local seconds = summary.duration / 1e6
   io.write(string.format(
      '{"requests": %d, "errors": %d, "status_errors": %d, "socket_errors": %d, ' ..
      '"connect_errors": %d, "read_errors": %d, "write_errors": %d, "timeouts": %d, ' ..
      '"duration_s": %.6f, "rps": %.3f, "p50_ms": %.4f, "p90_ms": %.4f, "p99_ms": %.4f, ' ..
      '"max_ms": %.4f}\n',
      summary.requests, e.status + socket_errors, e.status, socket_errors,
      e.connect, e.read, e.write, e.timeout,
      seconds, summary.requests / seconds,
      latency:percentile(50) / 1000, latency:percentile(90) / 1000,
      latency:percentile(99) / 1000, latency.max / 1000))
end

return report

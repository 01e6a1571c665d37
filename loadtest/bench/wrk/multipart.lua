-- POST a multipart/form-data upload built beforehand (workload.py writes it to a file):
--   wrk -s multipart.lua URL -- BODY_FILE
-- The boundary is read from the body's first line, "--<boundary>\r\n".

local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local report = dofile(here .. "report.lua")

function init(args)
   local body = report.read_body(args[1])
   local boundary = body:match("^%-%-([^\r\n]+)\r\n")
   if not boundary then
      error(args[1] .. ": not a multipart body (no boundary on its first line)")
   end
   report.post(body, "multipart/form-data; boundary=" .. boundary)
end

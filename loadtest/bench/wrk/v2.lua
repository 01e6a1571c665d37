-- POST one Open Inference Protocol (v2) request with binary tensors, read from a file:
--   wrk -s v2.lua URL -- BODY_FILE JSON_HEADER_LENGTH
-- The body is the JSON header followed by the tensors' bytes (brainscan_v2protocol's framing);
-- Inference-Header-Content-Length says where the JSON ends.

local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local report = dofile(here .. "report.lua")

function init(args)
   report.post(report.read_body(args[1]), "application/octet-stream",
               {["Inference-Header-Content-Length"] = args[2]})
end

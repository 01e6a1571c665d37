-- POST a file's bytes as they are (the naive server's body: the model input's raw pixels):
--   wrk -s raw.lua URL -- BODY_FILE

local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local report = dofile(here .. "report.lua")

function init(args)
   report.post(report.read_body(args[1]), "application/octet-stream")
end

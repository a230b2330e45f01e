-- POST /v1/recommendations with one ad-hoc profile after another (PROFILES: one JSON body
-- a line, written by `tower-bench gateway-cluster`).
local bodies = {}
for line in io.lines(os.getenv("PROFILES")) do bodies[#bodies + 1] = line end
local n = 0
request = function()
  n = n + 1
  return wrk.format("POST", "/v1/recommendations", {["Content-Type"] = "application/json"}, bodies[n % #bodies + 1])
end

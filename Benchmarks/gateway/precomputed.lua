-- GET /v1/recommendations for every user in turn (ids 1…USERS), top 10.
local users = tonumber(os.getenv("USERS") or "1000")
local n = 0
request = function()
  n = n + 1
  return wrk.format("GET", "/v1/recommendations?user_id=" .. (n % users + 1) .. "&k=10")
end

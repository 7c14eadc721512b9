-- Every request asks for a query string no earlier request used, so each one misses the cache
-- and the route does its work. wrk passes one argument: a tag unique to the load, so that no
-- two loads (rounds) share keys either.
local tag
local counter = 0

function init(args)
  tag = args[1]
end

function request()
  counter = counter + 1
  return wrk.format(nil, wrk.path .. "?n=" .. tag .. "-" .. counter)
end

"""The Lua script that counts one audit record in Redis and answers what the thresholds need.

One EVALSHA per request (several in one pipeline when events are queued), so counting costs one
round trip. Every key starts with KEYS[1], the user's prefix ``crmgw:{u:<user>}:``: all of a user's
keys hash to one Redis Cluster slot, which is what lets one script touch them atomically.

Key layout under the prefix (TTL on every key):
    <group>c:<bucket secs>:<bucket no>   hash   counter -> count         (window sums, daily history)
    <group>d:<bucket secs>:<bucket no>   HLL    resource:id              (distinct records)
    <group>hmax:<day no>                 hash   counter -> largest earlier daily total (cached per day)
    last:<resource>                      string "<id>:<time>" of the last view (sequential ids)
    seen:<ip|net|country|ua>             zset   value -> last seen time  (first-seen flags)
    recent                               list   compact audit records    (alert evidence)

ARGV[1] is a JSON request built by ``RedisCounters._payload``; the reply is JSON as well.
"""

COUNT_SCRIPT = r"""
local p = KEYS[1]
local req = cjson.decode(ARGV[1])
local t = tonumber(req.t)
local inc = req.inc
local flags = {}

local function add_flag(name)
  flags[name] = 1
  inc[name] = (inc[name] or 0) + 1
end

-- sequential ids: this view's id is the previous view's id +/- 1 (same resource)
if req.seq then
  local k = p .. 'last:' .. req.seq.res
  local last = redis.call('GET', k)  -- "<id>:<event time>"
  if last then
    local sep = string.find(last, ':', 1, true)
    local last_id, last_t = tonumber(string.sub(last, 1, sep - 1)), tonumber(string.sub(last, sep + 1))
    if t - last_t <= req.seq.ttl and math.abs(last_id - tonumber(req.seq.id)) == 1 then
      add_flag('sequential_ids')
    end
  end
  redis.call('SET', k, req.seq.id .. ':' .. t, 'EX', req.seq.ttl)
end

-- first seen: "new" = not seen for `keep` seconds, by a user seen (anything) within `keep`
for _, s in ipairs(req.seen) do
  local k = p .. 'seen:' .. s[2]
  local last = redis.call('ZSCORE', k, s[3])
  if not (last and tonumber(last) >= t - req.keep) then
    redis.call('ZREMRANGEBYSCORE', k, '-inf', '(' .. (t - req.keep))
    if redis.call('ZCARD', k) > 0 then add_flag(s[1]) end
    redis.call('ZADD', k, 'GT', t, s[3])
    local n = redis.call('ZCARD', k)
    if n > req.cap then redis.call('ZREMRANGEBYRANK', k, 0, n - req.cap - 1) end
    redis.call('EXPIRE', k, req.keep)
  elseif tonumber(last) < t then
    redis.call('ZADD', k, 'GT', t, s[3])
    redis.call('EXPIRE', k, req.keep)
  end
  -- (seen at this very second already: the score and the TTL were set by that event; skipping
  -- the two writes saves 8 of the script's commands per event for a busy user)
end

local function window_keys(gp, kind, w)
  local gran, n = w[2], w[3]
  local b = math.floor(t / gran)
  local keys = {}
  for i = 0, n - 1 do keys[#keys + 1] = gp .. kind .. gran .. ':' .. (b - i) end
  return keys
end

local out = {flags = flags, inc = inc, groups = {}}
for _, g in ipairs(req.groups) do
  local gp = p .. g.p
  local res = {w = {}, d = {}, h = {}}
  for _, w in ipairs(g.d) do
    res.d[w[1]] = {redis.call('PFCOUNT', unpack(window_keys(gp, 'd:', w)))}
  end
  for _, gt in ipairs(g.gw) do
    local gran, ttl = gt[1], gt[2]
    local b = math.floor(t / gran)
    local k = gp .. 'c:' .. gran .. ':' .. b
    local fresh = false
    for f, v in pairs(inc) do
      if v ~= 0 and redis.call('HINCRBY', k, f, v) == v then fresh = true end
    end
    if fresh then redis.call('EXPIRE', k, ttl) end  -- a new bucket (or field): start its TTL
  end
  if #req.rk > 0 then
    for _, gt in ipairs(g.hw) do
      local hk = gp .. 'd:' .. gt[1] .. ':' .. math.floor(t / gt[1])
      -- 1 when the HLL changed, which includes its creation: then (re)start its TTL
      if redis.call('PFADD', hk, unpack(req.rk)) == 1 then redis.call('EXPIRE', hk, gt[2]) end
    end
  end
  for _, w in ipairs(g.d) do
    table.insert(res.d[w[1]], redis.call('PFCOUNT', unpack(window_keys(gp, 'd:', w))))
  end
  for _, w in ipairs(g.w) do
    local sums = {}
    for _, k in ipairs(window_keys(gp, 'c:', w)) do
      local vals = redis.call('HGETALL', k)
      for j = 1, #vals, 2 do sums[vals[j]] = (sums[vals[j]] or 0) + tonumber(vals[j + 1]) end
    end
    res.w[w[1]] = sums
  end
  if g.h > 0 then
    -- the largest daily totals before today, computed at the first request of the day and cached
    local day = math.floor(t / 86400)
    local ck = gp .. 'hmax:' .. day
    local cached = redis.call('HGETALL', ck)
    if #cached == 0 then
      for i = 1, g.h do
        local vals = redis.call('HGETALL', gp .. 'c:86400:' .. (day - i))
        for j = 1, #vals, 2 do
          local v = tonumber(vals[j + 1])
          if v > (res.h[vals[j]] or 0) then res.h[vals[j]] = v end
        end
      end
      cached = {'_', 0}
      for f, v in pairs(res.h) do cached[#cached + 1] = f; cached[#cached + 1] = v end
      redis.call('HSET', ck, unpack(cached))
      redis.call('EXPIRE', ck, 2 * 86400)
    else
      for j = 1, #cached, 2 do
        if cached[j] ~= '_' then res.h[cached[j]] = tonumber(cached[j + 1]) end
      end
    end
  end
  out.groups[#out.groups + 1] = res
end

if req.recent then
  local k = p .. 'recent'
  redis.call('LPUSH', k, req.recent)
  redis.call('LTRIM', k, 0, req.rcap - 1)
  redis.call('EXPIRE', k, req.keep)
end
return cjson.encode(out)
"""

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
    since                                hash   from -> ms of the oldest event these keys hold;
                                                run, lim -> the rebuild filling them (gateway/signals/rebuild.py)

``since`` is the user's epoch marker. Live counting creates it (HSETNX) and says so (``fresh``); the
stage knows which users it counted before, so a fresh marker for one of them means the user's keys
were lost (FLUSHALL, a failover to an empty replica) -- see gateway/signals/epoch.py. HSETNX is also
the script's first write on purpose: Redis checks maxmemory only before a script's *first* write
(later writes are let through so a script is never stopped half-way), so an OOM refuses the whole
script and nothing is half-counted. (An EXPIRE first would not do: it is a write that OOM allows.)

Replay (``req.rp``, from ``crmgw signals rebuild``) adds audit records older than what the keys hold:
records at or after ``lim`` -- the marker's ``from`` when this rebuild run first touched the user, or
the rebuild's start -- were counted live and are skipped, so a rebuild run twice counts nothing twice.
Replayed records are older than anything live, so they leave ``last:`` alone when it is newer, skip
the recent list and the history cache, and read nothing back.

ARGV[1] is a JSON request built by ``RedisCounters._payload``; the reply is JSON as well (replay: 1
for a counted record, 0 for a skipped one).
"""

COUNT_SCRIPT = r"""
local p = KEYS[1]
local req = cjson.decode(ARGV[1])
local t = tonumber(req.t)
local ms = tonumber(req.ms)
local inc = req.inc
local flags = {}
local rp = req.rp
local ek = p .. 'since'
local fresh = 0
if rp then
  if redis.call('HGET', ek, 'run') ~= rp.run then  -- this rebuild run's first record of the user
    local from = redis.call('HGET', ek, 'from') or rp.lim
    redis.call('HSET', ek, 'run', rp.run, 'lim', from, 'from', from)
  end
  if ms >= tonumber(redis.call('HGET', ek, 'lim')) then return 0 end  -- counted live already
  if ms < tonumber(redis.call('HGET', ek, 'from')) then redis.call('HSET', ek, 'from', req.ms) end
else
  fresh = redis.call('HSETNX', ek, 'from', req.ms)  -- the first write (see the module docstring)
end
redis.call('EXPIRE', ek, req.mttl)

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
    if rp and last_t > t then
      last = 'newer'  -- replay: a live view came later; it stays the last one and is no predecessor
    elseif t - last_t <= req.seq.ttl and math.abs(last_id - tonumber(req.seq.id)) == 1 then
      add_flag('sequential_ids')
    end
  end
  if last ~= 'newer' then redis.call('SET', k, req.seq.id .. ':' .. t, 'EX', req.seq.ttl) end
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

-- add this request to a group's buckets and distinct-record HyperLogLogs
local function count_group(gp, g)
  for _, gt in ipairs(g.gw) do
    local gran, ttl = gt[1], gt[2]
    local b = math.floor(t / gran)
    local k = gp .. 'c:' .. gran .. ':' .. b
    local new_field = false
    for f, v in pairs(inc) do
      if v ~= 0 and redis.call('HINCRBY', k, f, v) == v then new_field = true end
    end
    if new_field then redis.call('EXPIRE', k, ttl) end  -- a new bucket (or field): start its TTL
  end
  if #req.rk > 0 then
    for _, gt in ipairs(g.hw) do
      local hk = gp .. 'd:' .. gt[1] .. ':' .. math.floor(t / gt[1])
      -- 1 when the HLL changed, which includes its creation: then (re)start its TTL
      if redis.call('PFADD', hk, unpack(req.rk)) == 1 then redis.call('EXPIRE', hk, gt[2]) end
    end
  end
end

-- what the group's rules read after this request: window sums, distinct counts, history
local function read_group(gp, g, res)
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
end

if rp then  -- replay counts and reads nothing back
  for _, g in ipairs(req.groups) do count_group(p .. g.p, g) end
  return 1
end

local out = {flags = flags, inc = inc, groups = {}}
if fresh == 1 then out.fresh = 1 end
for _, g in ipairs(req.groups) do
  local gp = p .. g.p
  local res = {w = {}, d = {}, h = {}}
  for _, w in ipairs(g.d) do
    res.d[w[1]] = {redis.call('PFCOUNT', unpack(window_keys(gp, 'd:', w)))}
  end
  count_group(gp, g)
  read_group(gp, g, res)
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

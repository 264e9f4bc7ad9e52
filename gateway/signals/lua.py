"""The Lua script that counts one audit record in Redis and answers what the thresholds need.

One EVALSHA per *run* -- the events of one user at the same second with the same groups, in
arrival order (``req`` and ``req.more``; a single event is a run of one) -- several in one pipeline
when events are queued, so counting costs one round trip. A run adds its counters once and reads
its windows once (a busy user's batch costs about one event's commands); flags, distinct records
and the recent list still go event by event, and each event is answered as if counted alone. Every key starts with KEYS[1], the user's prefix ``crmgw:{u:<user>}:``: all of a user's
keys hash to one Redis Cluster slot, which is what lets one script touch them atomically.

Key layout under the prefix (TTL on every key):
    <group>c:<bucket secs>:<bucket no>   hash   counter -> count         (window sums, daily history)
    <group>d:<bucket secs>:<bucket no>   HLL    resource:id              (distinct records)
    <group>hmax:<day no>                 hash   counter -> largest earlier daily total (cached per day)
    <group>s:<bucket secs>               hash   _b -> the bucket no the sums are for; counter ->
                                                sum of the window's earlier buckets (the
                                                window-sum cache, below)
    ids:<resource>                       zset   record id -> last view time (sequential ids)
    seen:<ip|net|country|ua>             zset   value -> last seen time  (first-seen flags)
    recent                               list   compact audit records    (alert evidence)
    since                                hash   from -> ms of the oldest event these keys hold;
                                                n -> time of the newest live event counted;
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
Replayed records are older than anything live, so they never lower a viewed id's time (``ids:``),
skip the recent list and the history cache, add to the window-sum caches they fall into, and read
nothing back.

Window sums: a window of n buckets was n HGETALLs per read (35 per event with the shipped rules).
A cache per group and bucket size keeps the sum of the n-1 buckets *before* the current one, so a
read is that cached sum plus one HGETALL of the current bucket. It stays exact: it is recomputed
when a newer bucket begins, and a late event (older than the newest the user's marker records:
batches, another replica, a rebuild) written into a bucket a cached sum covers adds its increments
to the cached sum in the same script; the late event's own read sums its window from the buckets.

Sequential ids are counted independently of arrival order (batches and replicas deliver views
out of order): a view of a record id not viewed within ``SEQUENCE_TTL`` adds one per neighbouring
id (N-1, N+1) viewed within that time, so a walk over ids counts its adjacent pairs whatever the
order the views arrive in (ids 1,2,3 -> 0,1,1; ids 1,3,2 -> 0,0,2). A record viewed again adds
nothing (flipping between two records is not a walk).

ARGV[1] is a JSON request built by ``RedisCounters._payload``; the reply is JSON as well (replay: 1
for a counted record, 0 for a skipped one).
"""

from gateway.signals.counters import TIMESPANS

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

local function add_flag(name, n)
  n = n or 1
  flags[name] = (flags[name] or 0) + n
  inc[name] = (inc[name] or 0) + n
end

-- bucket secs -> buckets in the window of that bucket size (counters.TIMESPANS)
local NBUCKETS = __NBUCKETS__
-- Late: this event is older than the newest one counted for the user, so it may fall into a bucket
-- a window-sum cache covers (the common case, in time order, skips that check). Not known (a
-- replay, a marker without it): late.
local newest = (not rp) and tonumber(redis.call('HGET', ek, 'n'))
local late = not (newest and t >= newest)
if not rp and not (newest and newest >= t) then redis.call('HSET', ek, 'n', t) end

-- values seen by the run's events so far (all at time t): the next events need not ask Redis
local seen_now = {}
-- the flags of one event (``e``: the request, or one of ``req.more``), added to ``inc``
local function flag_event(e)
  -- sequential ids: adjacent pairs among the record ids viewed (see the module docstring)
  if e.seq then
    local k = p .. 'ids:' .. e.seq.res
    local ttl = e.seq.ttl
    local s = redis.call('ZMSCORE', k, e.seq.nb[1], e.seq.id, e.seq.nb[2])
    local function near(score) return score and math.abs(tonumber(score) - t) <= ttl end
    if not near(s[2]) then
      local n = (near(s[1]) and 1 or 0) + (near(s[3]) and 1 or 0)
      if n > 0 then add_flag('sequential_ids', n) end
    end
    if not s[2] or tonumber(s[2]) < t then
      redis.call('ZADD', k, t, e.seq.id)
      if not s[2] then  -- a new member: forget views older than the TTL and keep at most `cap`
        redis.call('ZREMRANGEBYSCORE', k, '-inf', '(' .. (t - ttl))
        local size = redis.call('ZCARD', k)
        if size > e.seq.cap then redis.call('ZREMRANGEBYRANK', k, 0, size - e.seq.cap - 1) end
      end
      redis.call('EXPIRE', k, ttl)
    end
  end

  -- first seen: "new" = not seen for `keep` seconds, by a user seen (anything) within `keep`
  for _, s in ipairs(e.seen) do
    local k = p .. 'seen:' .. s[2]
    local last = seen_now[k .. ' ' .. s[3]] or redis.call('ZSCORE', k, s[3])
    seen_now[k .. ' ' .. s[3]] = t  -- an earlier event of this run set its score to t
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
end

local function window_keys(gp, kind, w)
  local gran, n = w[2], w[3]
  local b = math.floor(t / gran)
  local keys = {}
  for i = 0, n - 1 do keys[#keys + 1] = gp .. kind .. gran .. ':' .. (b - i) end
  return keys
end

-- add ``inc`` to a group's buckets (one event's, or a run's: see below); a late event in a bucket
-- that a window-sum cache covers adds to the cached sum too (it stays the sum of those buckets)
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
    if late then
      local sk = gp .. 's:' .. gran
      local cb = tonumber(redis.call('HGET', sk, '_b'))
      if cb and b < cb and b > cb - (NBUCKETS[gran] or 0) then
        for f, v in pairs(inc) do
          if v ~= 0 then redis.call('HINCRBY', sk, f, v) end
        end
      end
    end
  end
end

-- add one event's record keys to a group's distinct-record HyperLogLogs
local function hll_group(gp, g, rk)
  if #rk > 0 then
    for _, gt in ipairs(g.hw) do
      local hk = gp .. 'd:' .. gt[1] .. ':' .. math.floor(t / gt[1])
      -- 1 when the HLL changed, which includes its creation: then (re)start its TTL
      if redis.call('PFADD', hk, unpack(rk)) == 1 then redis.call('EXPIRE', hk, gt[2]) end
    end
  end
end

local function add_bucket(sums, k)
  local vals = redis.call('HGETALL', k)
  for j = 1, #vals, 2 do sums[vals[j]] = (sums[vals[j]] or 0) + tonumber(vals[j + 1]) end
end

-- a window's sum: the cached sum of its earlier buckets (``<group>s:<bucket secs>``: ``_b`` the
-- bucket it is for, then counter -> sum; recomputed, and stored when this event's bucket is newer
-- than the cache's) plus the current bucket
local function window_sum(gp, w)
  local gran, n = w[2], w[3]
  local b = math.floor(t / gran)
  local sk = gp .. 's:' .. gran
  local raw = redis.call('HGETALL', sk)
  local sums, cb = {}, nil
  for j = 1, #raw, 2 do
    if raw[j] == '_b' then cb = tonumber(raw[j + 1]) else sums[raw[j]] = tonumber(raw[j + 1]) end
  end
  if cb ~= b then
    sums = {}
    for i = 1, n - 1 do add_bucket(sums, gp .. 'c:' .. gran .. ':' .. (b - i)) end
    if not (cb and cb > b) then  -- never move the cache back for a late event
      local args = {'_b', b}
      for f, v in pairs(sums) do args[#args + 1] = f; args[#args + 1] = v end
      if cb then redis.call('DEL', sk) end
      redis.call('HSET', sk, unpack(args))
      redis.call('EXPIRE', sk, gran * (n + 1))  -- as long as the window's buckets
    end
  end
  add_bucket(sums, gp .. 'c:' .. gran .. ':' .. b)
  return sums
end

-- what the group's rules read after this request: window sums, distinct counts, history
local function read_group(gp, g, res)
  for _, w in ipairs(g.w) do res.w[w[1]] = window_sum(gp, w) end
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
  flag_event(req)
  for _, g in ipairs(req.groups) do
    count_group(p .. g.p, g)
    hll_group(p .. g.p, g, req.rk)
  end
  return 1
end

-- Live: a run of events of this user at the same second with the same groups (``req`` and then
-- ``req.more``, in arrival order). Flags, distinct records and the recent list go event by event;
-- the counters are added once with the run's total and the windows read once after it: every
-- event of the run falls into the same buckets, so an event's window sums are the run's minus what
-- the events after it added (RedisCounters._parse_run), exactly as counted one by one.
local events = {req}
for _, e in ipairs(req.more or {}) do events[#events + 1] = e end
local out = {ev = {}, groups = {}}
if fresh == 1 then out.fresh = 1 end
local total, recent = {}, {}
for i, e in ipairs(events) do
  if i > 1 then inc, flags = e.inc, {} end
  flag_event(e)
  local d = {}
  for gi, g in ipairs(req.groups) do
    local gp = p .. g.p
    local dg = {}
    for _, w in ipairs(g.d) do dg[w[1]] = {redis.call('PFCOUNT', unpack(window_keys(gp, 'd:', w)))} end
    hll_group(gp, g, e.rk)
    for _, w in ipairs(g.d) do
      table.insert(dg[w[1]], redis.call('PFCOUNT', unpack(window_keys(gp, 'd:', w))))
    end
    d[gi] = dg
  end
  for f, v in pairs(inc) do total[f] = (total[f] or 0) + v end
  out.ev[i] = {flags = flags, inc = inc, d = d}
  if e.recent then recent[#recent + 1] = e.recent end
end
if #recent > 0 then  -- one LPUSH of several values leaves the last one first, as one LPUSH each
  local k = p .. 'recent'
  redis.call('LPUSH', k, unpack(recent))
  redis.call('LTRIM', k, 0, req.rcap - 1)
  redis.call('EXPIRE', k, req.keep)
end
inc = total
for _, g in ipairs(req.groups) do
  local gp = p .. g.p
  local res = {w = {}, h = {}}
  count_group(gp, g)
  read_group(gp, g, res)
  out.groups[#out.groups + 1] = res
end
return cjson.encode(out)
""".replace("__NBUCKETS__", "{" + ", ".join(f"[{gran}] = {n}" for gran, n in TIMESPANS.values()) + "}")

// The Redis engine's server-side steps. Each runs atomically in Redis, which is what makes offsets
// unique across nodes and keeps the order of PUBLISH equal to the order of offsets: a message is
// counted, stored and announced in one step, so no node can see offset N+1 announced before N.
// Keys of one channel share a {hash tag}, so the scripts also work on a Redis Cluster.

// Removes the entries older than the cutoff (ARGV time, ISO 8601, compared as text) from the head
// of a history stream; times grow along it, so they are a prefix. Usually the oldest entry is
// still young, and one read of one entry is all it costs; expired ones go in batches, each once.
const TRIM_AGED = `
local function trimAged(key, cutoff)
  local batch = 1
  while true do
    local head = redis.call('XRANGE', key, '-', '+', 'COUNT', batch)
    if #head == 0 then return end
    for _, entry in ipairs(head) do
      if entry[2][2] >= cutoff then
        if entry ~= head[1] then redis.call('XTRIM', key, 'MINID', entry[1]) end
        return
      end
    end
    redis.call('XTRIM', key, 'MINID', string.match(head[#head][1], '^%d+') .. '-1')
    batch = 64
  end
end
`;

/**
 * KEYS: offset, history. ARGV: data (JSON), time (ISO), publisher (JSON string or null),
 * history size, history ttl ms, offset ttl ms, pub/sub channel, age cutoff (ISO). Returns the offset.
 */
export const PUBLISH = `${TRIM_AGED}
local offset = redis.call('INCR', KEYS[1])
redis.call('PEXPIRE', KEYS[1], ARGV[6])
if tonumber(ARGV[4]) > 0 then
  redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[4], offset .. '-0', 't', ARGV[2], 'p', ARGV[3], 'd', ARGV[1])
  redis.call('PEXPIRE', KEYS[2], ARGV[5])
  trimAged(KEYS[2], ARGV[8])
end
redis.call('PUBLISH', ARGV[7], '{"t":"m","o":' .. offset .. ',"ts":"' .. ARGV[2] .. '","p":' .. ARGV[3] .. ',"d":' .. ARGV[1] .. '}')
return offset
`;

/**
 * KEYS: offset, history. ARGV: first offset wanted, count (-1: all), age cutoff (ISO). Returns
 * [latest offset, oldest offset held (latest + 1 when none), entries], read together so they agree.
 */
export const HISTORY = `${TRIM_AGED}
trimAged(KEYS[2], ARGV[3])
local offset = tonumber(redis.call('GET', KEYS[1]) or '0')
local head = redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', 1)
local oldest = offset + 1
if #head > 0 then oldest = tonumber(string.match(head[1][1], '^%d+')) end
local n = tonumber(ARGV[2])
if n == 0 then return {offset, oldest, {}} end
if n < 0 then return {offset, oldest, redis.call('XRANGE', KEYS[2], ARGV[1] .. '-0', '+')} end
return {offset, oldest, redis.call('XRANGE', KEYS[2], ARGV[1] .. '-0', '+', 'COUNT', n)}
`;

/**
 * KEYS: members, expiry. ARGV: client id, member (JSON), expires at (ms), keys' ttl ms, pub/sub
 * channel. Also the refresh of a live member: only a member that was not there announces a join.
 * The keys outlive the member's expiry, so that a sweep finds a dead node's last member and
 * announces its leave.
 */
export const JOIN = `
local new = redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
redis.call('PEXPIRE', KEYS[2], ARGV[4])
if new == 1 then redis.call('PUBLISH', ARGV[5], '{"t":"p","e":"join","m":' .. ARGV[2] .. '}') end
return new
`;

/** KEYS: members, expiry. ARGV: client id, pub/sub channel. */
export const LEAVE = `
local m = redis.call('HGET', KEYS[1], ARGV[1])
if not m then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('PUBLISH', ARGV[2], '{"t":"p","e":"leave","m":' .. m .. '}')
return 1
`;

/**
 * KEYS: members, expiry. ARGV: now (ms), pub/sub channel, 'list' or 'count'. Members whose node
 * stopped refreshing them (it crashed) leave; whichever node sweeps first announces each leave, and
 * only once. Returns the members left (JSON each), or with 'count' only how many, which spares a
 * periodic sweep of a big channel reading every member.
 */
export const SWEEP = `
local gone = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1])
for _, id in ipairs(gone) do
  local m = redis.call('HGET', KEYS[1], id)
  redis.call('ZREM', KEYS[2], id)
  if m then
    redis.call('HDEL', KEYS[1], id)
    redis.call('PUBLISH', ARGV[2], '{"t":"p","e":"leave","m":' .. m .. '}')
  end
end
if ARGV[3] == 'count' then return {redis.call('ZCARD', KEYS[2])} end
local members = {}
for _, id in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do
  local m = redis.call('HGET', KEYS[1], id)
  if m then members[#members + 1] = m end
end
return members
`;

package store

import "github.com/redis/go-redis/v9"

// Lua scripts of the redis store. Redis runs a script without interleaving
// other commands, which makes each of them atomic. Writes publish the
// changed key's name (ARGV: channel, key name) in the same step, and only
// when something changed.
const (
	// storeLua: KEYS[1] value key; ARGV value, channel, name.
	storeLua = `
redis.call('SET', KEYS[1], ARGV[1])
redis.call('PUBLISH', ARGV[2], ARGV[3])
return 1`

	// deleteLua: KEYS[1] value key; ARGV channel, name.
	deleteLua = `
if redis.call('DEL', KEYS[1]) == 1 then
  redis.call('PUBLISH', ARGV[1], ARGV[2])
end
return 1`

	// takeLua: KEYS[1] value key; ARGV channel, name. Returns the value,
	// or nil when there was none.
	takeLua = `
local v = redis.call('GET', KEYS[1])
if v then
  redis.call('DEL', KEYS[1])
  redis.call('PUBLISH', ARGV[1], ARGV[2])
end
return v`

	// casLua: KEYS[1] value key; ARGV "1" when there is an old value to
	// compare (else the key must be absent), old, new, channel, name.
	// Returns 1 when it swapped, else 0.
	casLua = `
local cur = redis.call('GET', KEYS[1])
if ARGV[1] == '1' then
  if cur ~= ARGV[2] then return 0 end
elseif cur then
  return 0
end
redis.call('SET', KEYS[1], ARGV[3])
redis.call('PUBLISH', ARGV[4], ARGV[5])
return 1`

	// renewLua: KEYS[1] lock key; ARGV owner, lease in ms. Extends the
	// lease only while the owner still holds it; returns 1 if so, else 0.
	renewLua = `
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0`

	// releaseLua: KEYS[1] lock key; ARGV owner. Deletes the lease only if
	// the owner still holds it; returns 1 if so, else 0.
	releaseLua = `
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0`
)

// redisScripts are the scripts of one store. Run sends EVALSHA and falls
// back to EVAL when the server does not know the script (after a restart).
type redisScripts struct {
	store, delete, take, cas, renew, release *redis.Script
}

// newRedisScripts prepares the scripts.
func newRedisScripts() redisScripts {
	return redisScripts{
		store:   redis.NewScript(storeLua),
		delete:  redis.NewScript(deleteLua),
		take:    redis.NewScript(takeLua),
		cas:     redis.NewScript(casLua),
		renew:   redis.NewScript(renewLua),
		release: redis.NewScript(releaseLua),
	}
}

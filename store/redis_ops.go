package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// The redis store's whole-store operations behind Backup, Restore and
// Rekey. Each is one Lua script, which Redis runs without interleaving any
// other command and writes to its append-only file as one transaction: a
// backup sees one consistent state, and a restore or rekey happens whole
// or not at all, whatever kills the sidekey process that sent it. The
// values travel sealed; Redis never sees a plaintext. A script holds the
// server for its run (milliseconds for thousands of values).
const (
	// snapshotLua: KEYS canary, format; ARGV data key pattern. Returns
	// canary, format, then key, value pairs.
	snapshotLua = `
local out = {redis.call('GET', KEYS[1]), redis.call('GET', KEYS[2])}
for _, k in ipairs(redis.call('KEYS', ARGV[1])) do
  out[#out+1] = k
  out[#out+1] = redis.call('GET', k)
end
return out`

	// restoreLua: KEYS canary, format, fingerprint, retired; ARGV data key
	// pattern, force ("1"), canary, format, fingerprint, then key, value
	// pairs. Returns -1 when it restored, else how many values the store
	// holds (and it wrote nothing).
	restoreLua = `
local existing = redis.call('KEYS', ARGV[1])
if #existing > 0 and ARGV[2] ~= '1' then return #existing end
for _, k in ipairs(existing) do redis.call('DEL', k) end
for i = 6, #ARGV, 2 do redis.call('SET', ARGV[i], ARGV[i+1]) end
redis.call('SET', KEYS[1], ARGV[3])
redis.call('SET', KEYS[2], ARGV[4])
redis.call('SET', KEYS[3], ARGV[5])
redis.call('DEL', KEYS[4])
return -1`

	// rekeyLua: KEYS canary, format, fingerprint, retired; ARGV data key
	// pattern, the canary expected, new canary, format, new fingerprint,
	// new retired list, then key, old value, new value triples. Returns how
	// many values it re-sealed; -1 when a value changed (or one came or
	// went) since they were read, -2 when the canary did, and then it wrote
	// nothing.
	rekeyLua = `
if redis.call('GET', KEYS[1]) ~= ARGV[2] then return -2 end
if #redis.call('KEYS', ARGV[1]) ~= (#ARGV - 6) / 3 then return -1 end
for i = 7, #ARGV, 3 do
  if redis.call('GET', ARGV[i]) ~= ARGV[i+1] then return -1 end
end
for i = 7, #ARGV, 3 do redis.call('SET', ARGV[i], ARGV[i+2]) end
redis.call('SET', KEYS[1], ARGV[3])
redis.call('SET', KEYS[2], ARGV[4])
redis.call('SET', KEYS[3], ARGV[5])
redis.call('SET', KEYS[4], ARGV[6])
return (#ARGV - 6) / 3`
)

var (
	snapshotScript = redis.NewScript(snapshotLua)
	restoreScript  = redis.NewScript(restoreLua)
	rekeyScript    = redis.NewScript(rekeyLua)
)

// rekeyAttempts bounds how often Rekey starts over because a replica wrote
// meanwhile.
const rekeyAttempts = 5

// metaKeys returns the keys of the canary and the format, fingerprint and
// retired records.
func (r *redisStore) metaKeys() []string {
	return []string{r.metaKey(canaryRecord), r.metaKey(formatRecord), r.metaKey(fingerprintRecord), r.metaKey(retiredRecord)}
}

// dataPattern is the KEYS pattern of every value.
func (r *redisStore) dataPattern() string { return globEscape(r.dataKey("")) + "*" }

// errWholeStoreOnCluster refuses backup, restore and rekey of a Redis
// Cluster store: their one-script consistency needs every key on one node.
func (r *redisStore) errWholeStoreOnCluster(op string) error {
	if _, ok := r.client.(*redis.ClusterClient); !ok {
		return nil
	}
	return fmt.Errorf("store: redis cluster at %s: %s needs every key on one node, which a cluster does not have; "+
		"%s of a cluster store is not supported yet (take Redis' own backups of every master instead)", r.addr, op, op)
}

// snapshot copies every sealed value and the canary in one script.
func (r *redisStore) snapshot(ctx context.Context) (*snapshot, error) {
	if err := r.errWholeStoreOnCluster("backup"); err != nil {
		return nil, err
	}
	res, err := snapshotScript.Run(ctx, r.client, r.metaKeys()[:2], r.dataPattern()).Slice()
	if err != nil {
		return nil, r.fail(ctx, "snapshot", err)
	}
	if len(res) < 2 || len(res)%2 != 0 {
		return nil, fmt.Errorf("store: redis at %s: snapshot: unexpected reply of %d items", r.addr, len(res))
	}
	snap := &snapshot{header: backupHeader{Kind: "redis", StoreFormat: 1, Created: time.Now().UTC()}}
	if c, ok := res[0].(string); ok {
		snap.header.Canary = []byte(c)
	}
	if f, ok := res[1].(string); ok {
		if snap.header.StoreFormat, err = parseFormat(r.where(), []byte(f)); err != nil {
			return nil, err
		}
	}
	prefix := r.dataKey("")
	for i := 2; i < len(res); i += 2 {
		k, _ := res[i].(string)
		v, ok := res[i+1].(string)
		if !ok || !strings.HasPrefix(k, prefix) {
			continue
		}
		snap.records = append(snap.records, record{key: k[len(prefix):], value: []byte(v)})
	}
	slices.SortFunc(snap.records, func(a, b record) int { return strings.Compare(a.key, b.key) })
	return snap, nil
}

// restore replaces every value with snap's, and the canary, sealed with
// the key of fingerprint fp, in one script. Unless force is set it refuses
// (errNotEmpty) a store that holds any value.
func (r *redisStore) restore(ctx context.Context, snap *snapshot, fp string, force bool) error {
	if err := r.errWholeStoreOnCluster("restore"); err != nil {
		return err
	}
	args := []any{r.dataPattern(), "0", snap.header.Canary, formatValue(), fp}
	if force {
		args[1] = "1"
	}
	for _, rec := range snap.records {
		args = append(args, r.dataKey(rec.key), nonNil(rec.value))
	}
	n, err := restoreScript.Run(ctx, r.client, r.metaKeys(), args...).Int()
	if err != nil {
		return r.fail(ctx, "restore", err)
	}
	if n >= 0 {
		return &errNotEmpty{where: r.where(), values: n}
	}
	return nil
}

// rekey re-seals every value and the canary from old to new in one
// script, records new's fingerprint and retires old's. A replica writing
// meanwhile makes it start over (a few times). A value that old does not
// open stops it before anything is written.
func (r *redisStore) rekey(ctx context.Context, old, new *sealer, oldFP, newFP string) (int, error) {
	if err := r.errWholeStoreOnCluster("rekey"); err != nil {
		return 0, err
	}
	for range rekeyAttempts {
		snap, err := r.snapshot(ctx)
		if err != nil {
			return 0, err
		}
		meta, err := r.readMetas(ctx, retiredRecord)
		if err != nil {
			return 0, err
		}
		args := []any{r.dataPattern(), nonNil(snap.header.Canary), new.seal(canaryName, []byte(canaryValue)),
			formatValue(), newFP, retiredWith(meta[retiredRecord], oldFP)}
		for _, rec := range snap.records {
			plain, err := old.open(rec.key, rec.value)
			if err != nil {
				return 0, err
			}
			args = append(args, r.dataKey(rec.key), nonNil(rec.value), new.seal(rec.key, plain))
		}
		n, err := rekeyScript.Run(ctx, r.client, r.metaKeys(), args...).Int()
		switch {
		case err != nil:
			return 0, r.fail(ctx, "rekey", err)
		case n == -2:
			return 0, fmt.Errorf("store: %s: its canary changed during the rekey (another rekey or restore?); nothing was re-sealed", r.where())
		case n >= 0:
			return n, nil
		}
	}
	return 0, errors.New("store: the redis store kept changing during the rekey (replicas writing); nothing was re-sealed — stop every sidekey and run it again")
}

package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/sidekey/sidekey/config"
)

// openSealedRedis implements Open for storage.type redis.
func openSealedRedis(cfg config.Storage, log *zap.Logger) (Store, error) {
	if log == nil {
		log = zap.NewNop()
	}
	if cfg.KeyFile == "" {
		return nil, errors.New("store: storage.type redis needs storage.key_file: every replica must seal values with the same key, " +
			"so provide it from a shared secret (sidekey never generates one for redis)")
	}
	key, err := readKeyFile(cfg.KeyFile, log)
	if err != nil {
		return nil, err
	}
	s, err := newSealer(key)
	if err != nil {
		return nil, err
	}
	r, err := openConfiguredRedis(cfg, log)
	if err != nil {
		return nil, err
	}
	if err := r.checkCanary(s, key, cfg.KeyFile); err != nil {
		r.Close()
		return nil, err
	}
	return &sealedStore{inner: r, s: s}, nil
}

// openConfiguredRedis opens the redis store cfg configures (one server,
// a Sentinel-watched primary or a Cluster), without sealing.
func openConfiguredRedis(cfg config.Storage, log *zap.Logger) (*redisStore, error) {
	opts := RedisOptions{
		Addr:         cfg.Redis.Addr,
		ClusterAddrs: clusterAddrs(cfg.Redis),
		Username:     cfg.Redis.Username,
		Password:     cfg.Redis.Password,
		PasswordFile: cfg.Redis.PasswordFile,
		DB:           cfg.Redis.DB,
		Prefix:       cfg.Redis.Prefix,
		TLS:          cfg.Redis.TLS,
		Logger:       log,

		MinReplicasAck: cfg.Redis.ReplicasToAck(),
	}
	if sn := cfg.Redis.Sentinel; sn != nil {
		opts.SentinelMaster, opts.SentinelAddrs = sn.Master, sn.Addrs
		opts.SentinelUsername, opts.SentinelPassword = sn.Username, sn.Password
	}
	return openRedis(opts)
}

// checkCanary proves that s holds the key of what the store keeps: it opens
// the sealed canary at {prefix}:meta:canary or, when there is none yet,
// checks that a stored value opens and then writes the canary (unless
// another replica wrote one first; then that one must open). It refuses a
// store in a newer format than this sidekey's and records the format and
// the key's fingerprint once the key is proven.
func (r *redisStore) checkCanary(s *sealer, key []byte, keyFile string) error {
	ctx, cancel := context.WithTimeout(r.base, redisOpenTimeout)
	defer cancel()
	meta, err := r.readMetas(ctx, formatRecord, fingerprintRecord, retiredRecord)
	if err != nil {
		return err
	}
	format, err := parseFormat(r.where(), meta[formatRecord])
	if err != nil {
		return err
	}
	if err := checkFormat(r.where(), format); err != nil {
		return err
	}
	wrongKey := func() error {
		return wrongKeyError(r.where(), keyFile, key, meta[retiredRecord], meta[fingerprintRecord])
	}
	opens := func(canary []byte) error {
		if v, err := s.open(canaryName, canary); err != nil || string(v) != canaryValue {
			return wrongKey()
		}
		return r.upgradeMeta(ctx, format, meta[fingerprintRecord], KeyFingerprint(key))
	}
	canaryKey := r.metaKey(canaryRecord)
	canary, err := r.client.Get(ctx, canaryKey).Bytes()
	switch {
	case err == nil:
		return opens(canary)
	case !errors.Is(err, redis.Nil):
		return r.fail(ctx, "read the canary", err)
	}
	k, value, ok, err := r.first(ctx)
	if err != nil {
		return err
	}
	if ok {
		if _, err := s.open(k, value); err != nil {
			return wrongKey()
		}
	}
	set, err := r.client.SetNX(ctx, canaryKey, s.seal(canaryName, []byte(canaryValue)), 0).Result()
	if err != nil {
		return r.fail(ctx, "write the canary", err)
	}
	if set {
		return r.upgradeMeta(ctx, format, meta[fingerprintRecord], KeyFingerprint(key))
	}
	canary, err = r.client.Get(ctx, canaryKey).Bytes()
	if err != nil {
		return r.fail(ctx, "read the canary", err)
	}
	return opens(canary)
}

// where names the store in messages.
func (r *redisStore) where() string {
	return fmt.Sprintf("the redis store at %s (prefix %q)", r.addr, r.prefix[:len(r.prefix)-1])
}

// readMetas returns the named meta records; a missing one is absent.
func (r *redisStore) readMetas(ctx context.Context, names ...string) (map[string][]byte, error) {
	keys := make([]string, len(names))
	for i, n := range names {
		keys[i] = r.metaKey(n)
	}
	// One GET each, pipelined: the records hash to different cluster slots,
	// so an MGET of them would be refused by a cluster (CROSSSLOT).
	cmds := make([]*redis.StringCmd, len(keys))
	_, err := r.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, k := range keys {
			cmds[i] = p.Get(ctx, k)
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, r.fail(ctx, "read the meta records", err)
	}
	out := make(map[string][]byte, len(names))
	for i, c := range cmds {
		v, err := c.Bytes()
		switch {
		case err == nil:
			out[names[i]] = v
		case !errors.Is(err, redis.Nil):
			return nil, r.fail(ctx, "read the meta records", err)
		}
	}
	return out, nil
}

// upgradeMeta records this sidekey's format and the key's fingerprint
// when they are not recorded yet.
func (r *redisStore) upgradeMeta(ctx context.Context, format int, recorded []byte, fp string) error {
	pairs := map[string]any{}
	if format < storeFormat {
		pairs[r.metaKey(formatRecord)] = formatValue()
	}
	if string(recorded) != fp {
		pairs[r.metaKey(fingerprintRecord)] = fp
	}
	if len(pairs) == 0 {
		return nil
	}
	// One SET each (not MSET): the records hash to different cluster slots.
	_, err := r.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for k, v := range pairs {
			p.Set(ctx, k, v, 0)
		}
		return nil
	})
	return r.fail(ctx, "write the meta records", err)
}

// first returns some stored key and its value; ok is false when the store
// holds none.
func (r *redisStore) first(ctx context.Context) (key string, value []byte, ok bool, err error) {
	err = r.scan(ctx, globEscape(r.dataKey(""))+"*", func(ctx context.Context, c redis.Cmdable, k string) (bool, error) {
		v, err := c.Get(ctx, k).Bytes()
		if errors.Is(err, redis.Nil) {
			return true, nil // deleted meanwhile
		}
		if err != nil {
			return false, err
		}
		key, value, ok = k[len(r.dataKey("")):], v, true
		return false, nil
	})
	if err != nil {
		return "", nil, false, r.fail(ctx, "scan", err)
	}
	return key, value, ok, nil
}

// clusterAddrs returns the cluster's node addresses, or nil without one.
func clusterAddrs(cfg config.Redis) []string {
	if cfg.Cluster == nil {
		return nil
	}
	return cfg.Cluster.Addrs
}

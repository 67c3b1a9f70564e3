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
	r, err := openRedis(opts)
	if err != nil {
		return nil, err
	}
	if err := r.checkCanary(s, cfg.KeyFile); err != nil {
		r.Close()
		return nil, err
	}
	return &sealedStore{inner: r, s: s}, nil
}

// checkCanary proves that s holds the key of what the store keeps: it opens
// the sealed canary at {prefix}:meta:canary or, when there is none yet,
// checks that a stored value opens and then writes the canary (unless
// another replica wrote one first; then that one must open).
func (r *redisStore) checkCanary(s *sealer, keyFile string) error {
	ctx, cancel := context.WithTimeout(r.base, redisOpenTimeout)
	defer cancel()
	wrongKey := fmt.Errorf("store: the key in %s does not open the redis store at %s (prefix %q): it was written with a different key: %w",
		keyFile, r.addr, r.prefix[:len(r.prefix)-1], ErrWrongKey)
	opens := func(canary []byte) error {
		if v, err := s.open(canaryName, canary); err != nil || string(v) != canaryValue {
			return wrongKey
		}
		return nil
	}
	canaryKey := r.metaKey(canaryRecord)
	canary, err := r.client.Get(ctx, canaryKey).Bytes()
	switch {
	case err == nil:
		return opens(canary)
	case !errors.Is(err, redis.Nil):
		return r.fail(ctx, "read the canary", err)
	}
	key, value, ok, err := r.first(ctx)
	if err != nil {
		return err
	}
	if ok {
		if _, err := s.open(key, value); err != nil {
			return wrongKey
		}
	}
	set, err := r.client.SetNX(ctx, canaryKey, s.seal(canaryName, []byte(canaryValue)), 0).Result()
	if err != nil {
		return r.fail(ctx, "write the canary", err)
	}
	if set {
		return nil
	}
	canary, err = r.client.Get(ctx, canaryKey).Bytes()
	if err != nil {
		return r.fail(ctx, "read the canary", err)
	}
	return opens(canary)
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

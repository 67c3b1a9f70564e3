package store

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

// The redis store talks to one of three deployments through go-redis'
// UniversalClient: a single server (Addr), the primary that Redis
// Sentinel names (SentinelMaster, SentinelAddrs; go-redis' failover client
// follows it across promotions) or a Redis Cluster (ClusterAddrs).
//
// Every Lua script of the store touches exactly one key, so each runs on
// the one cluster slot that key hashes to; a script that must touch
// several keys puts them under one hash tag (see ratelimit keys). Keys keep
// the single-server layout "{Prefix}:kv:{key}", so a store written before
// sentinel and cluster existed opens unchanged.

// redisMode reports which deployment opts describe: "addr", "sentinel" or
// "cluster"; more than one is an error.
func (opts RedisOptions) redisMode() (string, error) {
	var modes []string
	if opts.Addr != "" {
		modes = append(modes, "addr")
	}
	if opts.SentinelMaster != "" || len(opts.SentinelAddrs) > 0 {
		modes = append(modes, "sentinel")
	}
	if len(opts.ClusterAddrs) > 0 {
		modes = append(modes, "cluster")
	}
	switch len(modes) {
	case 0:
		return "addr", nil // the default address
	case 1:
		if modes[0] == "sentinel" && (opts.SentinelMaster == "" || len(opts.SentinelAddrs) == 0) {
			return "", fmt.Errorf("store: redis sentinel needs both a master name and sentinel addresses")
		}
		return modes[0], nil
	}
	return "", fmt.Errorf("store: redis: set one of addr, sentinel and cluster, not %s", strings.Join(modes, " and "))
}

// newRedisClient returns the client for opts' deployment (mode from
// redisMode) with the store's timeouts, and how messages name it.
func newRedisClient(opts RedisOptions, mode, addr, password string) (redis.UniversalClient, string, error) {
	var tlsConfig *tls.Config
	if opts.TLS {
		tlsConfig = &tls.Config{MinVersion: tls.VersionTLS12} // each node is verified against its own host name
	}
	common := func(o *redis.Options) {
		o.DialTimeout = redisDialTimeout
		o.DialerRetries = 1 // one attempt: a down server is reported at once
		o.MaxRetries = -1   // no silent replays: a Take or CompareAndSwap must not run twice
		o.ReadTimeout = redisIOTimeout
		o.WriteTimeout = redisIOTimeout
		o.ContextTimeoutEnabled = true // a caller's deadline bounds its command
		o.PoolSize = redisPoolSize
		o.DisableIdentity = true // no CLIENT SETINFO (older servers refuse it)
		o.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
		o.TLSConfig = tlsConfig
	}
	switch mode {
	case "sentinel":
		fo := &redis.FailoverOptions{
			MasterName:       opts.SentinelMaster,
			SentinelAddrs:    opts.SentinelAddrs,
			SentinelUsername: opts.SentinelUsername,
			SentinelPassword: string(opts.SentinelPassword),
			Username:         opts.Username,
			Password:         password,
			DB:               opts.DB,
		}
		o := &redis.Options{}
		common(o)
		fo.DialTimeout, fo.DialerRetries, fo.MaxRetries = o.DialTimeout, o.DialerRetries, o.MaxRetries
		fo.ReadTimeout, fo.WriteTimeout, fo.ContextTimeoutEnabled = o.ReadTimeout, o.WriteTimeout, o.ContextTimeoutEnabled
		fo.PoolSize, fo.DisableIdentity, fo.TLSConfig = o.PoolSize, o.DisableIdentity, o.TLSConfig
		name := fmt.Sprintf("sentinel %s (%s)", opts.SentinelMaster, strings.Join(opts.SentinelAddrs, ","))
		return redis.NewFailoverClient(fo), name, nil
	case "cluster":
		if opts.DB != 0 {
			return nil, "", fmt.Errorf("store: redis cluster has a single database; db %d is not possible", opts.DB)
		}
		o := &redis.Options{}
		common(o)
		co := &redis.ClusterOptions{
			Addrs:                    opts.ClusterAddrs,
			Username:                 opts.Username,
			Password:                 password,
			DialTimeout:              o.DialTimeout,
			DialerRetries:            o.DialerRetries,
			MaxRetries:               o.MaxRetries,
			ReadTimeout:              o.ReadTimeout,
			WriteTimeout:             o.WriteTimeout,
			ContextTimeoutEnabled:    o.ContextTimeoutEnabled,
			PoolSize:                 o.PoolSize,
			DisableIdentity:          o.DisableIdentity,
			MaintNotificationsConfig: o.MaintNotificationsConfig,
			TLSConfig:                o.TLSConfig,
			// A backstop to the reload after a failed command (fail).
			ClusterStateReloadInterval: 10 * time.Second,
		}
		return redis.NewClusterClient(co), "cluster (" + strings.Join(opts.ClusterAddrs, ",") + ")", nil
	}
	o := &redis.Options{Addr: addr, Username: opts.Username, Password: password, DB: opts.DB}
	common(o)
	if opts.TLS {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, "", fmt.Errorf("store: redis addr %q: %w", addr, err)
		}
		o.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12, ServerName: host}
	}
	return redis.NewClient(o), addr, nil
}

// primaryFor returns a client of the primary that holds key: the store's
// own client for a single server or sentinel, the slot's master in a
// cluster. Commands that must share a connection (a write and the WAIT
// after it) take one from it with Conn.
func (r *redisStore) primaryFor(ctx context.Context, key string) (*redis.Client, error) {
	switch c := r.client.(type) {
	case *redis.Client:
		return c, nil
	case *redis.ClusterClient:
		return c.MasterForKey(ctx, key)
	}
	return nil, fmt.Errorf("store: unexpected redis client %T", r.client)
}

// scan calls fn with every key matching pattern, on every primary (a
// cluster spreads keys over several), until fn returns false.
func (r *redisStore) scan(ctx context.Context, pattern string, fn func(ctx context.Context, c redis.Cmdable, key string) (more bool, err error)) error {
	var mu sync.Mutex // serialises fn: a cluster's primaries are scanned at once
	stopped := false  // guarded by mu: fn asked to stop
	one := func(ctx context.Context, c redis.Cmdable) error {
		var cursor uint64
		for {
			batch, next, err := c.Scan(ctx, cursor, pattern, 1000).Result()
			if err != nil {
				return err
			}
			for _, k := range batch {
				mu.Lock()
				if stopped {
					mu.Unlock()
					return nil
				}
				more, err := fn(ctx, c, k)
				stop := err != nil || !more
				stopped = stop
				mu.Unlock()
				if stop {
					return err
				}
			}
			if cursor = next; cursor == 0 {
				return nil
			}
		}
	}
	if cc, ok := r.client.(*redis.ClusterClient); ok {
		return cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error { return one(ctx, c) })
	}
	return one(ctx, r.client)
}

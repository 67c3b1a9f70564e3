package store

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/sidekey/sidekey/config"
)

// Defaults of RedisOptions and the client's timeouts.
const (
	defaultRedisAddr   = "127.0.0.1:6379"
	defaultRedisPrefix = "sidekey"
	defaultLockTTL     = 15 * time.Second

	redisDialTimeout  = 2 * time.Second // one connection attempt
	redisIOTimeout    = 3 * time.Second // one command's read or write
	redisPoolSize     = 20
	redisOpenTimeout  = 10 * time.Second // the checks OpenRedis and Open make
	defaultAckTimeout = time.Second      // RedisOptions.AckTimeout
)

// RedisOptions configures OpenRedis. Zero values mean "use the default";
// the fields are those of config.Redis plus the lock lease and a logger.
// Set at most one of Addr, the Sentinel fields and ClusterAddrs.
type RedisOptions struct {
	// Addr is the server's host:port. Default "127.0.0.1:6379" when
	// neither sentinel nor cluster is set.
	Addr string
	// SentinelMaster is the name Redis Sentinel monitors; with
	// SentinelAddrs the store talks to the primary the sentinels name and
	// follows it across a promotion. Empty: no sentinel.
	SentinelMaster string
	// SentinelAddrs are the sentinels' host:port addresses.
	SentinelAddrs []string
	// SentinelUsername and SentinelPassword authenticate to the
	// sentinels (Username and Password to the data nodes). Empty: none.
	SentinelUsername string
	SentinelPassword config.Secret
	// ClusterAddrs are host:port addresses of Redis Cluster nodes; the
	// rest are discovered. Empty: no cluster.
	ClusterAddrs []string
	// MinReplicasAck is how many replicas must acknowledge each write
	// (Redis WAIT) before it is reported stored; a write they do not
	// acknowledge within AckTimeout returns an error matching
	// ErrNotReplicated and ErrUnavailable. Default 0: no WAIT.
	MinReplicasAck int
	// AckTimeout bounds the wait for MinReplicasAck replicas. Default 1 s.
	AckTimeout time.Duration
	// Username authenticates with Redis ACLs. Empty: the default user.
	Username string
	// Password authenticates to Redis. Empty: the content of PasswordFile
	// (without a trailing newline), or no password.
	Password config.Secret
	// PasswordFile holds the password when Password is empty. Empty: none.
	PasswordFile string
	// DB is the database number. Default 0.
	DB int
	// Prefix namespaces everything the store keeps in Redis: values under
	// "{Prefix}:kv:{key}", lock leases under "{Prefix}:lock:{name}", its
	// own records under "{Prefix}:meta:" and change notifications on the
	// channel "{Prefix}:changes". Default "sidekey".
	Prefix string
	// TLS connects with TLS 1.2 or later, verifying the server against the
	// system's roots and Addr's host. Default false.
	TLS bool
	// LockTTL is the lease of a held lock: renewed every third of it while
	// held, it frees the lock this long after its holder died. It should
	// exceed the slowest token request. Default 15 s.
	LockTTL time.Duration
	// Logger receives lease and connection warnings, never a value or the
	// password. Nil: zap.NewNop().
	Logger *zap.Logger

	renewEvery time.Duration // test hook: lease renewal interval; 0: LockTTL/3, negative: never
}

// redisStore is an unsealed Store in Redis. Open wraps it with Seal; on its
// own it stores values as given.
type redisStore struct {
	client  redis.UniversalClient
	addr    string        // for messages: the address, or the sentinel or cluster
	acks    int           // replicas that must acknowledge a write (WAIT); 0: none
	ackWait time.Duration // how long WAIT waits for them
	prefix  string        // Prefix + ":"
	ttl     time.Duration
	renew   time.Duration // <= 0: never
	log     *zap.Logger
	scripts redisScripts
	locks   *lockTable // one Redis poller per lock name per process

	rate      rateScripts // shared rate limits (SharedBucket)
	fleetOnce sync.Once   // starts the heartbeat on the first SharedBucket
	fleet     fleet

	base      context.Context // cancelled by Close: stops lease renewals, lock waits and watches
	cancel    context.CancelFunc
	closeOnce sync.Once
	closeErr  error
}

// OpenRedis connects to the Redis server opts names and returns a Store
// kept there, shared by every process that opens the same server, DB and
// Prefix. It does not seal values (Open does, and Redis then never sees a
// plaintext); it checks that the server answers before it returns. It is
// safe for concurrent use and implements Watcher across every process.
//
// Lock takes a lease that the holder renews while it holds the lock and
// that only the holder releases (each acquisition has its own random owner
// token); a holder that dies frees the lock after LockTTL. A holder that
// loses its lease (it stalled past the lease, or could not reach Redis to
// renew it) is told in the log; CompareAndSwap keeps it from overwriting
// what a later holder wrote.
//
// When Redis cannot be reached, every method fails at once with an error
// matching ErrUnavailable, Lock included. The client reconnects by itself,
// so the same store works again once Redis is back.
//
// A write is as durable as the server's persistence makes it: Store
// returns once Redis has applied it, and a server without an append-only
// file (appendonly yes) loses recent writes when it restarts.
func OpenRedis(opts RedisOptions) (Store, error) {
	r, err := openRedis(opts)
	if err != nil {
		return nil, err
	}
	return r, nil
}

// openRedis implements OpenRedis.
func openRedis(opts RedisOptions) (*redisStore, error) {
	log := opts.Logger
	if log == nil {
		log = zap.NewNop()
	}
	mode, err := opts.redisMode()
	if err != nil {
		return nil, err
	}
	addr := opts.Addr
	if mode == "addr" {
		addr = cmp.Or(addr, defaultRedisAddr)
	}
	prefix := cmp.Or(opts.Prefix, defaultRedisPrefix)
	if err := checkRedisPrefix(prefix); err != nil {
		return nil, err
	}
	if opts.MinReplicasAck < 0 {
		return nil, fmt.Errorf("store: redis min replicas ack %d is negative", opts.MinReplicasAck)
	}
	ttl := opts.LockTTL
	if ttl <= 0 {
		ttl = defaultLockTTL
	}
	if ttl < 3*time.Millisecond {
		return nil, fmt.Errorf("store: redis lock lease %v is too short", ttl)
	}
	renew := opts.renewEvery
	if renew == 0 {
		renew = ttl / 3
	}
	password := string(opts.Password)
	if password == "" && opts.PasswordFile != "" {
		b, err := os.ReadFile(opts.PasswordFile)
		if err != nil {
			return nil, fmt.Errorf("store: redis password file: %w", err)
		}
		password = strings.TrimRight(string(b), "\r\n")
	}
	client, name, err := newRedisClient(opts, mode, addr, password)
	if err != nil {
		return nil, err
	}
	base, cancel := context.WithCancel(context.Background())
	r := &redisStore{
		client:  client,
		addr:    name,
		acks:    opts.MinReplicasAck,
		ackWait: cmp.Or(opts.AckTimeout, defaultAckTimeout),
		prefix:  prefix + ":",
		ttl:     ttl,
		renew:   renew,
		log:     log.With(zap.String("redis", name)),
		scripts: newRedisScripts(),
		rate:    newRateScripts(),
		locks:   newLockTable(),
		base:    base,
		cancel:  cancel,
	}
	ctx, cancelPing := context.WithTimeout(context.Background(), redisOpenTimeout)
	defer cancelPing()
	if err := r.client.Ping(ctx).Err(); err != nil {
		err = r.fail(ctx, "open", err)
		r.Close()
		return nil, err
	}
	if r.acks > 0 {
		r.warnFewReplicas(ctx)
	}
	r.log.Info("opened the redis store", zap.String("mode", mode), zap.String("prefix", prefix), zap.Int("db", opts.DB),
		zap.Bool("tls", opts.TLS), zap.Int("min_replicas_ack", r.acks))
	return r, nil
}

// checkRedisPrefix refuses a prefix with a space or control character, or
// with a ':'-separated segment the store uses for its namespaces ("kv",
// "lock", "meta", "rl"): such a prefix could name another prefix's keys, as
// "a:kv:x" would a's key "x:kv:…".
func checkRedisPrefix(prefix string) error {
	if strings.ContainsFunc(prefix, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return fmt.Errorf("store: redis prefix %q has a space or control character", prefix)
	}
	for _, seg := range strings.Split(prefix, ":") {
		switch seg {
		case "kv", "lock", "meta", "rl":
			return fmt.Errorf("store: redis prefix %q has the segment %q, which the store uses itself", prefix, seg)
		}
	}
	return nil
}

// Keys and channels in Redis.
func (r *redisStore) dataKey(key string) string  { return r.prefix + "kv:" + key }
func (r *redisStore) lockKey(name string) string { return r.prefix + "lock:" + name }
func (r *redisStore) metaKey(name string) string { return r.prefix + "meta:" + name }
func (r *redisStore) changes() string            { return r.prefix + "changes" }

// Load implements Store.
func (r *redisStore) Load(ctx context.Context, key string) ([]byte, error) {
	if err := r.begin(ctx, key); err != nil {
		return nil, err
	}
	v, err := r.client.Get(ctx, r.dataKey(key)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, errNotExist(key)
	}
	if err != nil {
		return nil, r.fail(ctx, fmt.Sprintf("load %q", key), err)
	}
	return v, nil
}

// Store implements Store: SET and a change notification, in one script.
// It returns once Redis has applied the write; how durable that is depends
// on the server's persistence settings.
func (r *redisStore) Store(ctx context.Context, key string, value []byte) error {
	if err := r.begin(ctx, key); err != nil {
		return err
	}
	if value == nil {
		value = []byte{}
	}
	op := fmt.Sprintf("store %q", key)
	err := r.write(ctx, key, op, func(c redis.Scripter) (bool, error) {
		return true, r.scripts.store.Run(ctx, c, []string{r.dataKey(key)}, value, r.changes(), key).Err()
	})
	return r.fail(ctx, op, err)
}

// Delete implements Store.
func (r *redisStore) Delete(ctx context.Context, key string) error {
	if err := r.begin(ctx, key); err != nil {
		return err
	}
	op := fmt.Sprintf("delete %q", key)
	err := r.write(ctx, key, op, func(c redis.Scripter) (bool, error) {
		return true, r.scripts.delete.Run(ctx, c, []string{r.dataKey(key)}, r.changes(), key).Err()
	})
	return r.fail(ctx, op, err)
}

// Take implements Store: GET and DEL in one script.
func (r *redisStore) Take(ctx context.Context, key string) ([]byte, error) {
	if err := r.begin(ctx, key); err != nil {
		return nil, err
	}
	v, err := r.scripts.take.Run(ctx, r.client, []string{r.dataKey(key)}, r.changes(), key).Text()
	if errors.Is(err, redis.Nil) {
		return nil, errNotExist(key)
	}
	if err != nil {
		return nil, r.fail(ctx, fmt.Sprintf("take %q", key), err)
	}
	return []byte(v), nil
}

// CompareAndSwap implements Store with a script, which Redis runs without
// interleaving any other command.
func (r *redisStore) CompareAndSwap(ctx context.Context, key string, old, new []byte) (bool, error) {
	if err := r.begin(ctx, key); err != nil {
		return false, err
	}
	hasOld := "0"
	if old != nil {
		hasOld = "1"
	}
	if new == nil {
		new = []byte{}
	}
	op := fmt.Sprintf("compare and swap %q", key)
	swapped := false
	err := r.write(ctx, key, op, func(c redis.Scripter) (bool, error) {
		n, err := r.scripts.cas.Run(ctx, c, []string{r.dataKey(key)}, hasOld, nonNil(old), new, r.changes(), key).Int()
		swapped = err == nil && n == 1
		return swapped, err
	})
	if err != nil {
		return false, r.fail(ctx, op, err)
	}
	return swapped, nil
}

// List implements Store with SCAN over the prefix's keys.
func (r *redisStore) List(ctx context.Context, prefix string) ([]string, error) {
	if err := r.beginPrefix(ctx, prefix); err != nil {
		return nil, err
	}
	full := r.dataKey(prefix)
	keys := []string{}
	err := r.scan(ctx, globEscape(full)+"*", func(_ context.Context, _ redis.Cmdable, k string) (bool, error) {
		if strings.HasPrefix(k, full) {
			keys = append(keys, strings.TrimPrefix(k, r.dataKey("")))
		}
		return true, nil
	})
	if err != nil {
		return nil, r.fail(ctx, fmt.Sprintf("list %q", prefix), err)
	}
	slices.Sort(keys)
	return slices.Compact(keys), nil // SCAN may return a key twice
}

// Ping implements Store: a PING round trip.
func (r *redisStore) Ping(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if r.isClosed() {
		return ErrClosed
	}
	return r.fail(ctx, "ping", r.client.Ping(ctx).Err())
}

// Close implements Store. It stops renewing held leases (they run out
// after LockTTL), wakes waiting Lock calls, ends every Watch and closes the
// connections.
func (r *redisStore) Close() error {
	r.closeOnce.Do(func() {
		r.cancel()
		r.locks.close()
		if err := r.client.Close(); err != nil {
			r.closeErr = fmt.Errorf("store: closing the redis client: %w", err)
		}
	})
	return r.closeErr
}

// isClosed reports whether Close was called.
func (r *redisStore) isClosed() bool { return r.base.Err() != nil }

// begin checks the context, the key and that the store is open.
func (r *redisStore) begin(ctx context.Context, key string) error {
	if err := begin(ctx, key); err != nil {
		return err
	}
	if r.isClosed() {
		return ErrClosed
	}
	return nil
}

// beginPrefix is begin for operations on every key under prefix.
func (r *redisStore) beginPrefix(ctx context.Context, prefix string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := checkPrefix(prefix); err != nil {
		return err
	}
	if r.isClosed() {
		return ErrClosed
	}
	return nil
}

// globEscape escapes the characters SCAN's MATCH pattern treats specially.
func globEscape(s string) string {
	var b strings.Builder
	for _, c := range s {
		if strings.ContainsRune(`*?[]\`, c) {
			b.WriteByte('\\')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// nonNil returns b, or an empty slice for nil (go-redis refuses nil args).
func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

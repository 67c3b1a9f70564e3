package config

import "strconv"

// Highly available Redis deployments: Sentinel and Cluster, beside the
// single server at storage.redis.addr.

// RedisSentinel reaches the primary that Redis Sentinel names for Master.
// Username and Password authenticate to the sentinels; the data nodes use
// storage.redis.username and password.
type RedisSentinel struct {
	// Master is the name the sentinels monitor (sentinel.conf's
	// "sentinel monitor NAME ..."). Required.
	Master string `yaml:"master"`
	// Addrs are the sentinels' host:port addresses. At least one.
	Addrs []string `yaml:"addrs"`
	// Username for the sentinels' ACLs. Empty: none.
	Username string `yaml:"username"`
	// Password for the sentinels. Prefer PasswordFile. Empty: none.
	Password Secret `yaml:"password"`
	// PasswordFile is read into Password.
	PasswordFile string `yaml:"password_file"`
}

// RedisCluster talks to a Redis Cluster; storage.redis.username and
// password authenticate to its nodes.
type RedisCluster struct {
	// Addrs are host:port addresses of some of the cluster's nodes (the
	// rest are discovered). At least one.
	Addrs []string `yaml:"addrs"`
}

// defaultHAReplicasAck is storage.redis.min_replicas_ack for sentinel and
// cluster: a write counts once one replica holds it.
const defaultHAReplicasAck = 1

// ReplicasToAck returns how many replicas must acknowledge a write:
// MinReplicasAck when set, otherwise 1 with sentinel or cluster and 0 for a
// single server.
func (r Redis) ReplicasToAck() int {
	switch {
	case r.MinReplicasAck != nil:
		return *r.MinReplicasAck
	case r.Sentinel != nil || r.Cluster != nil:
		return defaultHAReplicasAck
	}
	return 0
}

// redisDefaults fills addr's default only when neither sentinel nor
// cluster is configured (they replace it).
func (r *Redis) redisDefaults() {
	if r.Sentinel == nil && r.Cluster == nil {
		setDefault(&r.Addr, defaultRedisAddr)
	}
}

// validateRedis checks storage.redis for storage type redis: exactly one
// of addr, sentinel and cluster, each address host:port, and a
// non-negative db and min_replicas_ack. Cluster has a single database.
func (r Redis) validateRedis(ps *Problems) {
	const key = "storage.redis"
	modes := 0
	for _, set := range []bool{r.Addr != "", r.Sentinel != nil, r.Cluster != nil} {
		if set {
			modes++
		}
	}
	if modes != 1 {
		ps.add(key, "set exactly one of addr, sentinel and cluster")
	}
	if r.Addr != "" {
		if msg := checkHostPort(r.Addr, false); msg != "" {
			ps.add(key+".addr", msg)
		}
	}
	if r.DB < 0 {
		ps.add(key+".db", "must not be negative")
	}
	if r.MinReplicasAck != nil && *r.MinReplicasAck < 0 {
		ps.add(key+".min_replicas_ack", "must not be negative")
	}
	if s := r.Sentinel; s != nil {
		if s.Master == "" {
			ps.add(key+".sentinel.master", "required: the name the sentinels monitor")
		}
		checkRedisAddrs(ps, key+".sentinel.addrs", s.Addrs)
	}
	if c := r.Cluster; c != nil {
		checkRedisAddrs(ps, key+".cluster.addrs", c.Addrs)
		if r.DB != 0 {
			ps.add(key+".db", "must be 0 with cluster: Redis Cluster has a single database")
		}
	}
}

// checkRedisAddrs checks a list of host:port addresses named key.
func checkRedisAddrs(ps *Problems, key string, addrs []string) {
	if len(addrs) == 0 {
		ps.add(key, "required: at least one host:port")
	}
	for i, a := range addrs {
		if msg := checkHostPort(a, false); msg != "" {
			ps.add(key+"["+strconv.Itoa(i)+"]", msg)
		}
	}
}

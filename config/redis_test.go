package config

import "testing"

func TestValidateRedisModes(t *testing.T) {
	const head = "storage: {type: redis, key_file: /run/key, redis: "
	tests := []struct {
		name  string // what the case checks
		src   string // the file
		wants []want // problems, sorted by key
	}{
		{name: "sentinel", src: head + "{sentinel: {master: mymaster, addrs: ['s1:26379', 's2:26379'], password: p}, password: q}}"},
		{name: "cluster", src: head + "{cluster: {addrs: ['n1:6379']}, min_replicas_ack: 0}}"},
		{name: "addr and sentinel", src: head + "{addr: 'r:6379', sentinel: {master: m, addrs: ['s:26379']}}}",
			wants: []want{{"storage.redis", "set exactly one of addr, sentinel and cluster"}}},
		{name: "sentinel and cluster", src: head + "{sentinel: {master: m, addrs: ['s:26379']}, cluster: {addrs: ['n:6379']}}}",
			wants: []want{{"storage.redis", "set exactly one of addr, sentinel and cluster"}}},
		{name: "sentinel requires", src: head + "{sentinel: {}}}",
			wants: []want{{"storage.redis.sentinel.addrs", "required"}, {"storage.redis.sentinel.master", "required"}}},
		{name: "bad addresses", src: head + "{cluster: {addrs: ['n1:6379', 'n2']}, db: 1, min_replicas_ack: -1}}",
			wants: []want{
				{"storage.redis.cluster.addrs[1]", "must be host:port"},
				{"storage.redis.db", "must be 0 with cluster"},
				{"storage.redis.min_replicas_ack", "must not be negative"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := parse(t, tt.src, nil)
			checkProblems(t, problemsOf(t, c.Validate()), tt.wants...)
		})
	}
}

func TestRedisReplicasToAck(t *testing.T) {
	tests := []struct {
		src  string // storage.redis
		want int    // ReplicasToAck
	}{
		{"{}", 0},
		{"{addr: 'r:6379', min_replicas_ack: 2}", 2},
		{"{sentinel: {master: m, addrs: ['s:26379']}}", 1},
		{"{cluster: {addrs: ['n:6379']}}", 1},
		{"{cluster: {addrs: ['n:6379']}, min_replicas_ack: 0}", 0},
	}
	for _, tt := range tests {
		c := parse(t, "storage: {type: redis, key_file: /k, redis: "+tt.src+"}", nil)
		if got := c.Storage.Redis.ReplicasToAck(); got != tt.want {
			t.Errorf("%s: ReplicasToAck() = %d; want %d", tt.src, got, tt.want)
		}
	}
}

func TestRedisAddrDefaultOnlyWithoutHA(t *testing.T) {
	c := parse(t, "storage: {type: redis, key_file: /k, redis: {sentinel: {master: m, addrs: ['s:26379']}}}", nil)
	if c.Storage.Redis.Addr != "" {
		t.Errorf("addr with sentinel: got %q; want empty (no default)", c.Storage.Redis.Addr)
	}
	c = parse(t, "storage: {type: redis, key_file: /k}", nil)
	if c.Storage.Redis.Addr != defaultRedisAddr {
		t.Errorf("addr without sentinel or cluster: got %q; want %q", c.Storage.Redis.Addr, defaultRedisAddr)
	}
}

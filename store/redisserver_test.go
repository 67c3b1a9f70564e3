package store

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sidekey/sidekey/config"
)

// redisServer is a real redis-server, a child process of the test, on a
// free loopback port. It is killed by PID when the test ends.
type redisServer struct {
	t      *testing.T
	addr   string   // 127.0.0.1:port, the same across restarts
	args   []string // redis-server arguments
	log    string   // the server's log file, shown when it fails
	cmd    *exec.Cmd
	exited chan struct{} // closed when cmd has been reaped
}

// startRedis starts a redis-server that keeps nothing on disk (an empty
// --save, --appendonly no). extra arguments are appended (--requirepass …).
func startRedis(t *testing.T, extra ...string) *redisServer {
	t.Helper()
	return launchRedis(t, append([]string{"--save", "", "--appendonly", "no"}, extra...))
}

// startPersistentRedis starts a redis-server with an append-only file in a
// temporary directory, so what it held survives stop and start.
func startPersistentRedis(t *testing.T) *redisServer {
	t.Helper()
	return launchRedis(t, []string{"--save", "", "--appendonly", "yes", "--dir", t.TempDir()})
}

// launchRedis picks a free port and starts the server there, trying
// another port if a race took this one.
func launchRedis(t *testing.T, args []string) *redisServer {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Fatalf("redis-server is not installed: the redis store tests run against a real server. "+
			"`make test` installs it (Debian package redis-server); by hand: apt-get install redis-server (%v)", err)
	}
	var lastErr error
	for range 3 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		_, port, _ := net.SplitHostPort(addr)
		s := &redisServer{
			t:    t,
			addr: addr,
			log:  filepath.Join(t.TempDir(), "redis.log"),
		}
		s.args = append([]string{"--port", port, "--bind", "127.0.0.1", "--logfile", s.log}, args...)
		if lastErr = s.start(); lastErr == nil {
			t.Cleanup(s.kill)
			return s
		}
	}
	t.Fatalf("starting redis-server: %v", lastErr)
	return nil
}

// start runs the server and waits until it answers PING.
func (s *redisServer) start() error {
	cmd := exec.Command("redis-server", s.args...)
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		close(exited)
	}()
	s.cmd, s.exited = cmd, exited
	deadline := time.Now().Add(10 * time.Second)
	for {
		if err := pingRedis(s.addr); err == nil {
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("redis-server exited (%v); its log:\n%s", cmd.ProcessState, s.logTail())
		case <-time.After(5 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.kill()
			return fmt.Errorf("redis-server did not answer PING within 10 s; its log:\n%s", s.logTail())
		}
	}
}

// restart starts the server again on the same port and data directory
// after stop or kill, and waits until it answers PING.
func (s *redisServer) restart() {
	s.t.Helper()
	if err := s.start(); err != nil {
		s.t.Fatalf("restarting redis-server: %v", err)
	}
}

// stop shuts the server down with SIGTERM (it writes its append-only file
// first) and waits for it to exit.
func (s *redisServer) stop() {
	s.t.Helper()
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(10 * time.Second):
		s.kill()
		s.t.Fatal("redis-server did not exit within 10 s of SIGTERM")
	}
}

// kill sends SIGKILL to the server's PID and waits until it is reaped.
// Calling it again, or after stop, is harmless.
func (s *redisServer) kill() {
	s.cmd.Process.Kill()
	<-s.exited
}

// logTail returns the end of the server's log.
func (s *redisServer) logTail() string {
	b, _ := os.ReadFile(s.log)
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}

// options returns RedisOptions for this server.
func (s *redisServer) options() RedisOptions { return RedisOptions{Addr: s.addr} }

// storage returns the configuration of a sealed redis store on this server
// with the key seed in a new key file.
func (s *redisServer) storage(t *testing.T, seed byte) config.Storage {
	keyFile := filepath.Join(t.TempDir(), "key")
	writeFile(t, keyFile, testKey(seed), 0o600)
	return config.Storage{Type: "redis", KeyFile: keyFile, Redis: config.Redis{Addr: s.addr}}
}

// pingRedis sends PING to the server at addr over a fresh connection. A
// server that wants a password (NOAUTH) is up as well.
func pingRedis(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if line = strings.TrimSpace(line); line != "+PONG" && !strings.HasPrefix(line, "-NOAUTH") {
		return fmt.Errorf("PING answered %s", strconv.Quote(line))
	}
	return nil
}

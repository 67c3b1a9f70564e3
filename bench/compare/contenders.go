package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/sidekey/sidekey/bench/internal/procstat"
)

// token is the bearer token every contender injects and the upstream
// demands.
const token = "bench-token"

// path is what the load generator requests from a proxy: the tenant (or
// prefix) "bench", then the API path the upstream sees.
const path = "/bench/v1/cart/42"

// contender is one thing the load generator is pointed at.
type contender struct {
	name   string
	url    string      // what the load generator requests
	header http.Header // added by the load generator (direct only)
	cmd    *exec.Cmd   // nil: nothing of ours to measure (direct)
	// skipped says why the contender could not be measured.
	skipped string
}

// pid is the contender's process id, or 0.
func (c *contender) pid() int {
	if c.cmd == nil || c.cmd.Process == nil {
		return 0
	}
	return c.cmd.Process.Pid
}

// freePort asks the kernel for an unused loopback port.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// launcher starts processes into a work directory and stops them all.
type launcher struct {
	dir     string
	started []*exec.Cmd
}

// start runs name with args, its output in dir/<label>.log.
func (l *launcher) start(label string, env []string, name string, args ...string) (*exec.Cmd, error) {
	logf, err := os.Create(filepath.Join(l.dir, label+".log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(os.Environ(), env...)
	cmd.Dir = l.dir
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("%s: %w", label, err)
	}
	logf.Close() // the child holds its own descriptor
	l.started = append(l.started, cmd)
	return cmd, nil
}

// stopAll stops every started process by its PID: SIGTERM, then SIGKILL
// after 5 s; descendants still alive afterwards (nginx workers) are
// killed by PID too.
func (l *launcher) stopAll() {
	for i := len(l.started) - 1; i >= 0; i-- {
		cmd := l.started[i]
		pid := cmd.Process.Pid
		children := procstat.Children(pid)
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		for _, c := range children {
			if procstat.Alive(c) {
				_ = syscall.Kill(c, syscall.SIGKILL)
			}
		}
	}
	l.started = nil
}

// logTail is the end of a process's log, for error messages.
func (l *launcher) logTail(label string) string {
	b, _ := os.ReadFile(filepath.Join(l.dir, label+".log"))
	if len(b) > 600 {
		b = b[len(b)-600:]
	}
	return string(b)
}

// waitReady polls url until it answers 200 or the deadline passes.
func waitReady(ctx context.Context, url string, header http.Header, cmd *exec.Cmd) error {
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(30 * time.Second)
	var last error = errors.New("no answer")
	for time.Now().Before(deadline) {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if cmd != nil && cmd.ProcessState != nil {
			return fmt.Errorf("exited: %v", cmd.ProcessState)
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		for k, v := range header {
			req.Header[k] = v
		}
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("status %d", resp.StatusCode)
		}
		last = err
		time.Sleep(100 * time.Millisecond) // polling a process we cannot signal on
	}
	return fmt.Errorf("not ready after 30s: %w", last)
}

// setup holds what the contenders are started from.
type setup struct {
	bin       string // directory with upstream, bareproxy, sidekey, caddy
	nginx     string // nginx binary, or "" when absent
	caddyNote string // why caddy is missing, when it is
	upstream  string // http://127.0.0.1:port
}

// startContender starts the named contender and waits until a request
// through it succeeds.
func startContender(ctx context.Context, l *launcher, s setup, name string) *contender {
	c := &contender{name: name}
	port, err := freePort()
	if err != nil {
		c.skipped = err.Error()
		return c
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	c.url = "http://" + addr + path
	switch name {
	case "direct":
		c.url = s.upstream + path
		c.header = http.Header{"Authorization": {"Bearer " + token}}
	case "bare", "bare-tuned":
		c.cmd, err = l.start(name, nil, filepath.Join(s.bin, "bareproxy"), "-addr", addr, "-upstream", s.upstream, "-token", token,
			"-tuned="+strconv.FormatBool(name == "bare-tuned"))
	case "sidekey", "sidekey-p1":
		var env []string
		if name == "sidekey-p1" { // one P: what a sidecar with a 1-CPU limit gets
			env = []string{"GOMAXPROCS=1"}
		}
		var cfg string
		if cfg, err = writeSidekeyConfig(l.dir, name, addr, s.upstream); err == nil {
			c.cmd, err = l.start(name, env, filepath.Join(s.bin, "sidekey"), "serve", "--config", cfg)
		}
	case "caddy":
		bin := filepath.Join(s.bin, "caddy")
		if _, statErr := os.Stat(bin); statErr != nil {
			c.skipped = "caddy binary missing: " + s.caddyNote
			return c
		}
		var file string
		if file, err = writeCaddyfile(l.dir, addr, s.upstream); err == nil {
			env := []string{"HOME=" + l.dir, "XDG_CONFIG_HOME=" + l.dir, "XDG_DATA_HOME=" + l.dir}
			c.cmd, err = l.start(name, env, bin, "run", "--config", file, "--adapter", "caddyfile")
		}
	case "nginx":
		if s.nginx == "" {
			c.skipped = "nginx not installed (run bench/run.sh as root to install nginx-light)"
			return c
		}
		var conf string
		if conf, err = writeNginxConf(l.dir, addr, s.upstream); err == nil {
			c.cmd, err = l.start(name, nil, s.nginx, "-p", filepath.Dir(conf), "-c", conf, "-e", "stderr")
		}
	default:
		err = fmt.Errorf("unknown contender %q", name)
	}
	if err != nil {
		c.skipped = err.Error()
		return c
	}
	if err := waitReady(ctx, c.url, c.header, c.cmd); err != nil {
		c.skipped = fmt.Sprintf("did not become ready: %v; log: %s", err, l.logTail(name))
	}
	return c
}

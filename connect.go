package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/sidekey/sidekey/config"
	"github.com/sidekey/sidekey/server"
)

// adminClient talks to a running sidekey's /_sidekey/ endpoints.
type adminClient struct {
	base  string // http://host:port
	token string // admin token, or ""
	http  *http.Client
}

func newAdminClient(cfg *config.Config) (*adminClient, error) {
	host, port, err := net.SplitHostPort(cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	c := &adminClient{base: "http://" + net.JoinHostPort(host, port), http: &http.Client{Timeout: 15 * time.Second}}
	if cfg.AdminTokenFile != "" {
		b, err := os.ReadFile(cfg.AdminTokenFile)
		if err != nil {
			return nil, fmt.Errorf("admin_token_file: %w", err)
		}
		c.token = strings.TrimRight(string(b), "\r\n")
	}
	return c, nil
}

// do sends a request and decodes a JSON answer into out. A sidekey error
// body becomes the returned error.
func (c *adminClient) do(ctx context.Context, method, path string, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		var e struct{ Error, Message string }
		if json.Unmarshal(body, &e) == nil && e.Message != "" {
			return fmt.Errorf("%s (%s)", e.Message, e.Error)
		}
		return fmt.Errorf("%s %s: %s", method, path, resp.Status)
	}
	return json.Unmarshal(body, out)
}

// refused reports whether err means nothing listens at the address.
func refused(err error) bool { return errors.Is(err, syscall.ECONNREFUSED) }

// withServer runs fn against the sidekey listening at cfg.Listen, or, when
// none runs there, against one it starts for the duration (serving the
// OAuth callback itself, as `gcloud auth login` does).
func withServer(ctx context.Context, cfg *config.Config, stderr io.Writer, fn func(c *adminClient) error) error {
	c, err := newAdminClient(cfg)
	if err != nil {
		return err
	}
	var probe struct{ Status string }
	err = c.do(ctx, http.MethodGet, "/_sidekey/healthz", &probe)
	if err == nil {
		return fn(c)
	}
	if !refused(err) {
		return fmt.Errorf("a process answers at %s but not as sidekey: %w", cfg.Listen, err)
	}
	log, err := newLogger(config.Log{Level: "warn", Format: "console"}, stderr)
	if err != nil {
		return err
	}
	srv, err := server.New(server.Options{Config: cfg, Logger: log, Version: versionString()})
	if err != nil {
		return asProblems(err)
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("starting sidekey on %s: %w", cfg.Listen, err)
	}
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- srv.RunListener(sctx, ln) }()
	err = fn(c)
	cancel()
	if serr := <-done; err == nil {
		err = serr
	}
	return err
}

func connectCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("connect", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := configFlag(fs)
	wait := fs.Duration("timeout", 10*time.Minute, "how long to wait for the consent")
	tenant, err := parseTenantArgs(fs, args)
	if err != nil {
		return err
	}
	cfg, err := loadConfig(*path)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, *wait)
	defer cancel()
	return withServer(ctx, cfg, stderr, func(c *adminClient) error {
		started := time.Now().UTC().Add(-time.Second)
		var flow struct {
			URL     string    `json:"url"`
			Expires time.Time `json:"expires"`
		}
		if err := c.do(ctx, http.MethodGet, "/_sidekey/oauth/connect/"+tenant+"?format=json", &flow); err != nil {
			return fmt.Errorf("starting the consent for %s: %w", tenant, err)
		}
		fmt.Fprintf(stdout, "Open this URL in a browser and approve access for %s:\n\n  %s\n\nWaiting for the platform to call back (until %s)…\n",
			tenant, flow.URL, flow.Expires.Local().Format("15:04:05"))
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			var st struct {
				Tenants map[string]struct {
					ConnectedAt *time.Time `json:"connected_at"`
				} `json:"tenants"`
			}
			if err := c.do(ctx, http.MethodGet, "/_sidekey/status", &st); err == nil {
				if at := st.Tenants[tenant].ConnectedAt; at != nil && at.After(started) {
					fmt.Fprintf(stdout, "%s is connected.\n", tenant)
					return nil
				}
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("no consent for %s arrived: %w", tenant, ctx.Err())
			case <-tick.C:
			}
		}
	})
}

func disconnectCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("disconnect", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := configFlag(fs)
	tenant, err := parseTenantArgs(fs, args)
	if err != nil {
		return err
	}
	cfg, err := loadConfig(*path)
	if err != nil {
		return err
	}
	return withServer(ctx, cfg, stderr, func(c *adminClient) error {
		var out struct {
			Revoked    bool
			NotRevoked string `json:"not_revoked"`
		}
		if err := c.do(ctx, http.MethodDelete, "/_sidekey/admin/connections/"+tenant, &out); err != nil {
			return fmt.Errorf("disconnecting %s: %w", tenant, err)
		}
		how := "forgotten"
		if out.Revoked {
			how = "revoked at the platform and forgotten"
		}
		fmt.Fprintf(stdout, "%s is disconnected (token %s).\n", tenant, how)
		if out.NotRevoked != "" {
			fmt.Fprintf(stdout, "Not revoked at the platform: %s\n", out.NotRevoked)
		}
		return nil
	})
}

// parseTenantArgs accepts the tenant before or after the flags.
func parseTenantArgs(fs *flag.FlagSet, args []string) (string, error) {
	var tenant string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		tenant, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		return "", fmt.Errorf("%w: %v", errUsage, err)
	}
	if tenant == "" && fs.NArg() > 0 {
		tenant = fs.Arg(0)
	}
	if !config.ValidTenantName(tenant) {
		return "", fmt.Errorf("%w: %s needs a tenant name", errUsage, fs.Name())
	}
	return tenant, nil
}

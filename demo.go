package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/sidekey/sidekey/config"
	"github.com/sidekey/sidekey/providers/providertest"
	"github.com/sidekey/sidekey/server"
)

// demoCmd runs simulated platforms behind a real sidekey and prints curl
// lines, each of which was checked to answer 200 before it was printed.
func demoCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:8080", "`address` for the proxy (loopback)")
	check := fs.Bool("check", false, "run the printed curl lines once and exit")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("demo: %w (is another sidekey running? try --listen 127.0.0.1:0)", err)
	}
	sims := startDemoSimulators()
	defer sims.close()
	cfg := &config.Config{
		Listen:  ln.Addr().String(),
		Storage: config.Storage{Type: "memory"},
		Log:     config.Log{Level: "info", Format: "console"},
		Tenants: sims.tenants(),
	}
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		ln.Close()
		return fmt.Errorf("demo config: %w", err)
	}
	log, err := newLogger(cfg.Log, stderr)
	if err != nil {
		return err
	}
	srv, err := server.New(server.Options{Config: cfg, Logger: log, Version: versionString()})
	if err != nil {
		ln.Close()
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- srv.RunListener(ctx, ln) }()

	base := "http://" + ln.Addr().String()
	client := &http.Client{Timeout: 10 * time.Second}
	// Connect the consent-flow platforms the way a person would: the
	// simulators approve at once and redirect back to sidekey's callback.
	for _, name := range []string{"demo-istores", "demo-storehippo", "demo-scayle"} {
		if err := expect200(ctx, client, base+"/_sidekey/oauth/connect/"+name); err != nil {
			cancel()
			<-done
			return fmt.Errorf("demo consent for %s: %w", name, err)
		}
	}
	paths := []string{
		"/demo-simplestore/v1/cart/42",
		"/demo-istores/products/10/1",
		"/demo-storehippo/entity/ms.products",
		"/demo-scayle/v1/echo/basket",
		"/demo-oauth2/v1/items",
		"/_sidekey/status",
	}
	for _, p := range append(paths, "/_sidekey/") {
		if err := expect200(ctx, client, base+p); err != nil {
			cancel()
			<-done
			return fmt.Errorf("demo self-check: %w", err)
		}
	}
	fmt.Fprintf(stdout, "sidekey demo: Istores, StoreHippo, SimpleStore, SCAYLE and a generic OAuth 2.0 API, simulated, behind %s\n", base)
	fmt.Fprintln(stdout, "Each line below was just checked to answer 200:")
	for _, p := range paths {
		fmt.Fprintf(stdout, "  curl -s %s%s\n", ln.Addr().String(), p)
	}
	fmt.Fprintf(stdout, "The operator console: open %s/_sidekey/ in a browser.\n", base)
	if *check {
		cancel()
		return <-done
	}
	fmt.Fprintln(stdout, "Press Ctrl-C to stop.")
	return <-done
}

// expect200 GETs url and fails unless it answers 200.
func expect200(ctx context.Context, client *http.Client, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode != http.StatusOK {
		return errors.New(url + ": " + resp.Status + ": " + string(body))
	}
	return nil
}

// demoSims are the simulated platforms the demo puts sidekey in front of.
type demoSims struct {
	simple  *providertest.SimpleStore
	istores *providertest.Istores
	hippo   *providertest.StoreHippo
	scayle  *providertest.SCAYLE
	generic *providertest.OAuth2
}

const (
	demoClientID = "demo-client"
	demoSecret   = "demo-secret"
)

func startDemoSimulators() *demoSims {
	opts := providertest.SimOptions{ClientID: demoClientID, ClientSecret: demoSecret}
	generic := opts
	generic.TokenLifetime = 5 * time.Minute
	return &demoSims{
		simple:  providertest.NewSimpleStore(opts),
		istores: providertest.NewIstores(opts),
		hippo:   providertest.NewStoreHippo(opts),
		scayle:  providertest.NewSCAYLE(providertest.SCAYLEOptions{SimOptions: opts, ShopID: "1001", ShopSecret: "demo-shop-secret", IdpKey: "demo-idp"}),
		generic: providertest.NewOAuth2(generic),
	}
}

func (d *demoSims) close() {
	d.simple.Close()
	d.istores.Close()
	d.hippo.Close()
	d.scayle.Close()
	d.generic.Close()
}

// tenants configures one tenant per simulated platform, with the endpoints
// pointed at the simulators (everything else is each platform's default).
func (d *demoSims) tenants() map[string]*config.Tenant {
	return map[string]*config.Tenant{
		"demo-simplestore": {
			Provider: "simplestore", ClientID: demoClientID, ClientSecret: demoSecret,
			TokenURL: d.simple.TokenURL(), APIURL: d.simple.APIURL(),
		},
		"demo-istores": {
			Provider: "istores", ClientID: demoClientID, ClientSecret: demoSecret, Scopes: []string{"products:read"},
			AuthURL: d.istores.AuthURL(), TokenURL: d.istores.TokenURL(), APIURL: d.istores.APIURL(),
		},
		"demo-storehippo": {
			Provider: "storehippo", Store: "demo", ClientID: demoClientID, ClientSecret: demoSecret, Scopes: []string{"read_products"},
			AuthURL: d.hippo.AuthURL(), TokenURL: d.hippo.TokenURL(), APIURL: d.hippo.APIURL(),
		},
		"demo-scayle": {
			Provider: "scayle", TenantSpace: "demo", ShopID: "1001", IdpKey: "demo-idp",
			ClientID: demoClientID, ClientSecret: demoSecret, ShopSecret: "demo-shop-secret",
			AuthURL: d.scayle.AuthURL(), TokenURL: d.scayle.TokenURL(), APIURL: d.scayle.APIURL(),
		},
		"demo-oauth2": {
			Provider: "oauth2", ClientID: demoClientID, ClientSecret: demoSecret,
			TokenURL: d.generic.TokenURL(), APIURL: d.generic.APIURL(),
			Scopes: []string{"items:read"}, TokenParams: map[string]string{"audience": "demo-api"},
		},
	}
}

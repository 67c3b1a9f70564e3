package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"text/tabwriter"
)

// tenantsCmd is `sidekey tenants list|show|delete`, a client of the admin
// API of the running sidekey (or of one started for the duration).
func tenantsCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: tenants list|show TENANT|delete TENANT", errUsage)
	}
	sub, args := args[0], args[1:]
	fs := flag.NewFlagSet("tenants "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := configFlag(fs)
	state := fs.String("state", "", "list: only tenants in this state (connected, consent_needed_soon, consent_required, error)")
	var tenant string
	var err error
	switch sub {
	case "list":
		if err := fs.Parse(args); err != nil {
			return fmt.Errorf("%w: %v", errUsage, err)
		}
	case "show", "delete":
		if tenant, err = parseTenantArgs(fs, args); err != nil {
			return err
		}
	default:
		return fmt.Errorf("%w: tenants list|show TENANT|delete TENANT", errUsage)
	}
	cfg, err := loadConfig(*path)
	if err != nil {
		return err
	}
	return withServer(ctx, cfg, stderr, func(c *adminClient) error {
		switch sub {
		case "show":
			var v map[string]any
			if err := c.do(ctx, http.MethodGet, "/_sidekey/admin/connections/"+tenant, &v); err != nil {
				return err
			}
			enc := json.NewEncoder(stdout)
			enc.SetIndent("", "  ")
			return enc.Encode(v)
		case "delete":
			var out struct {
				Revoked    bool
				NotRevoked string `json:"not_revoked"`
			}
			if err := c.do(ctx, http.MethodDelete, "/_sidekey/admin/connections/"+tenant, &out); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "%s deleted (revoked at the platform: %v)\n", tenant, out.Revoked)
			if out.NotRevoked != "" {
				fmt.Fprintf(stdout, "Not revoked at the platform: %s\n", out.NotRevoked)
			}
			return nil
		}
		tw := tabwriter.NewWriter(stdout, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tSOURCE\tAPP\tPROVIDER\tSTATE\tSESSIONS\tEXPIRY\tREFRESH EXPIRY")
		after := ""
		for {
			q := url.Values{"limit": {"1000"}}
			if *state != "" {
				q.Set("state", *state)
			}
			if after != "" {
				q.Set("after", after)
			}
			var page struct {
				Items []struct {
					Name, Source, App, Provider, State string
					Status                             struct {
						Expiry        string
						RefreshExpiry string `json:"refresh_expiry"`
						Sessions      *int64 // per-customer sessions stored; nil: not a sessions tenant
					}
				}
				Next string
			}
			if err := c.do(ctx, http.MethodGet, "/_sidekey/admin/connections?"+q.Encode(), &page); err != nil {
				return err
			}
			for _, it := range page.Items {
				sessions := "-"
				if n := it.Status.Sessions; n != nil {
					sessions = strconv.FormatInt(*n, 10)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", it.Name, it.Source, orDash(it.App), it.Provider, it.State,
					sessions, orDash(it.Status.Expiry), orDash(it.Status.RefreshExpiry))
			}
			if page.Next == "" {
				return tw.Flush()
			}
			after = page.Next
		}
	})
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

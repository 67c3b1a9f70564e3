// Command sidekey is a reverse-proxy token injector: it obtains and refreshes
// API tokens per tenant and adds them to proxied requests, so the programs
// behind it never handle credentials. See README.md.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

// exitFunc is os.Exit, swappable by tests.
var exitFunc = os.Exit

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "sidekey:", err)
		exitFunc(exitCode(err))
	}
}

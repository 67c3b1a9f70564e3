// Command bareproxy runs the bare httputil.ReverseProxy contenders (see
// package bare): /bench/… → upstream/… with a fixed Authorization header;
// -tuned gives it a large keep-alive pool and pooled copy buffers.
//
//	bareproxy -addr 127.0.0.1:18001 -upstream http://127.0.0.1:18000
package main

import (
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"time"

	"github.com/sidekey/sidekey/bench/internal/bare"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen `address` (loopback)")
	upstream := flag.String("upstream", "", "upstream base `URL`")
	prefix := flag.String("prefix", "/bench", "path `prefix` stripped before forwarding")
	token := flag.String("token", "bench-token", "bearer `token` to inject")
	tuned := flag.Bool("tuned", false, "256 idle upstream connections and pooled copy buffers (bare.NewTuned)")
	flag.Parse()
	if err := run(*addr, *upstream, *prefix, *token, *tuned); err != nil {
		fmt.Fprintln(os.Stderr, "bareproxy:", err)
		os.Exit(1)
	}
}

func run(addr, upstream, prefix, token string, tuned bool) error {
	u, err := url.Parse(upstream)
	if err != nil || u.Host == "" {
		return fmt.Errorf("-upstream %q: want http://host:port", upstream)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	fmt.Println("listening", ln.Addr())
	h := bare.New(u, prefix, token)
	if tuned {
		h = bare.NewTuned(u, prefix, token)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	return srv.Serve(ln)
}

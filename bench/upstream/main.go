// Command upstream is the harness's API stand-in: a keep-alive HTTP/1.1
// server on loopback that answers every path with the same small JSON body,
// but only to requests carrying "Authorization: Bearer <token>", so a
// contender that fails to inject the header cannot look fast.
//
//	upstream -addr 127.0.0.1:18000 -token bench-token
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"time"
)

// body is what every authorised request gets (70 bytes, like a small cart).
var body = []byte(`{"id":"42","items":[{"sku":"a-1","qty":1}],"total":1250,"currency":"EUR"}` + "\n")

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen `address` (loopback)")
	token := flag.String("token", "bench-token", "the bearer `token` requests must carry")
	flag.Parse()
	if err := run(*addr, *token); err != nil {
		fmt.Fprintln(os.Stderr, "upstream:", err)
		os.Exit(1)
	}
}

func run(addr, token string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	want := "Bearer " + token
	contentType := []string{"application/json"}
	length := []string{fmt.Sprint(len(body))}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			h := w.Header()
			if r.Header.Get("Authorization") != want {
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			h["Content-Type"] = contentType
			h["Content-Length"] = length
			_, _ = w.Write(body)
		}),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       5 * time.Minute,
		ErrorLog:          log.New(os.Stderr, "upstream: ", 0),
	}
	fmt.Println("listening", ln.Addr())
	return srv.Serve(ln)
}

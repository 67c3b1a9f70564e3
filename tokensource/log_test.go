package tokensource

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// recordingObserver is an Observer that keeps its events.
type recordingObserver struct {
	mu     sync.Mutex
	events []string
}

func (o *recordingObserver) FetchDone(name string, d time.Duration, err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.events = append(o.events, fmt.Sprintf("%s %v %v", name, d, err))
}

func TestLogsAndObserverNeverCarryTokens(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		core, logs := observer.New(zapcore.DebugLevel)
		obs := &recordingObserver{}
		idp := &fakeIdP{life: time.Hour, delay: 200 * time.Millisecond}
		s := RefreshAhead(idp, Options{Name: "acme", Logger: zap.New(core), Observer: obs})
		defer s.Close()

		tok := mustToken(t, s)
		s.Invalidate(tok)
		mustToken(t, s)
		idp.set(func(f *fakeIdP) { f.fail = errIdP })
		time.Sleep(30*time.Minute + 500*time.Millisecond) // a background refresh fails, no retry yet

		var infos, warns int
		for _, e := range logs.All() {
			line := fmt.Sprint(e.Message, e.ContextMap())
			if strings.Contains(line, "secret-token") {
				t.Errorf("log line carries a token: %s", line)
			}
			if e.ContextMap()["tenant"] != "acme" {
				t.Errorf("log line without tenant: %s", line)
			}
			switch {
			case e.Message == "token fetched":
				infos++
				fields := e.ContextMap()
				if e.Level != zapcore.InfoLevel || fields["expiry"] == nil || fields["took"] != 200*time.Millisecond {
					t.Errorf("fetch line %s; want info with expiry and took=200ms", line)
				}
			case e.Message == "token fetch failed":
				warns++
				if e.Level != zapcore.WarnLevel || !strings.Contains(line, "temporarily_unavailable") {
					t.Errorf("failure line %s; want warn with the IdP's error", line)
				}
			}
		}
		if infos != 2 || warns != 1 {
			t.Errorf("%d fetch lines, %d failure lines; want 2 and 1", infos, warns)
		}

		obs.mu.Lock()
		defer obs.mu.Unlock()
		if len(obs.events) != 3 {
			t.Fatalf("observer events %q; want 3", obs.events)
		}
		for i, want := range []string{"acme 200ms <nil>", "acme 200ms <nil>", "acme 200ms oauth2: \"temporarily_unavailable\""} {
			if obs.events[i] != want {
				t.Errorf("observer event %d = %q; want %q", i, obs.events[i], want)
			}
		}
		if st := fmt.Sprintf("%+v", s.Status()); strings.Contains(st, "secret-token") {
			t.Errorf("Status carries a token: %s", st)
		}
	})
}

// TestNoGoroutinesAfterClose runs a busy Source on real time and checks that
// Close leaves no goroutine behind. (The synctest tests check the same at
// the end of every bubble.)
func TestNoGoroutinesAfterClose(t *testing.T) {
	before := runtime.NumGoroutine()
	idp := &fakeIdP{life: 100 * time.Millisecond}
	s := RefreshAhead(idp, Options{Name: "acme", FetchTimeout: time.Second})

	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 200 {
				if tok, err := s.TokenContext(context.Background()); err == nil && tok.AccessToken == "" {
					t.Errorf("empty token")
				}
			}
		})
	}
	wg.Wait()
	waitFor(t, "a background refresh", func() bool { return idp.calls() >= 3 })
	s.Close()
	waitFor(t, "goroutines to exit", func() bool { return runtime.NumGoroutine() <= before })
}

package store

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The crash tests run this test binary again as a child (TestHelperWriter)
// that opens a file store and is killed with SIGKILL part way.
const (
	helperDirEnv  = "SIDEKEY_STORE_HELPER_DIR"  // the store directory; set only in the child
	helperModeEnv = "SIDEKEY_STORE_HELPER_MODE" // "write", or an OpenFile stage to stop at
	crashKey      = "tenants/acme/refresh"      // the key the writer rotates
)

// TestHelperWriter is the child process of the crash tests, not a test of
// its own. In mode "write" it opens the store in $SIDEKEY_STORE_HELPER_DIR
// and stores n+1, n+2, … under crashKey (n being the value found), printing
// "committed N" after each Store returns; mode "cas" does the same with
// CompareAndSwap from each value to the next. In any other mode it opens the
// store with a hook that, at the stage named by the mode, prints
// "stage NAME" and waits to be killed. Modes "rotate" and "stall-journaled"
// write like "write" but print "writing N" before each Store; the latter
// then stops inside that Store once the journal has its record (printing
// "journaled") and waits to be killed. It exits when its stdin closes, so it
// never outlives the parent.
func TestHelperWriter(t *testing.T) {
	dir := os.Getenv(helperDirEnv)
	if dir == "" {
		t.Skip("child process of the crash tests")
	}
	go func() {
		io.Copy(io.Discard, os.Stdin)
		os.Exit(3) // the parent is gone
	}()
	mode := os.Getenv(helperModeEnv)
	opts := FileOptions{Dir: dir}
	switch mode {
	case "stall-journaled":
		opts.hook = func(stage string) {
			if stage == "journaled" {
				fmt.Println("journaled")
				select {} // inside the write, before its commit: until killed
			}
		}
	case "write", "cas", "rotate":
	default:
		opts.hook = func(stage string) {
			if stage == mode {
				fmt.Printf("stage %s\n", stage)
				select {} // until killed; the stdin goroutine keeps the runtime from calling this a deadlock
			}
		}
	}
	s, err := OpenFile(opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	n := 0
	var prev []byte // the value found; nil: none
	if v, err := s.Load(context.Background(), crashKey); err == nil {
		n, _ = strconv.Atoi(string(v))
		prev = v
	}
	for n++; ; n++ {
		next := []byte(strconv.Itoa(n))
		var err error
		if mode == "cas" {
			var swapped bool
			swapped, err = s.CompareAndSwap(context.Background(), crashKey, prev, next)
			if err == nil && !swapped {
				err = fmt.Errorf("CompareAndSwap from %q to %q: no swap, though this is the only writer", prev, next)
			}
		} else {
			if mode != "write" {
				fmt.Printf("writing %d\n", n) // the platform has rotated: this value must not be lost
			}
			err = s.Store(context.Background(), crashKey, next)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		prev = next
		fmt.Printf("committed %d\n", n)
	}
}

// child is a running TestHelperWriter process.
type child struct {
	cmd    *exec.Cmd
	lines  *bufio.Scanner // its stdout
	stderr *bytes.Buffer
	stdin  io.Closer
}

// startChild starts TestHelperWriter in mode on the store in dir. It is
// killed after 30 seconds at the latest, so a stuck child fails the test
// instead of hanging it.
func startChild(t *testing.T, dir, mode string, env ...string) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperWriter$", "-test.count=1")
	cmd.Env = append(append(os.Environ(), helperDirEnv+"="+dir, helperModeEnv+"="+mode), env...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	c := &child{cmd: cmd, lines: bufio.NewScanner(stdout), stderr: &bytes.Buffer{}, stdin: stdin}
	cmd.Stderr = c.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	guard := time.AfterFunc(30*time.Second, func() { cmd.Process.Kill() })
	t.Cleanup(func() {
		guard.Stop()
		c.kill()
	})
	return c
}

// kill sends SIGKILL and reaps the child; after it returns the child's
// file lock is gone. Calling it again is harmless.
func (c *child) kill() {
	c.cmd.Process.Kill()
	c.stdin.Close()
	c.cmd.Wait()
}

// readUntil reads the child's stdout until a line satisfies done and
// returns that line; it fails the test if the child stops first.
func (c *child) readUntil(t *testing.T, done func(line string) bool) string {
	t.Helper()
	for c.lines.Scan() {
		if line := c.lines.Text(); done(line) {
			return line
		}
	}
	c.kill()
	t.Fatalf("child stopped early (%v); stderr:\n%s", c.cmd.ProcessState, c.stderr)
	return ""
}

func TestFileCrashDuringWrites(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	dir := t.TempDir()
	committed := 0 // the highest value a child reported stored
	for round := range 14 {
		mode := "write"
		if round%3 == 2 {
			mode = "cas" // CompareAndSwap commits the same way
		}
		target := committed + 1 + rand.IntN(40)
		c := startChild(t, dir, mode)
		c.readUntil(t, func(line string) bool {
			n, err := strconv.Atoi(strings.TrimPrefix(line, "committed "))
			if err == nil {
				committed = n
			}
			return committed >= target
		})
		c.kill()

		s, err := OpenFile(FileOptions{Dir: dir})
		if err != nil {
			t.Fatalf("round %d: reopening after SIGKILL: %v", round, err)
		}
		v, err := s.Load(context.Background(), crashKey)
		s.Close()
		if err != nil {
			t.Fatalf("round %d: Load after SIGKILL: %v", round, err)
		}
		n, err := strconv.Atoi(string(v))
		if err != nil || n < committed {
			t.Fatalf("round %d (%s): stored value %q after SIGKILL; want a number ≥ %d, the last one reported committed", round, mode, v, committed)
		}
		committed = n
	}
}

func TestFileCrashDuringFirstOpen(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	for _, stage := range []string{"db-opened", "key-temp-written", "before-canary"} {
		t.Run(stage, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "data")
			c := startChild(t, dir, stage)
			c.readUntil(t, func(line string) bool { return line == "stage "+stage })
			c.kill()

			s, err := OpenFile(FileOptions{Dir: dir})
			if err != nil {
				t.Fatalf("OpenFile after a SIGKILL at %s: %v", stage, err)
			}
			mustStore(t, s, crashKey, "rt-1")
			s.Close()

			s, err = OpenFile(FileOptions{Dir: dir})
			if err != nil {
				t.Fatalf("second OpenFile after a SIGKILL at %s: %v", stage, err)
			}
			defer s.Close()
			if got := mustLoad(t, s, crashKey); got != "rt-1" {
				t.Errorf("Load: got %q; want %q", got, "rt-1")
			}
			if keys, err := s.List(context.Background(), ""); err != nil || len(keys) != 1 {
				t.Errorf("List: got %q, %v; want only %q", keys, err, crashKey)
			}
			var names []string
			entries, _ := os.ReadDir(dir)
			for _, e := range entries {
				names = append(names, e.Name())
			}
			if want := []string{defaultKeyFileName, dbFileName, journalFileName, snapshotSocketName}; !slices.Equal(names, want) {
				t.Errorf("store directory holds %q; want %q (no temporary key files)", names, want)
			}
		})
	}
}

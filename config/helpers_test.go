package config

import (
	"errors"
	"io/fs"
	"slices"
	"strings"
	"testing"
)

// env returns a Getenv that looks names up in vars only.
func env(vars map[string]string) func(string) (string, bool) {
	return func(name string) (string, bool) {
		v, ok := vars[name]
		return v, ok
	}
}

// files returns a ReadFile that serves contents by path; other paths do not
// exist.
func files(contents map[string]string) func(string) ([]byte, error) {
	return func(path string) ([]byte, error) {
		if v, ok := contents[path]; ok {
			return []byte(v), nil
		}
		return nil, &fs.PathError{Op: "open", Path: path, Err: fs.ErrNotExist}
	}
}

// parse parses src with the given environment and no files, failing the
// test on error.
func parse(t *testing.T, src string, vars map[string]string) *Config {
	t.Helper()
	c, err := Parse([]byte(src), ParseOptions{Getenv: env(vars), ReadFile: files(nil)})
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return c
}

// problemsOf returns the Problems in err (nil for nil), failing the test
// when err is some other error.
func problemsOf(t *testing.T, err error) Problems {
	t.Helper()
	if err == nil {
		return nil
	}
	var ps Problems
	if !errors.As(err, &ps) {
		t.Fatalf("error %q (%T) is not Problems", err, err)
	}
	return ps
}

// want is an expected problem: its exact key and part of its message.
type want struct {
	key string // full key path
	msg string // substring of the message
}

// checkProblems fails unless ps holds exactly the wanted problems (by key,
// in order) with matching messages.
func checkProblems(t *testing.T, ps Problems, wants ...want) {
	t.Helper()
	var gotKeys, wantKeys []string
	for _, p := range ps {
		gotKeys = append(gotKeys, p.Key)
	}
	for _, w := range wants {
		wantKeys = append(wantKeys, w.key)
	}
	if !slices.Equal(gotKeys, wantKeys) {
		t.Fatalf("problem keys: got %q; want %q\n%v", gotKeys, wantKeys, ps)
	}
	for i, w := range wants {
		if !strings.Contains(ps[i].Message, w.msg) {
			t.Errorf("%s: got message %q; want it to contain %q", w.key, ps[i].Message, w.msg)
		}
	}
}

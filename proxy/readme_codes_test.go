package proxy_test

import (
	"bufio"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// TestREADMEListsEveryCode checks that README.md's "Errors sidekey makes
// itself" table names exactly the Code* constants of errors.go: a code
// missing from either side fails.
func TestREADMEListsEveryCode(t *testing.T) {
	defined := definedCodes(t)
	listed := readmeCodes(t)
	for code := range defined {
		if !listed[code] {
			t.Errorf("code %q is defined in errors.go but not listed in README.md's error table", code)
		}
	}
	for code := range listed {
		if !defined[code] {
			t.Errorf("code %q is listed in README.md's error table but not defined in errors.go", code)
		}
	}
	if len(defined) < 20 {
		t.Errorf("found only %d codes in errors.go: %v", len(defined), sorted(defined))
	}
}

// definedCodes parses errors.go and returns the values of its Code* string
// constants.
func definedCodes(t *testing.T) map[string]bool {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), "errors.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	codes := map[string]bool{}
	for _, decl := range f.Decls {
		gen, ok := decl.(*ast.GenDecl)
		if !ok || gen.Tok != token.CONST {
			continue
		}
		for _, spec := range gen.Specs {
			vs := spec.(*ast.ValueSpec)
			for i, name := range vs.Names {
				if !strings.HasPrefix(name.Name, "Code") || i >= len(vs.Values) {
					continue
				}
				lit, ok := vs.Values[i].(*ast.BasicLit)
				if !ok || lit.Kind != token.STRING {
					t.Fatalf("%s is not a string literal", name.Name)
				}
				code, err := strconv.Unquote(lit.Value)
				if err != nil {
					t.Fatal(err)
				}
				codes[code] = true
			}
		}
	}
	return codes
}

// readmeCodes returns every backquoted code in the first column of the
// table under README.md's "## Errors sidekey makes itself".
func readmeCodes(t *testing.T) map[string]bool {
	t.Helper()
	f, err := os.Open("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	codeRE := regexp.MustCompile("`([a-z_]+)`")
	codes := map[string]bool{}
	inSection, inTable := false, false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "## "):
			if inSection {
				return codes
			}
			inSection = line == "## Errors sidekey makes itself"
		case !inSection:
		case strings.HasPrefix(line, "|"):
			inTable = true
			cells := strings.Split(line, "|")
			if len(cells) < 3 || strings.HasPrefix(strings.TrimSpace(cells[1]), "---") {
				continue
			}
			for _, m := range codeRE.FindAllStringSubmatch(cells[1], -1) {
				codes[m[1]] = true
			}
		case inTable:
			return codes
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if !inSection {
		t.Fatal(`README.md has no "## Errors sidekey makes itself" section`)
	}
	return codes
}

func sorted(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

package server

import (
	"strings"
	"testing"

	"github.com/sidekey/sidekey/config"
)

// FuzzJustBefore checks the console's prefix search bound: for a search
// prefix p, every tenant name starting with p sorts after justBefore(p),
// and every name that sorts before p without starting with it does not.
func FuzzJustBefore(f *testing.F) {
	for _, seed := range [][2]string{{"shop-", "shop-1"}, {"a", "a"}, {"b", "a-z"}, {"0", "-"}, {"shop", "shoo.zz"}, {"x\x00", "x"}} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, prefix, name string) {
		if prefix == "" || !config.ValidTenantName(name) {
			return
		}
		bound := justBefore(prefix)
		switch {
		case strings.HasPrefix(name, prefix) && name <= bound:
			t.Errorf("%q starts with %q but sorts at or before the bound %q: the search would skip it", name, prefix, bound)
		case !strings.HasPrefix(name, prefix) && name < prefix && name > bound:
			t.Errorf("%q sorts before %q but after the bound %q: the search would start at it", name, prefix, bound)
		}
	})
}

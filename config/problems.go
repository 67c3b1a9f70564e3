package config

import (
	"fmt"
	"sort"
)

// add records a problem at key.
func (ps *Problems) add(key, msg string) {
	*ps = append(*ps, Problem{Key: key, Message: msg})
}

// addf records a formatted problem at key.
func (ps *Problems) addf(key, format string, args ...any) {
	ps.add(key, fmt.Sprintf(format, args...))
}

// err sorts the problems by key (keeping the order of problems at the same
// key) and returns them as an error, or nil when there are none.
func (ps Problems) err() error {
	if len(ps) == 0 {
		return nil
	}
	sort.SliceStable(ps, func(i, j int) bool { return ps[i].Key < ps[j].Key })
	return ps
}

// Merge returns ps with the problems of later appended, except those at a
// key ps already names: a problem is reported once, by the first check
// that saw it (a value that failed to decode is not also "required"; a
// field config and providers both check is named once).
func (ps Problems) Merge(later Problems) Problems {
	seen := make(map[string]bool, len(ps))
	for _, p := range ps {
		seen[p.Key] = true
	}
	for _, p := range later {
		if !seen[p.Key] {
			ps = append(ps, p)
		}
	}
	return ps
}

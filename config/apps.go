package config

import (
	"reflect"
	"slices"
)

// WithApp returns the tenant t as it runs: app's settings with t's own
// settings laid over them (every field t sets wins; maps such as headers
// and token_params are merged key by key, t's keys winning). App stays t's
// App. Neither argument is modified; app may be nil.
func WithApp(app, t *Tenant) *Tenant {
	if app == nil {
		c := *t
		return &c
	}
	merged := *app
	mv := reflect.ValueOf(&merged).Elem()
	tv := reflect.ValueOf(t).Elem()
	for i := range tv.NumField() {
		f := tv.Field(i)
		if f.IsZero() {
			continue
		}
		if f.Kind() == reflect.Map && !mv.Field(i).IsNil() {
			m := reflect.MakeMap(f.Type())
			for _, src := range []reflect.Value{mv.Field(i), f} {
				iter := src.MapRange()
				for iter.Next() {
					m.SetMapIndex(iter.Key(), iter.Value())
				}
			}
			mv.Field(i).Set(m)
			continue
		}
		mv.Field(i).Set(f)
	}
	merged.App = t.App
	if merged.Scopes != nil {
		merged.Scopes = slices.Clone(merged.Scopes)
	}
	return &merged
}

// applyApps replaces every tenant that names a known app with WithApp.
// Running it again changes nothing.
func (c *Config) applyApps() {
	for name, t := range c.Tenants {
		if t == nil || t.App == "" {
			continue
		}
		if app, ok := c.Apps[t.App]; ok && app != nil {
			c.Tenants[name] = WithApp(app, t)
		}
	}
}

package tokensource

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"sync"
	"time"

	"go.uber.org/zap"
	"golang.org/x/oauth2"
)

// Storage is what a StoredSource needs from the token store (store.Store
// implements it). Values are sealed by the store; keys are plain names.
type Storage interface {
	Load(ctx context.Context, key string) ([]byte, error) // fs.ErrNotExist when absent
	Store(ctx context.Context, key string, value []byte) error
	// CompareAndSwap replaces the value only while it is still old (nil:
	// absent). It fences writes: a replica whose lock lease ran out cannot
	// overwrite a token another replica stored since.
	CompareAndSwap(ctx context.Context, key string, old, new []byte) (bool, error)
	Delete(ctx context.Context, key string) error
	// Lock takes an exclusive lock on name, across every replica sharing
	// the store, until unlock is called.
	Lock(ctx context.Context, name string) (unlock func(), err error)
}

// StoredOptions configures a StoredSource.
type StoredOptions struct {
	// Name is the tenant name, for logs and errors.
	Name string
	// Storage keeps the tenant's token. Required.
	Storage Storage
	// Key is the tenant's key in Storage, e.g. "tokens/acme". Required.
	Key string
	// Fetch obtains a new token. prev is the stored token (nil when there
	// is none), whose RefreshToken a refresh grant uses. A returned token
	// without a RefreshToken keeps prev's. Required.
	Fetch func(ctx context.Context, prev *oauth2.Token) (*oauth2.Token, error)
	// NeedsPerson, if not nil, reports why no token can be fetched from
	// prev (nil: none stored) without a person — a consent tenant never
	// connected, a token that ran out with nothing to renew it. It is
	// asked before the store's lock is taken; its error is returned marked
	// NotAttempted, and Fetch is not called. Nil: Fetch may always try.
	NeedsPerson func(prev *oauth2.Token) error
	// CannotRefresh says that the grant cannot renew a token (Istores): a
	// Source over this StoredSource never refreshes ahead (CanRefresh).
	CannotRefresh bool
	// Final reports whether a Fetch error means prev's refresh token is
	// dead (invalid_grant): the stored refresh token is then cleared, so
	// that no replica tries it again. Nil: no error is final.
	Final func(error) bool
	// Logger receives a line per stored token; never a token value.
	// Nil: zap.NewNop().
	Logger *zap.Logger
	// Now is the clock. Nil: time.Now.
	Now func() time.Time
}

// StoredSource is the persistence link of a tenant's chain: provider grant
// → StoredSource → RefreshAhead. It answers from the store while the stored
// token is newer than the one it last handed out (after a restart, or when
// another replica refreshed), and otherwise fetches under the store's
// per-tenant lock, writing the new token — above all a rotated refresh
// token — durably to the store before anyone uses it.
//
// It implements oauth2.TokenSource and is safe for concurrent use; calls
// are serialised.
type StoredSource struct {
	opts StoredOptions
	log  *zap.Logger

	mu         sync.Mutex    // serialises TokenContext, Save and Forget; guards the fields below
	last       *oauth2.Token // the token last handed out
	pending    *oauth2.Token // fetched but not yet stored: its write is retried first
	pendingOld []byte        // the stored value pending replaces
	pendingAt  time.Time     // when pending was requested
}

// record is a token as the store keeps it (sealed by the store).
type record struct {
	AccessToken  string    `json:"access_token"`
	TokenType    string    `json:"token_type,omitempty"`
	RefreshToken string    `json:"refresh_token,omitempty"`
	Expiry       time.Time `json:"expiry,omitzero"`
	Obtained     time.Time `json:"obtained"`
	// RefreshExpiry is when RefreshToken expires, if the platform said.
	RefreshExpiry time.Time `json:"refresh_expiry,omitzero"`
}

// writeTimeout bounds a store write; writes are not cancelled with the
// caller's context, so a rotated refresh token is never lost to a caller
// that went away.
const writeTimeout = 10 * time.Second

// Stored returns a StoredSource for opts.
func Stored(opts StoredOptions) *StoredSource {
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &StoredSource{opts: opts, log: opts.Logger.With(zap.String("tenant", opts.Name))}
}

// Token is TokenContext(context.Background()).
func (s *StoredSource) Token() (*oauth2.Token, error) { return s.TokenContext(context.Background()) }

// CanRefresh reports whether the grant can renew a token (see
// StoredOptions.CannotRefresh); it makes StoredSource a Refresher.
func (s *StoredSource) CanRefresh() bool { return !s.opts.CannotRefresh }

// TokenContext returns the stored token when it is valid and newer than the
// last one handed out; otherwise it fetches a new token under the store's
// lock and stores it before returning it.
func (s *StoredSource) TokenContext(ctx context.Context) (*oauth2.Token, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pending != nil {
		swapped, err := s.put(ctx, s.pending, s.pendingAt, s.pendingOld, false)
		if err != nil {
			return nil, err
		}
		tok := s.pending
		s.pending, s.pendingOld, s.pendingAt = nil, nil, time.Time{}
		if swapped {
			s.last = tok
			return tok, nil
		}
		// Another replica stored a token meanwhile: that one wins.
	}
	prev, _, err := s.load(ctx)
	if err != nil {
		return nil, err
	}
	if s.fresh(prev) {
		s.last = prev
		return prev, nil
	}
	if err := s.needsPerson(prev); err != nil {
		return nil, err // no lock, no token request
	}
	tok, _, err := s.renew(ctx, s.fresh)
	if err != nil {
		return nil, err
	}
	s.last = tok
	return tok, nil
}

// fresh reports whether stored can be handed out: valid beyond the engine's
// clock-skew margin and not the token handed out last (which the caller
// wants replaced).
func (s *StoredSource) fresh(stored *oauth2.Token) bool {
	if stored == nil || stored.AccessToken == "" {
		return false
	}
	now := s.opts.Now()
	if !newState(stored, now, time.Time{}, 0).valid(now) {
		return false
	}
	return s.last == nil || stored.AccessToken != s.last.AccessToken
}

// Renew refreshes the stored token now if it was obtained before
// olderThan and has a refresh token, for tenants no engine keeps fresh (an
// idle connection). It reports whether it refreshed: false when there is
// nothing to renew, or another replica renewed it first.
func (s *StoredSource) Renew(ctx context.Context, olderThan time.Time) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, renewed, err := s.renew(ctx, func(prev *oauth2.Token) bool {
		if prev == nil || prev.RefreshToken == "" {
			return true // nothing to renew with
		}
		obtained, ok := prev.Extra(ObtainedExtra).(time.Time)
		return ok && !obtained.Before(olderThan)
	})
	return renewed && err == nil, err
}

// renew is the one refresh path (s.mu held): under the store's per-tenant
// lock it reads the stored token prev again (another replica may have
// renewed it meanwhile) and, unless keep(prev), fetches a new token and
// stores it — above all a rotated refresh token — before returning it.
// renewed is false when prev was kept or another replica's newer token
// won; tok is then the stored one (nil: none).
func (s *StoredSource) renew(ctx context.Context, keep func(prev *oauth2.Token) bool) (tok *oauth2.Token, renewed bool, err error) {
	unlock, err := s.opts.Storage.Lock(ctx, "locks/"+s.opts.Key)
	if err != nil {
		return nil, false, fmt.Errorf("tokensource: %s: locking the stored token: %w", s.opts.Name, err)
	}
	defer unlock()
	prev, raw, err := s.load(ctx)
	if err != nil {
		return nil, false, err
	}
	if keep(prev) {
		return prev, false, nil
	}
	if err := s.needsPerson(prev); err != nil {
		return nil, false, err
	}
	requested := s.opts.Now() // the new token's life begins here, not when it arrives
	fctx, cancel := fetchContext(ctx, prev)
	defer cancel()
	tok, err = s.opts.Fetch(fctx, prev)
	if err != nil {
		if prev != nil && prev.RefreshToken != "" && s.opts.Final != nil && s.opts.Final(err) {
			s.dropRefreshToken(ctx, prev, raw)
		}
		return nil, false, err
	}
	if tok == nil || tok.AccessToken == "" {
		return nil, false, fmt.Errorf("tokensource: %s: the grant returned no access token", s.opts.Name)
	}
	tok = carryRefresh(tok, prev)
	swapped, err := s.put(ctx, tok, requested, raw, false)
	if err != nil {
		s.pending, s.pendingOld, s.pendingAt = tok, raw, requested // the only copy of a rotated refresh token: keep it
		return nil, false, err
	}
	if !swapped {
		// Our lease ran out and another replica stored a newer token: use
		// that one rather than overwrite it.
		s.log.Warn("another replica stored a token while this one refreshed; using the stored one")
		if prev, _, err = s.load(ctx); err != nil || prev == nil {
			return nil, false, fmt.Errorf("tokensource: %s: the stored token changed during a refresh: %w", s.opts.Name, err)
		}
		return prev, false, nil
	}
	return tok, true, nil
}

// needsPerson is StoredOptions.NeedsPerson's verdict on prev, marked
// NotAttempted.
func (s *StoredSource) needsPerson(prev *oauth2.Token) error {
	if s.opts.NeedsPerson == nil {
		return nil
	}
	return NotAttempted(s.opts.NeedsPerson(prev))
}

// Save stores tok as the tenant's token (after a consent exchange),
// replacing whatever was stored.
func (s *StoredSource) Save(ctx context.Context, tok *oauth2.Token) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if tok == nil || tok.AccessToken == "" {
		return fmt.Errorf("tokensource: %s: refusing to store an empty token", s.opts.Name)
	}
	if _, err := s.put(ctx, tok, s.opts.Now(), nil, true); err != nil {
		return err
	}
	s.pending, s.pendingOld, s.last = nil, nil, nil
	return nil
}

// Stored returns the stored token, or nil when there is none.
func (s *StoredSource) Stored(ctx context.Context) (*oauth2.Token, error) {
	tok, _, err := s.load(ctx)
	return tok, err
}

// Forget deletes the stored token.
func (s *StoredSource) Forget(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pending, s.pendingOld, s.last = nil, nil, nil
	if err := s.opts.Storage.Delete(ctx, s.opts.Key); err != nil {
		return fmt.Errorf("tokensource: %s: deleting the stored token: %w", s.opts.Name, err)
	}
	return nil
}

// load reads the stored token and its raw value; nil, nil when there is
// none.
func (s *StoredSource) load(ctx context.Context) (*oauth2.Token, []byte, error) {
	b, err := s.opts.Storage.Load(ctx, s.opts.Key)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("tokensource: %s: reading the stored token: %w", s.opts.Name, err)
	}
	var r record
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, nil, fmt.Errorf("tokensource: %s: the stored token is not readable: %w", s.opts.Name, err)
	}
	tok := &oauth2.Token{AccessToken: r.AccessToken, TokenType: r.TokenType, RefreshToken: r.RefreshToken, Expiry: r.Expiry}
	extra := map[string]any{ObtainedExtra: r.Obtained}
	if !r.RefreshExpiry.IsZero() {
		extra[RefreshExpiryExtra] = r.RefreshExpiry
	}
	return tok.WithExtra(extra), b, nil
}

// encode is tok, requested at obtained, as stored.
func (s *StoredSource) encode(tok *oauth2.Token, obtained time.Time) ([]byte, error) {
	r := record{
		AccessToken: tok.AccessToken, TokenType: tok.TokenType, RefreshToken: tok.RefreshToken,
		Expiry: tok.Expiry.UTC(), Obtained: obtained.UTC(),
	}
	if tok.RefreshToken != "" {
		r.RefreshExpiry = RefreshExpiry(tok).UTC()
	}
	b, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("tokensource: %s: encoding the token: %w", s.opts.Name, err)
	}
	return b, nil
}

// put stores tok, requested at obtained, durably and independent of the
// caller's cancellation: with overwrite whatever was stored before (a
// consent's new token), else only while the stored value is still old
// (nil: none). stored is false when another writer got there first.
func (s *StoredSource) put(ctx context.Context, tok *oauth2.Token, obtained time.Time, old []byte, overwrite bool) (stored bool, err error) {
	b, err := s.encode(tok, obtained)
	if err != nil {
		return false, err
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), writeTimeout)
	defer cancel()
	if overwrite {
		err, stored = s.opts.Storage.Store(ctx, s.opts.Key, b), true
	} else {
		stored, err = s.opts.Storage.CompareAndSwap(ctx, s.opts.Key, old, b)
	}
	if err != nil {
		return false, fmt.Errorf("tokensource: %s: storing the new token: %w", s.opts.Name, err)
	}
	if stored {
		s.log.Debug("token stored", zap.Time("expiry", tok.Expiry), zap.Bool("has_refresh_token", tok.RefreshToken != ""))
	}
	return stored, nil
}

// dropRefreshToken clears a refresh token the platform refused, if the
// stored value is still the one it came from, so the tenant shows
// consent_required at once instead of retrying a dead grant.
func (s *StoredSource) dropRefreshToken(ctx context.Context, refused *oauth2.Token, raw []byte) {
	obtained, _ := refused.Extra(ObtainedExtra).(time.Time)
	swapped, err := s.put(ctx, withRefreshToken(refused, ""), obtained, raw, false)
	switch {
	case err != nil:
		s.log.Warn("could not clear a refused refresh token", zap.Error(err))
	case swapped:
		s.log.Warn("the platform refused the refresh token: the tenant needs consent again")
	}
}

// refreshTimeout bounds a refresh-token request made for a caller without
// a deadline.
const refreshTimeout = 30 * time.Second

// fetchContext is the context of a Fetch with prev. A refresh-token
// request is not cancelled with ctx — the platform may already have
// rotated the refresh token, and only its answer holds the new one — but it
// keeps ctx's deadline (refreshTimeout when ctx has none).
func fetchContext(ctx context.Context, prev *oauth2.Token) (context.Context, context.CancelFunc) {
	if prev == nil || prev.RefreshToken == "" {
		return context.WithCancel(ctx)
	}
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(refreshTimeout)
	}
	return context.WithDeadline(context.WithoutCancel(ctx), deadline)
}

// withRefreshToken returns a copy of tok with refresh token rt.
func withRefreshToken(tok *oauth2.Token, rt string) *oauth2.Token {
	c := *tok
	c.RefreshToken = rt
	return &c
}

// carryRefresh completes tok, fetched with prev, from prev: a grant that
// returned no refresh token keeps prev's (and its expiry), and a rotated
// refresh token whose answer states no expiry keeps prev's expiry.
func carryRefresh(tok, prev *oauth2.Token) *oauth2.Token {
	if prev == nil {
		return tok
	}
	if tok.RefreshToken == "" {
		tok = withRefreshToken(tok, prev.RefreshToken)
	}
	if exp := RefreshExpiry(prev); !exp.IsZero() && RefreshExpiry(tok).IsZero() && tok.RefreshToken != "" {
		tok = withExtra(tok, RefreshExpiryExtra, exp)
	}
	return tok
}

// withExtra returns a copy of tok whose extras are tok's (those set as a
// map[string]any) and key = v.
func withExtra(tok *oauth2.Token, key string, v any) *oauth2.Token {
	extra := map[string]any{key: v}
	for _, k := range []string{"scope", ObtainedExtra, RefreshExpiryExtra} {
		if old := tok.Extra(k); old != nil && k != key {
			extra[k] = old
		}
	}
	return tok.WithExtra(extra)
}

// StoredInfo is what a stored token record says without its secrets.
type StoredInfo struct {
	Obtained      time.Time // when the token was obtained
	Expiry        time.Time // the access token's expiry; zero: none
	Renewable     bool      // a refresh token is stored
	RefreshExpiry time.Time // when the refresh token expires; zero: unknown
}

// ReadStoredInfo reads a stored token record (as a StoredSource writes it),
// so that a sweeper or an admin listing can look at many tenants without
// loading them.
func ReadStoredInfo(b []byte) (StoredInfo, error) {
	var r record
	if err := json.Unmarshal(b, &r); err != nil {
		return StoredInfo{}, fmt.Errorf("tokensource: the stored token is not readable: %w", err)
	}
	return StoredInfo{Obtained: r.Obtained, Expiry: r.Expiry, Renewable: r.RefreshToken != "", RefreshExpiry: r.RefreshExpiry}, nil
}

package tlsserve

import (
	"os"
	"slices"
	"time"
)

// fileWatch tells whether any of a few files changed since it last looked
// (modification time and size), looking at most once every period, so that
// a TLS handshake can afford to ask. It is not safe for concurrent use: its
// owner's lock guards it.
type fileWatch struct {
	files   []string
	every   time.Duration
	now     func() time.Time
	seen    []fileStamp // the files at the last look
	checked time.Time   // when that was
}

// fileStamp is a file's modification time and size; zero for a file that
// cannot be stat'ed.
type fileStamp struct {
	mod  time.Time
	size int64
}

// newFileWatch looks at files now.
func newFileWatch(every time.Duration, now func() time.Time, files ...string) *fileWatch {
	w := &fileWatch{files: files, every: every, now: now}
	w.seen, w.checked = w.stamps(), now()
	return w
}

// changed reports whether a file changed since the last look, looking only
// if every has passed since then.
func (w *fileWatch) changed() bool {
	now := w.now()
	if now.Sub(w.checked) < w.every {
		return false
	}
	w.checked = now
	st := w.stamps()
	if slices.Equal(st, w.seen) {
		return false
	}
	w.seen = st
	return true
}

func (w *fileWatch) stamps() []fileStamp {
	st := make([]fileStamp, len(w.files))
	for i, f := range w.files {
		if fi, err := os.Stat(f); err == nil {
			st[i] = fileStamp{mod: fi.ModTime(), size: fi.Size()}
		}
	}
	return st
}

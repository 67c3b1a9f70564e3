// Package benchutil holds what the bench/ harnesses share: memory samples,
// a bounded parallel loop and percentiles.
package benchutil

import (
	"os"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/sidekey/sidekey/bench/internal/procstat"
)

// Mem is one sample of the process's memory: resident set, its high-water
// mark, and the Go heap in use, in bytes.
type Mem struct{ RSS, HWM, Heap int64 }

// Sample reads the process's memory now.
func Sample() Mem {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	s, _ := procstat.Read(os.Getpid())
	return Mem{RSS: s.RSS, HWM: s.HWM, Heap: int64(ms.HeapInuse)}
}

// MiB is b bytes in mebibytes.
func MiB(b int64) float64 { return float64(b) / (1 << 20) }

// Parallel runs fn(0..n-1) on conc goroutines and returns the first error.
func Parallel(n, conc int, fn func(i int) error) error {
	next := make(chan int)
	errc := make(chan error, conc)
	var wg sync.WaitGroup
	for range conc {
		wg.Go(func() {
			for i := range next {
				if err := fn(i); err != nil {
					errc <- err
					return
				}
			}
		})
	}
	var err error
feed:
	for i := range n {
		select {
		case next <- i:
		case err = <-errc:
			break feed
		}
	}
	close(next)
	wg.Wait()
	if err == nil {
		select {
		case err = <-errc:
		default:
		}
	}
	return err
}

// Percentile returns the p-th percentile of ds, rounded for reading.
func Percentile(ds []time.Duration, p float64) string {
	if len(ds) == 0 {
		return "-"
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := min(len(s)-1, int(float64(len(s))*p/100))
	return s[i].Round(10 * time.Microsecond).String()
}

// Timed runs get(0..n-1) on conc goroutines, like Parallel, and returns the
// duration each call reported, in completion order.
func Timed(n, conc int, get func(i int) (time.Duration, error)) ([]time.Duration, error) {
	var mu sync.Mutex // guards ds
	ds := make([]time.Duration, 0, n)
	err := Parallel(n, conc, func(i int) error {
		d, err := get(i)
		mu.Lock()
		ds = append(ds, d)
		mu.Unlock()
		return err
	})
	return ds, err
}

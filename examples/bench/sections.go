package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/subvolkit/subvolkit/quota"
)

// config sizes a run.
type config struct {
	count     int   // subvolumes for burst, list and usage
	rounds    int   // rounds of the per-operation sections
	bigRounds int   // rounds of the heavy sections (burst, clone, usage)
	files     int   // small files of the clone section
	bigMiB    int   // size of the clone section's big file
	size      int64 // size of every subvolume
}

// sectionNames are the sections in the order they run.
var sectionNames = []string{"allocate", "delete", "concurrent", "burst", "clone", "list", "usage"}

// bench runs the sections of one run on t.
type bench struct {
	t   *target
	cfg config
	// listed are the subvolumes the list and usage sections share.
	listed []string
}

func (b *bench) run(ctx context.Context, name string) (Section, error) {
	f, ok := map[string]func(context.Context) (Section, error){
		"allocate": b.allocate, "delete": b.delete, "concurrent": b.concurrent, "burst": b.burst,
		"clone": b.clone, "list": b.list, "usage": b.usage,
	}[name]
	if !ok {
		return Section{}, fmt.Errorf("unknown section %q", name)
	}
	return f(ctx)
}

// deleteAll removes subvolumes (ours) and raw directories, 8 at a time,
// untimed, and waits for the purge so the next section starts quiet.
func (b *bench) deleteAll(ctx context.Context, ours, raw []string) error {
	var mu sync.Mutex
	var errs []error
	add := func(err error) {
		if err != nil {
			mu.Lock()
			errs = append(errs, err)
			mu.Unlock()
		}
	}
	forEach(ctx, ours, 8, func(n string) { add(b.t.pool.Delete(ctx, n, nil)) })
	forEach(ctx, raw, 8, func(n string) { add(b.t.rawDelete(ctx, n)) })
	if len(ours) > 0 {
		add(b.t.waitPurge(ctx, 10*time.Minute))
	}
	return errors.Join(errs...)
}

func (b *bench) allocate(ctx context.Context) (Section, error) {
	s := Section{Name: "allocate", Title: "allocate"}
	// One untimed round first: the first calls of a run pay for cold
	// caches (the CLI's, the mounts') on both sides.
	ours, raw := []string{b.t.name("alloc")}, []string{b.t.name("rawalloc")}
	if _, err := b.t.pool.Allocate(ctx, ours[0], b.cfg.size, nil); err != nil {
		return s, err
	}
	if err := b.t.rawAllocate(ctx, raw[0], b.cfg.size); err != nil {
		return s, err
	}
	o, r, err := interleave(ctx, b.cfg.rounds, func(ctx context.Context, _ int) error {
		n := b.t.name("alloc")
		ours = append(ours, n)
		_, err := b.t.pool.Allocate(ctx, n, b.cfg.size, nil)
		return err
	}, func(ctx context.Context, _ int) error {
		n := b.t.name("rawalloc")
		raw = append(raw, n)
		return b.t.rawAllocate(ctx, n, b.cfg.size)
	})
	err = errors.Join(err, b.deleteAll(ctx, ours, raw))
	const is = "mkdir + quota limit-usage"
	s.Rows = append(s.Rows,
		newRow("p50", unitMs, pct(o, 50), pct(r, 50), is),
		newRow("p90", unitMs, pct(o, 90), pct(r, 90), is))
	return s, err
}

// writeFile writes a small file into a subvolume or raw directory, so
// that a delete has data to remove.
func (b *bench) writeFile(name string) error {
	return os.WriteFile(filepath.Join(b.t.root, name, "f"), []byte("x"), 0o644)
}

func (b *bench) delete(ctx context.Context) (Section, error) {
	s := Section{Name: "delete", Title: "delete"}
	n := b.cfg.rounds
	ours, raw := make([]string, n), make([]string, n)
	for i := range n {
		ours[i], raw[i] = b.t.name("del"), b.t.name("rawdel")
		if _, err := b.t.pool.Allocate(ctx, ours[i], b.cfg.size, nil); err != nil {
			return s, err
		}
		if err := b.t.rawAllocate(ctx, raw[i], b.cfg.size); err != nil {
			return s, err
		}
		if err := errors.Join(b.writeFile(ours[i]), b.writeFile(raw[i])); err != nil {
			return s, err
		}
	}
	o, r, err := interleave(ctx, n, func(ctx context.Context, i int) error {
		return b.t.pool.Delete(ctx, ours[i], nil)
	}, func(ctx context.Context, i int) error {
		return b.t.rawDelete(ctx, raw[i])
	})
	err = errors.Join(err, b.t.waitPurge(ctx, 10*time.Minute))
	const is = "quota remove + rm -rf"
	for _, row := range []Row{
		newRow("p50 (one 1-byte file)", unitMs, pct(o, 50), pct(r, 50), is),
		newRow("p90 (one 1-byte file)", unitMs, pct(o, 90), pct(r, 90), is),
	} {
		row.Note = "ours: a rename into the trash, purged in the background"
		s.Rows = append(s.Rows, row)
	}
	return s, err
}

// parallel runs f(i) for i in [0, n) from callers goroutines and returns
// the wall time and the errors.
func parallel(n, callers int, f func(i int) error) (time.Duration, []error) {
	errs := make([]error, n)
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	start := time.Now()
	forEach(context.Background(), idx, callers, func(i int) { errs[i] = f(i) })
	return time.Since(start), errs
}

func countErrs(errs []error) int {
	k := 0
	for _, err := range errs {
		if err != nil {
			k++
		}
	}
	return k
}

func (b *bench) concurrent(ctx context.Context) (Section, error) {
	s := Section{Name: "concurrent", Title: "8 concurrent allocates"}
	rounds := max(2, b.cfg.rounds/5)
	var ours, rawPar, rawSer []string
	var tOurs, tSer time.Duration
	var failOurs, failRaw, total int
	var firstErr error
	for i := range rounds {
		if err := ctx.Err(); err != nil {
			return s, err
		}
		runOurs := func() {
			ns := b.names("conc", 8, &ours)
			d, errs := parallel(8, 8, func(j int) error {
				_, err := b.t.pool.Allocate(ctx, ns[j], b.cfg.size, nil)
				return err
			})
			tOurs += d
			failOurs += countErrs(errs)
			firstErr = errors.Join(firstErr, errors.Join(errs...))
		}
		runRawParallel := func() {
			ns := b.names("rawconc", 8, &rawPar)
			_, errs := parallel(8, 8, func(j int) error { return b.t.rawAllocateWith(ctx, b.t.glusterOnce, ns[j], b.cfg.size) })
			failRaw += countErrs(errs)
		}
		runRawSerial := func() {
			ns := b.names("rawser", 8, &rawSer)
			d, errs := parallel(8, 1, func(j int) error { return b.t.rawAllocate(ctx, ns[j], b.cfg.size) })
			tSer += d
			firstErr = errors.Join(firstErr, errors.Join(errs...))
		}
		order := []func(){runOurs, runRawParallel, runRawSerial}
		for k := range order {
			order[(k+i)%len(order)]()
		}
		total += 8
	}
	if ctx.Err() == nil && firstErr != nil {
		// A failure of ours (or of the serialized raw calls) is a failed
		// run, not a figure: only the naive raw calls may fail.
		return s, errors.Join(firstErr, b.deleteAll(ctx, ours, append(rawPar, rawSer...)))
	}
	err := b.deleteAll(ctx, ours, append(rawPar, rawSer...))
	pctOf := func(k int) float64 { return 100 * float64(k) / float64(total) }
	s.Rows = append(s.Rows,
		newRow("failed", unitPercent, pctOf(failOurs), pctOf(failRaw), "8 raw allocates at once, no retries"),
		newRow("wall time of 8", unitMs, ms(tOurs)/float64(rounds), ms(tSer)/float64(rounds), "8 raw allocates one after another"))
	return s, err
}

// fill writes n files of size bytes into dir (100 per subdirectory when
// there are more than 100), from 8 writers.
func fill(ctx context.Context, dir string, n, size int) error {
	var mu sync.Mutex
	var errs []error
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	forEach(ctx, idx, 8, func(i int) {
		buf := make([]byte, size)
		_, _ = rand.Read(buf)
		d := dir
		if n > 100 {
			d = filepath.Join(dir, "d"+strconv.Itoa(i/100))
		}
		err := os.MkdirAll(d, 0o755)
		if err == nil {
			err = os.WriteFile(filepath.Join(d, "f"+strconv.Itoa(i)), buf, 0o644)
		}
		if err != nil {
			mu.Lock()
			errs = append(errs, err)
			mu.Unlock()
		}
	})
	return errors.Join(append(errs, ctx.Err())...)
}

func (b *bench) clone(ctx context.Context) (Section, error) {
	s := Section{Name: "clone", Title: "clone"}
	var ours, raw []string
	defer func() { _ = b.deleteAll(ctx, ours, raw) }()
	trees := []struct {
		measure  string
		n, bytes int
	}{
		{fmt.Sprintf("%d × 4 KiB files", b.cfg.files), b.cfg.files, 4096},
		{fmt.Sprintf("one %d MiB file", b.cfg.bigMiB), 1, b.cfg.bigMiB << 20},
	}
	for _, tr := range trees {
		src, rawSrc := b.t.name("clsrc"), b.t.name("rawclsrc")
		ours, raw = append(ours, src), append(raw, rawSrc)
		if _, err := b.t.pool.Allocate(ctx, src, b.cfg.size, nil); err != nil {
			return s, err
		}
		if err := b.t.rawAllocate(ctx, rawSrc, b.cfg.size); err != nil {
			return s, err
		}
		if err := fill(ctx, filepath.Join(b.t.root, src), tr.n, tr.bytes); err != nil {
			return s, err
		}
		if err := cpA(ctx, filepath.Join(b.t.root, src), filepath.Join(b.t.root, rawSrc)); err != nil {
			return s, err
		}
		var dsts, rawDsts []string
		o, r, err := interleave(ctx, b.cfg.bigRounds*2, func(ctx context.Context, _ int) error {
			d := b.t.name("clone")
			dsts = append(dsts, d)
			_, err := b.t.pool.Clone(ctx, src, d, nil)
			return err
		}, func(ctx context.Context, _ int) error {
			d := b.t.name("rawclone")
			rawDsts = append(rawDsts, d)
			if err := b.t.rawAllocate(ctx, d, b.cfg.size); err != nil {
				return err
			}
			return cpA(ctx, filepath.Join(b.t.root, rawSrc), filepath.Join(b.t.root, d))
		})
		if derr := b.deleteAll(ctx, dsts, rawDsts); err == nil {
			err = derr
		}
		if err != nil {
			return s, err
		}
		s.Rows = append(s.Rows, newRow(tr.measure, unitS, mean(o)/1000, mean(r)/1000, "mkdir + limit-usage + cp -a"))
	}
	return s, nil
}

// ensureListed makes count subvolumes for the list and usage sections
// (once), with 8 callers.
func (b *bench) ensureListed(ctx context.Context) error {
	if len(b.listed) > 0 {
		return nil
	}
	names := make([]string, b.cfg.count)
	for i := range names {
		names[i] = b.t.name("lst")
	}
	_, errs := parallel(len(names), 8, func(i int) error {
		_, err := b.t.pool.Allocate(ctx, names[i], b.cfg.size, nil)
		return err
	})
	b.listed = names // the sweep at the end removes them, made or not
	return errors.Join(errs...)
}

// readDirRoot is the baseline of List: one ReadDir of the volume root.
func (b *bench) readDirRoot(context.Context, int) error {
	ents, err := os.ReadDir(b.t.root)
	if err == nil && len(ents) < len(b.listed) {
		err = fmt.Errorf("ReadDir of the volume root: %d entries, want at least %d", len(ents), len(b.listed))
	}
	return err
}

func (b *bench) list(ctx context.Context) (Section, error) {
	s := Section{Name: "list", Title: fmt.Sprintf("List of %d", b.cfg.count)}
	if err := b.ensureListed(ctx); err != nil {
		return s, err
	}
	const is = "ReadDir of the volume root"
	for _, v := range listVariants(b) {
		o, r, err := interleave(ctx, b.cfg.rounds, v.run, b.readDirRoot)
		if err != nil {
			return s, err
		}
		row := newRow(v.measure, unitMs, pct(o, 50), pct(r, 50), is)
		row.Note = v.note
		s.Rows = append(s.Rows, row)
	}
	return s, nil
}

func (b *bench) usage(ctx context.Context) (Section, error) {
	s := Section{Name: "usage", Title: fmt.Sprintf("usage of %d", b.cfg.count)}
	if err := b.ensureListed(ctx); err != nil {
		return s, err
	}
	measure, note, ours := usageOfAll(b)
	o, r, err := interleave(ctx, max(2, b.cfg.bigRounds*2), ours, func(ctx context.Context, _ int) error {
		_, err := b.t.rawQuotaList(ctx)
		return err
	})
	if err != nil {
		return s, err
	}
	row := newRow(measure, unitMs, pct(o, 50), pct(r, 50), "quota list --xml")
	row.Note = note
	s.Rows = append(s.Rows, row)
	return s, nil
}

// sizeOK reports whether u is a real usage of one of our subvolumes.
func sizeOK(u *quota.Usage, size int64) error {
	if u == nil || u.Limit != size || u.Used < 0 {
		return fmt.Errorf("usage %+v, want a limit of %d", u, size)
	}
	return nil
}

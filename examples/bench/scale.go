package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/subvolkit/subvolkit/quota"
)

// scaleConfig sizes the scale run.
type scaleConfig struct {
	count   int           // subvolumes
	callers int           // concurrent callers of Allocate and Delete
	clones  int           // clones of one small subvolume
	purge   time.Duration // bound on the wait for the purge after the deletes
}

// Memory is the process's memory at the scale run's peak count.
type Memory struct {
	// HeapInuseMiB is the Go heap in use (runtime.MemStats.HeapInuse).
	HeapInuseMiB float64 `json:"heapInuseMiB"`
	// RSSMiB and HWMMiB are VmRSS and VmHWM of /proc/self/status.
	RSSMiB float64 `json:"rssMiB"`
	HWMMiB float64 `json:"hwmMiB"`
}

func scaleCmd(g *globalFlags, stdout, stderr io.Writer) *cobra.Command {
	cfg := scaleConfig{}
	cmd := &cobra.Command{
		Use:   "scale",
		Short: "Allocate, list, read the usage of, clone and delete --count subvolumes; report each phase and the memory",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cfg.count < 1 || cfg.callers < 1 || cfg.clones < 0 {
				return errors.New("--count and --callers must be at least 1, --clones at least 0")
			}
			logw := stderr
			if g.quiet {
				logw = io.Discard
			}
			ctx := cmd.Context()
			t, err := openTarget(ctx, &g.target, logw)
			if err != nil {
				return runError{err}
			}
			rep, err := runScale(ctx, t, cfg)
			t.logf("cleaning up")
			err = errors.Join(err, t.close(ctx), rep.write(stdout, g.output))
			return asRunError(err)
		},
	}
	f := cmd.Flags()
	f.IntVar(&cfg.count, "count", 5000, "subvolumes")
	f.IntVar(&cfg.callers, "callers", 8, "concurrent callers of Allocate and Delete")
	f.IntVar(&cfg.clones, "clones", 10, "clones of one small subvolume")
	f.DurationVar(&cfg.purge, "purge-timeout", 30*time.Minute, "bound on the wait for the purge after the deletes")
	return cmd
}

// ScaleReport is the scale run's result (the JSON of `scale -o json`).
type ScaleReport struct {
	Target string  `json:"target"`
	Count  int     `json:"count"`
	Phases []Phase `json:"phases"`
	// Memory is taken after the usage of all count subvolumes was read,
	// with the List result still held.
	Memory Memory `json:"memory"`
	// Left is what was left of the run after the deletes and the purge:
	// entries at the volume root and quota limits (both must be 0).
	LeftEntries int `json:"leftEntries"`
	LeftLimits  int `json:"leftLimits"`
}

func (r *ScaleReport) write(w io.Writer, format string) error {
	if format == "json" {
		return writeJSON(w, r)
	}
	rep := &Report{Target: r.Target, Phases: append(r.Phases,
		Phase{Name: "memory at " + strconv.Itoa(r.Count), Detail: fmt.Sprintf(
			"Go heap in use %.1f MiB, VmRSS %.1f MiB, VmHWM %.1f MiB", r.Memory.HeapInuseMiB, r.Memory.RSSMiB, r.Memory.HWMMiB)},
		Phase{Name: "left behind", Detail: fmt.Sprintf("%d entries, %d limits", r.LeftEntries, r.LeftLimits)})}
	return rep.write(w, format)
}

// runScale is the scale run on t. It returns the report measured so far
// also on failure.
func runScale(ctx context.Context, t *target, cfg scaleConfig) (*ScaleReport, error) {
	rep := &ScaleReport{Target: t.desc, Count: cfg.count}
	size := quota.GiB
	phase := func(name string, f func() (string, error)) error {
		t.logf("scale: %s", name)
		start := time.Now()
		detail, err := f()
		rep.Phases = append(rep.Phases, Phase{Name: name, Seconds: time.Since(start).Seconds(), Detail: detail})
		t.logf("scale: %s: %v %s", name, time.Since(start).Round(time.Millisecond), detail)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		return nil
	}
	names := make([]string, cfg.count)
	for i := range names {
		names[i] = t.name("s")
	}
	err := phase(fmt.Sprintf("allocate %d (%d callers)", cfg.count, cfg.callers), func() (string, error) {
		d, errs := parallel(len(names), cfg.callers, func(i int) error {
			_, err := t.pool.Allocate(ctx, names[i], size, nil)
			return err
		})
		return fmt.Sprintf("%.1f ms per subvolume", ms(d)/float64(len(names))), errors.Join(errs...)
	})
	if err != nil {
		return rep, err
	}
	var held any
	err = phase("List", func() (string, error) {
		subs, err := t.pool.List(ctx)
		if err != nil {
			return "", err
		}
		held = subs
		mine := 0
		for _, sv := range subs {
			if strings.HasPrefix(sv.Name, t.prefix) {
				mine++
			}
		}
		if mine != cfg.count {
			return "", fmt.Errorf("listed %d of the run's subvolumes, want %d", mine, cfg.count)
		}
		return fmt.Sprintf("%d subvolumes", len(subs)), nil
	})
	if err != nil {
		return rep, err
	}
	err = phase("usage of all (ListPage with usage)", func() (string, error) {
		n, err := usageOf(ctx, t, names, size)
		return fmt.Sprintf("%d usages, every limit %s", n, quota.HumanSize(size)), err
	})
	if err != nil {
		return rep, err
	}
	rep.Memory = memory()
	runtime.KeepAlive(held)
	held = nil
	t.logf("scale: memory at %d: %+v", cfg.count, rep.Memory)

	src := t.name("ssrc")
	names = append(names, src)
	err = phase(fmt.Sprintf("clone of %d (10 × 4 KiB files each)", cfg.clones), func() (string, error) {
		if _, err := t.pool.Allocate(ctx, src, size, nil); err != nil {
			return "", err
		}
		if err := fill(ctx, filepath.Join(t.root, src), 10, 4096); err != nil {
			return "", err
		}
		start := time.Now()
		for range cfg.clones {
			d := t.name("sclone")
			names = append(names, d)
			if _, err := t.pool.Clone(ctx, src, d, nil); err != nil {
				return "", err
			}
			ents, err := os.ReadDir(filepath.Join(t.root, d))
			if err != nil || len(ents) != 10 {
				return "", fmt.Errorf("clone %s: %d entries, %v", d, len(ents), err)
			}
		}
		return fmt.Sprintf("%.0f ms per clone", ms(time.Since(start))/float64(max(1, cfg.clones))), nil
	})
	if err != nil {
		return rep, err
	}
	err = phase(fmt.Sprintf("delete all %d (%d callers)", len(names), cfg.callers), func() (string, error) {
		d, errs := parallel(len(names), cfg.callers, func(i int) error { return t.pool.Delete(ctx, names[i], nil) })
		return fmt.Sprintf("%.1f ms per subvolume", ms(d)/float64(len(names))), errors.Join(errs...)
	})
	if err != nil {
		return rep, err
	}
	err = phase("purge of the deleted (limits and data)", func() (string, error) {
		start := time.Now()
		err := t.waitPurge(ctx, cfg.purge)
		return fmt.Sprintf("%.1f ms per subvolume", ms(time.Since(start))/float64(len(names))), err
	})
	if err != nil {
		return rep, err
	}
	rep.LeftEntries, rep.LeftLimits, err = t.leftovers(ctx)
	if err == nil && (rep.LeftEntries != 0 || rep.LeftLimits != 0) {
		err = fmt.Errorf("left behind: %d entries, %d quota limits named %s*", rep.LeftEntries, rep.LeftLimits, t.prefix)
	}
	return rep, err
}

// leftovers counts the run's entries at the volume root and its quota
// limits.
func (t *target) leftovers(ctx context.Context) (entries, limits int, err error) {
	ents, err := os.ReadDir(t.root)
	if err != nil {
		return 0, 0, err
	}
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), t.prefix) {
			entries++
		}
	}
	out, err := t.rawQuotaList(ctx)
	if err != nil {
		return entries, 0, err
	}
	limits = strings.Count(string(out), "<path>/"+t.prefix)
	return entries, limits, nil
}

// memory reads the Go heap in use and VmRSS/VmHWM of this process.
func memory() Memory {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	m := Memory{HeapInuseMiB: float64(ms.HeapInuse) / (1 << 20)}
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return m
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		fields := strings.Fields(v)
		if len(fields) == 0 {
			continue
		}
		kb, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			continue
		}
		switch k {
		case "VmRSS":
			m.RSSMiB = kb / 1024
		case "VmHWM":
			m.HWMMiB = kb / 1024
		}
	}
	return m
}

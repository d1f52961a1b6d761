package backendtest_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/subvolkit/subvolkit"
	"github.com/subvolkit/subvolkit/backend"
	"github.com/subvolkit/subvolkit/backend/backendtest"
	"github.com/subvolkit/subvolkit/backend/memory"
	"github.com/subvolkit/subvolkit/quota"
	"github.com/subvolkit/subvolkit/subvol"
)

// The suite's own tests: a conformance suite that passes broken backends is
// worse than none. Each mutant below breaks one rule of the contract; the
// suite, run against it in a child process, must fail the subtest that
// checks that rule. The memory backend's own test runs the suite against
// the correct backend.

// mutants maps each mutation to the subtests that must fail because of it.
var mutants = map[string][]string{
	// Controls: correct backends the suite must pass.
	"none":          nil,
	"gib-rounding":  nil, // rounds up to whole GiB and says so (like heketi)
	"unimplemented": nil, // optional capabilities answer Unimplemented (like glusterd2)
	"no-shrink":     nil, // Resize cannot shrink, and Options say so
	// Mutants.
	"create-overwrites":   {"CreateDuplicate", "ConcurrentCreateSameName"},
	"unknown-param-leaks": {"CreateUnknownParameter"},
	"rounds-dishonestly":  {"CreateRoundsUp"},
	"notfound-as-unknown": {"GetMissing", "ErrorKinds"},
	"error-with-name":     {"GetMissing"},
	"shared-state":        {"Create"},
	"delete-missing-nil":  {"DeleteMissing", "Delete"},
	"ignores-ctx":         {"CanceledContext"},
	"leaky-cancel":        {"CanceledContext"},
	"orphan-on-timeout":   {"InterruptedCreate", "CanceledContext"},
	"unsorted-list":       {"ListSortedPaging"},
	"ignores-max-results": {"ListSortedPaging"},
	"resize-noop":         {"Resize"},
	"clone-no-copy":       {"Clone"},
	"usage-stale":         {"Usage"},
	"closed-still-works":  {"Close"},
	"as-anything":         {"As"},
	"as-nothing":          {"As"},
	"regressed-clone":     {"Clone"}, // declared, answers Unimplemented
	"undeclared-clone":    {"Clone"}, // not declared, yet clones
	"refuses-dotted-name": {"ValidNames"},
	"labels-dropped":      {"Labels"},
	"offset-token":        {"ListPagingStable"}, // the page token is an offset
	"list-usage-stale":    {"ListWithUsage"},
}

// skips lists the subtests a control must skip.
var skips = map[string][]string{
	"unimplemented": {"Resize", "Clone", "Usage", "DeleteRetain", "DeleteArchive"},
}

const mutantEnv = "BACKENDTEST_MUTANT"

func TestSuiteCatchesMutants(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the suite in child processes")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	failRE := regexp.MustCompile(`--- FAIL: TestMutantChild/([A-Za-z]+) `)
	skipRE := regexp.MustCompile(`--- SKIP: TestMutantChild/([A-Za-z]+) `)
	for _, mode := range slices.Sorted(maps.Keys(mutants)) {
		want := mutants[mode]
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, exe, "-test.run=^TestMutantChild$", "-test.count=1", "-test.v")
			cmd.Env = append(os.Environ(), mutantEnv+"="+mode)
			out, err := cmd.CombinedOutput()
			var failed []string
			for _, m := range failRE.FindAllStringSubmatch(string(out), -1) {
				failed = append(failed, m[1])
			}
			if len(want) == 0 {
				if err != nil || len(failed) > 0 {
					t.Fatalf("the suite fails the correct backend (%v):\n%s", err, out)
				}
				var skipped []string
				for _, m := range skipRE.FindAllStringSubmatch(string(out), -1) {
					skipped = append(skipped, m[1])
				}
				slices.Sort(skipped)
				wantSkipped := slices.Sorted(slices.Values(skips[mode]))
				if !slices.Equal(wantSkipped, skipped) {
					t.Fatalf("skipped %v, want %v:\n%s", skipped, wantSkipped, out)
				}
				return
			}
			if err == nil {
				t.Fatalf("the suite passes the mutant %q:\n%s", mode, out)
			}
			for _, w := range want {
				if !slices.Contains(failed, w) {
					t.Errorf("mutant %q: subtest %s did not fail (failed: %v)", mode, w, failed)
				}
			}
			if t.Failed() {
				t.Logf("child output:\n%s", out)
			}
		})
	}
}

// TestMutantChild runs the suite against one mutant; TestSuiteCatchesMutants
// starts it in a child process.
func TestMutantChild(t *testing.T) {
	mode := os.Getenv(mutantEnv)
	if mode == "" {
		t.Skip("run by TestSuiteCatchesMutants")
	}
	if _, ok := mutants[mode]; !ok {
		t.Fatalf("unknown mutant %q", mode)
	}
	backendtest.RunConformanceTests(t, func(ctx context.Context, t *testing.T) (backendtest.Harness, error) {
		return &harness{mode: mode}, nil
	})
}

type harness struct {
	mode string
	dir  string
	b    *mutant
}

// capacity is the mutants' capacity: room for the suite's subvolumes even
// when they are 1 GiB each.
const capacity = 64 * quota.GiB

func (h *harness) MakeBackend(ctx context.Context, t *testing.T) (backend.Backend, error) {
	h.dir = t.TempDir()
	h.b = &mutant{
		Backend: memory.New(&memory.Options{Dir: h.dir, MaxSizeBytes: capacity}),
		mode:    h.mode, dir: h.dir, cache: map[string]*backend.Subvol{},
	}
	return h.b, nil
}

func (h *harness) Options() backendtest.Options {
	unit := int64(1)
	if h.mode == "gib-rounding" {
		unit = quota.GiB
	}
	caps := backendtest.Resize | backendtest.Clone | backendtest.Usage | backendtest.Ping | backendtest.Retain | backendtest.Archive | backendtest.Owner | backendtest.Labels | backendtest.Reconcile | backendtest.Snapshot | backendtest.Warm | backendtest.ListUsage
	switch h.mode {
	case "no-shrink":
	case "unimplemented":
		caps &^= backendtest.Resize | backendtest.Clone | backendtest.Usage | backendtest.Retain | backendtest.Archive | backendtest.ListUsage
	case "undeclared-clone":
		caps &^= backendtest.Clone
		caps |= backendtest.Shrink
	default:
		caps |= backendtest.Shrink
	}
	return backendtest.Options{
		SizeUnit:     unit,
		MaxSizeBytes: capacity,
		Capabilities: caps,
		AsTypes:      []any{new(*memory.Backend)},
		WriteFile: func(ctx context.Context, sv *subvol.Subvol, path string, data []byte) error {
			p := filepath.Join(h.dir, sv.Path, filepath.FromSlash(path))
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				return err
			}
			return os.WriteFile(p, data, 0o644)
		},
		ReadFile: func(ctx context.Context, sv *subvol.Subvol, path string) ([]byte, error) {
			return os.ReadFile(filepath.Join(h.dir, sv.Path, filepath.FromSlash(path)))
		},
		Snapshot: func(ctx context.Context) (string, error) {
			entries, err := os.ReadDir(h.dir)
			if err != nil {
				return "", err
			}
			var names []string
			for _, e := range entries {
				if e.Name() != ".trash" { // the backend's, emptied by each Delete
					names = append(names, e.Name())
				}
			}
			page, err := h.b.Backend.List(ctx, &backend.ListOptions{MaxResults: 1 << 20})
			if err != nil {
				return "", err
			}
			for _, sv := range page.Subvols {
				names = append(names, fmt.Sprintf("subvol %s %s %d", sv.Name, sv.ID, sv.SizeBytes))
			}
			return strings.Join(names, "\n"), nil
		},
		SettleTimeout: 300 * time.Millisecond,
	}
}

func (h *harness) Close() {}

// mutant is the memory backend with one rule of the contract broken.
type mutant struct {
	*memory.Backend
	mode string
	dir  string

	mu    sync.Mutex
	cache map[string]*backend.Subvol
}

func (m *mutant) Create(ctx context.Context, req *backend.CreateRequest) (*backend.Subvol, error) {
	switch m.mode {
	case "create-overwrites":
		sv, err := m.Backend.Create(ctx, req)
		if subvolkit.KindOf(err) == subvolkit.AlreadyExists {
			return m.Backend.Get(ctx, req.Name)
		}
		return sv, err
	case "unknown-param-leaks":
		if len(req.Parameters) > 0 {
			r := *req
			r.Parameters = nil
			_, _ = m.Backend.Create(ctx, &r)
			return nil, subvolkit.Errorf(subvolkit.InvalidArgument, "create", req.Name, "unknown parameter")
		}
	case "rounds-dishonestly":
		r := *req
		r.SizeBytes, _ = quota.RoundUp(req.SizeBytes, quota.MiB)
		sv, err := m.Backend.Create(ctx, &r)
		if sv != nil {
			sv.SizeBytes = req.SizeBytes
		}
		return sv, err
	case "gib-rounding":
		r := *req
		r.SizeBytes, _ = quota.RoundUp(req.SizeBytes, quota.GiB)
		return m.Backend.Create(ctx, &r)
	case "ignores-ctx":
		return m.Backend.Create(context.Background(), req)
	case "leaky-cancel":
		sv, err := m.Backend.Create(context.WithoutCancel(ctx), req)
		if ctx.Err() != nil {
			return nil, subvolkit.E(subvolkit.Canceled, "create", req.Name, ctx.Err())
		}
		return sv, err
	case "refuses-dotted-name":
		if strings.Contains(req.Name, ".") {
			return nil, subvolkit.Errorf(subvolkit.InvalidArgument, "", "", "no dots here")
		}
	case "labels-dropped":
		r := *req
		r.Labels = nil
		return m.Backend.Create(ctx, &r)
	case "orphan-on-timeout":
		// Slow enough for the suite to interrupt, and then leaves a
		// directory that neither Delete nor Create deals with.
		time.Sleep(5 * time.Millisecond)
		if err := ctx.Err(); err != nil {
			_ = os.Mkdir(filepath.Join(m.dir, req.Name), 0o755)
			return nil, subvolkit.E(subvolkit.Canceled, "create", req.Name, err)
		}
	}
	return m.Backend.Create(ctx, req)
}

func (m *mutant) Get(ctx context.Context, name string) (*backend.Subvol, error) {
	sv, err := m.Backend.Get(ctx, name)
	switch m.mode {
	case "notfound-as-unknown":
		if subvolkit.KindOf(err) == subvolkit.NotFound {
			return nil, subvolkit.Errorf(subvolkit.Unknown, "get", name, "cannot tell")
		}
	case "error-with-name":
		if subvolkit.KindOf(err) == subvolkit.NotFound {
			return nil, subvolkit.E(subvolkit.NotFound, "get", name, errors.New("no such subvolume"))
		}
	case "shared-state":
		if err == nil {
			m.mu.Lock()
			defer m.mu.Unlock()
			if c, ok := m.cache[name]; ok && c.ID == sv.ID {
				return c, nil
			}
			m.cache[name] = sv
		}
	}
	return sv, err
}

func (m *mutant) Delete(ctx context.Context, name string, opts *backend.DeleteOptions) error {
	if m.mode == "unimplemented" && opts != nil && opts.Policy != backend.DeletePolicyDelete {
		return subvolkit.Errorf(subvolkit.Unimplemented, "delete", name, "only DeletePolicyDelete")
	}
	err := m.Backend.Delete(ctx, name, opts)
	if m.mode == "delete-missing-nil" && subvolkit.KindOf(err) == subvolkit.NotFound {
		return nil
	}
	return err
}

func (m *mutant) List(ctx context.Context, opts *backend.ListOptions) (*backend.ListPage, error) {
	if m.mode == "ignores-max-results" && opts != nil {
		o := *opts
		o.MaxResults = 0
		opts = &o
	}
	if m.mode == "offset-token" && opts != nil && !opts.All {
		return m.offsetList(ctx, opts)
	}
	page, err := m.Backend.List(ctx, opts)
	if page != nil {
		switch m.mode {
		case "unsorted-list":
			slices.Reverse(page.Subvols)
		case "unimplemented": // no bulk usage either
			for _, sv := range page.Subvols {
				sv.Usage = nil
			}
		case "list-usage-stale":
			for _, sv := range page.Subvols {
				if sv.Usage != nil {
					sv.Usage.Used, sv.Usage.Available = 0, sv.Usage.Limit
				}
			}
		}
	}
	return page, err
}

// offsetList pages by position: a delete between pages shifts the rest.
func (m *mutant) offsetList(ctx context.Context, opts *backend.ListOptions) (*backend.ListPage, error) {
	o := *opts
	o.PageToken, o.MaxResults = "", 1<<20
	page, err := m.Backend.List(ctx, &o)
	if err != nil {
		return nil, err
	}
	start, _ := strconv.Atoi(opts.PageToken)
	start = min(start, len(page.Subvols))
	end := len(page.Subvols)
	if opts.MaxResults > 0 {
		end = min(end, start+opts.MaxResults)
	}
	out := &backend.ListPage{Subvols: page.Subvols[start:end]}
	if end < len(page.Subvols) {
		out.NextPageToken = strconv.Itoa(end)
	}
	return out, nil
}

func (m *mutant) Resize(ctx context.Context, name string, size int64) (*backend.Subvol, error) {
	switch m.mode {
	case "unimplemented":
		return nil, subvolkit.Errorf(subvolkit.Unimplemented, "", "", "not in this version")
	case "gib-rounding":
		size, _ = quota.RoundUp(size, quota.GiB)
	case "no-shrink":
		sv, err := m.Backend.Get(ctx, name)
		if err == nil && size < sv.SizeBytes {
			return nil, subvolkit.Errorf(subvolkit.Unimplemented, "", "", "cannot shrink")
		}
	case "resize-noop":
		sv, err := m.Backend.Get(ctx, name)
		if err != nil {
			return nil, err
		}
		sv.SizeBytes = size
		return sv, nil
	}
	return m.Backend.Resize(ctx, name, size)
}

func (m *mutant) Clone(ctx context.Context, req *backend.CloneRequest) (*backend.Subvol, error) {
	if m.mode == "unimplemented" || m.mode == "regressed-clone" {
		return nil, subvolkit.Errorf(subvolkit.Unimplemented, "", "", "not in this version")
	}
	sv, err := m.Backend.Clone(ctx, req)
	if m.mode == "clone-no-copy" && err == nil {
		dir := filepath.Join(m.dir, sv.Path)
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			_ = os.RemoveAll(filepath.Join(dir, e.Name()))
		}
	}
	return sv, err
}

func (m *mutant) Usage(ctx context.Context, name string) (*quota.Usage, error) {
	if m.mode == "unimplemented" {
		return nil, subvolkit.Errorf(subvolkit.Unimplemented, "", "", "not in this version")
	}
	u, err := m.Backend.Usage(ctx, name)
	if m.mode == "usage-stale" && u != nil {
		u.Used, u.Available = 0, u.Limit
	}
	return u, err
}

func (m *mutant) Close() error {
	if m.mode == "closed-still-works" {
		return nil
	}
	return m.Backend.Close()
}

func (m *mutant) As(i any) bool {
	switch m.mode {
	case "as-anything":
		return true
	case "as-nothing":
		return false
	}
	return m.Backend.As(i)
}

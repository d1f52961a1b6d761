package backend

import (
	"context"
	"fmt"
	"sort"
	"sync"

	"github.com/subvolkit/subvolkit"
)

// OpenFunc opens a backend from string parameters, the form StorageClass and
// CSI parameters take. Unknown or malformed parameters must be reported as
// InvalidArgument.
type OpenFunc func(ctx context.Context, params map[string]string) (Backend, error)

// Registry maps backend names to their OpenFunc. The zero value is empty and
// ready to use; a Registry is safe for concurrent use.
type Registry struct {
	mu    sync.RWMutex
	funcs map[string]OpenFunc
}

// Register adds a backend under name. It panics if name is empty, open is
// nil, or name is already registered (as database/sql.Register does): these
// are programming errors found at start-up.
func (r *Registry) Register(name string, open OpenFunc) {
	if name == "" {
		panic("backend: Register with an empty name")
	}
	if open == nil {
		panic("backend: Register " + name + " with a nil OpenFunc")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.funcs == nil {
		r.funcs = make(map[string]OpenFunc)
	}
	if _, dup := r.funcs[name]; dup {
		panic("backend: Register called twice for " + name)
	}
	r.funcs[name] = open
}

// Open opens the backend registered as name with params. An unregistered
// name is an error of kind InvalidArgument.
func (r *Registry) Open(ctx context.Context, name string, params map[string]string) (Backend, error) {
	r.mu.RLock()
	open := r.funcs[name]
	r.mu.RUnlock()
	if open == nil {
		return nil, subvolkit.E(subvolkit.InvalidArgument, "open backend", "",
			fmt.Errorf("backend %q not registered (forgotten import?)", name))
	}
	if params == nil {
		params = map[string]string{}
	}
	b, err := open(ctx, params)
	if err != nil {
		return nil, subvolkit.WithOp("open backend "+name, "", err)
	}
	return b, nil
}

// Names returns the registered names, sorted.
func (r *Registry) Names() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	names := make([]string, 0, len(r.funcs))
	for n := range r.funcs {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// defaultRegistry is the process-wide registry that backend packages add
// themselves to from init, as database/sql drivers do. It is the only
// package-level state in subvolkit.
var defaultRegistry Registry

// Register adds a backend to the default registry; see Registry.Register.
// Backend packages call it from init, so importing a backend package (for
// its side effect, if need be) makes it available to Open.
func Register(name string, open OpenFunc) { defaultRegistry.Register(name, open) }

// Open opens a backend from the default registry; see Registry.Open.
func Open(ctx context.Context, name string, params map[string]string) (Backend, error) {
	return defaultRegistry.Open(ctx, name, params)
}

// Names lists the backends in the default registry, sorted.
func Names() []string { return defaultRegistry.Names() }

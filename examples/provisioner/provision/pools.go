package provision

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"strings"
	"sync"

	metav1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/subvolkit/subvolkit"
	"github.com/subvolkit/subvolkit/subvol"

	_ "github.com/subvolkit/subvolkit/backend/cli"    // backend "cli"
	_ "github.com/subvolkit/subvolkit/backend/heketi" // backend "heketi"
)

// secretKey is the key of the heketi user's key in a Secret, as in the
// in-tree provisioner (whose Secrets had type kubernetes.io/glusterfs).
const secretKey = "key"

// pools opens one subvol.Pool per backend reference and keeps it: the cli
// backend mounts its volume once, the heketi backend keeps its job memory.
// A pool stays usable after its StorageClass and Secret are deleted, which
// is what lets the last PVs of a class be deleted.
type pools struct {
	client kubernetes.Interface
	extra  map[string]map[string]string // per-backend parameters from flags (glusterpath, …)
	obs    map[string]subvol.Observer
	logger *slog.Logger

	mu   sync.Mutex
	open map[string]*poolEntry
}

type poolEntry struct {
	once sync.Once
	pool *subvol.Pool
	err  error
}

func newPools(client kubernetes.Interface, extra map[string]map[string]string, obs map[string]subvol.Observer, logger *slog.Logger) *pools {
	return &pools{client: client, extra: extra, obs: obs, logger: logger, open: map[string]*poolEntry{}}
}

// get returns the pool for ref, opening it on first use. inlineKey is a
// StorageClass's restuserkey, if it had one.
func (ps *pools) get(ctx context.Context, ref backendRef, inlineKey string) (*subvol.Pool, error) {
	k := ref.key()
	ps.mu.Lock()
	e, ok := ps.open[k]
	if !ok {
		e = &poolEntry{}
		ps.open[k] = e
	}
	ps.mu.Unlock()
	e.once.Do(func() {
		e.pool, e.err = ps.openPool(ctx, ref, inlineKey)
	})
	if e.err != nil {
		// Let the next call try again (the volume may come back).
		ps.mu.Lock()
		if ps.open[k] == e {
			delete(ps.open, k)
		}
		ps.mu.Unlock()
		return nil, e.err
	}
	return e.pool, nil
}

func (ps *pools) openPool(ctx context.Context, ref backendRef, inlineKey string) (*subvol.Pool, error) {
	params := maps.Clone(ref.Params)
	maps.Copy(params, ps.extra[ref.Backend])
	if ref.Backend == BackendHeketi {
		key := inlineKey
		if ref.Secret != "" {
			var err error
			if key, err = ps.secret(ctx, ref.Secret); err != nil {
				return nil, err
			}
		}
		if key != "" {
			params["restuserkey"] = key
		}
	}
	p, err := subvol.Open(ctx, ref.Backend, params, &subvol.Options{Logger: ps.logger, Observer: ps.obs[ref.Backend]})
	if err != nil {
		return nil, fmt.Errorf("open the %s backend: %w", ref.Backend, err)
	}
	return p, nil
}

// secret reads the heketi key from "namespace/name".
func (ps *pools) secret(ctx context.Context, ref string) (string, error) {
	ns, name, _ := strings.Cut(ref, "/")
	s, err := ps.client.CoreV1().Secrets(ns).Get(ctx, name, apimeta.GetOptions{})
	if err != nil {
		if apierrors.IsNotFound(err) {
			return "", subvolkit.Errorf(subvolkit.FailedPrecondition, "", "", "secret %s not found", ref)
		}
		return "", subvolkit.E(subvolkit.Unavailable, "", "", fmt.Errorf("read secret %s: %w", ref, err))
	}
	if s.Type != "" && s.Type != "kubernetes.io/glusterfs" && s.Type != metav1.SecretTypeOpaque {
		return "", subvolkit.Errorf(subvolkit.InvalidArgument, "", "", "secret %s has type %q, want kubernetes.io/glusterfs", ref, s.Type)
	}
	v, ok := s.Data[secretKey]
	if !ok {
		return "", subvolkit.Errorf(subvolkit.InvalidArgument, "", "", "secret %s has no %q", ref, secretKey)
	}
	return string(v), nil
}

// close closes every open pool.
func (ps *pools) close() error {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	var errs []error
	for k, e := range ps.open {
		if e.pool != nil {
			errs = append(errs, e.pool.Close())
		}
		delete(ps.open, k)
	}
	return errors.Join(errs...)
}

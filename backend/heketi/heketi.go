package heketi

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	client "github.com/heketi/heketi/client/api/go-client"
	"github.com/heketi/heketi/pkg/glusterfs/api"

	"github.com/subvolkit/subvolkit"
	"github.com/subvolkit/subvolkit/backend"
	"github.com/subvolkit/subvolkit/internal/keyedlock"
	"github.com/subvolkit/subvolkit/internal/tlsutil"
	"github.com/subvolkit/subvolkit/naming"
	"github.com/subvolkit/subvolkit/quota"
)

// Defaults of Options.
const (
	DefaultRetryMaxAttempts      = 6 // as heketi's client
	DefaultRetryMinDelay         = time.Second
	DefaultRetryMaxDelay         = 30 * time.Second
	DefaultPollInterval          = 400 * time.Millisecond // heketi's client POLL_DELAY
	DefaultMaxConcurrentRequests = 32                     // heketi's client MAX_CONCURRENT_REQUESTS
	DefaultPageSize              = 500
)

const (
	// infoWorkers bounds the volume info requests a scan runs at once.
	infoWorkers = 8
	// rollbackTimeout bounds the removal of a half-made clone, which runs
	// even when the caller's context has ended.
	rollbackTimeout = 2 * time.Minute
)

// Options configure a heketi Backend. Only URL is required.
type Options struct {
	// URL is the heketi server's base URL, such as
	// "https://heketi.example:8080" (the resturl parameter).
	URL string
	// User and Key are the JWT issuer ("admin" or "user") and its secret
	// (restuser, restuserkey). With a Key and no User, User is "admin".
	// Note that heketi lets the "user" issuer reach the path /volumes
	// only: it cannot poll the jobs it starts, so use "admin".
	User, Key string

	// TLS configures the backend's own HTTPS client (tlscafile,
	// tlsinsecure).
	TLS TLS

	// Clusters are the heketi cluster ids new volumes may go to
	// (clusterid, a comma list). When set, the Backend also sees only the
	// volumes of these clusters. Empty means all clusters.
	Clusters []string
	// Durability is the volume type in the in-tree provisioner's syntax
	// (volumetype): "replicate:3" (the default), "replicate:N" with N up
	// to 3, "disperse:D:R" (2:1, 4:2, 8:3 or 8:4) or "none".
	Durability string
	// Gid, if not 0, is the group that owns each new volume's root, which
	// heketi then makes mode 2775 (gid).
	Gid int64
	// VolumeOptions are Gluster volume options, each "key value", set on
	// new volumes (volumeoptions, a comma list).
	VolumeOptions []string
	// SnapshotFactor, if not 0, enables snapshots with this thin pool
	// factor, 1 to 100 (snapfactor).
	SnapshotFactor float32

	// HTTPClient, if not nil, carries the requests (its CheckRedirect is
	// replaced: heketi's client must re-sign the JWT of the redirect that
	// ends a job). Configure TLS on its transport, not with the TLS
	// options above.
	HTTPClient *http.Client
	// RetryMaxAttempts is how many times a request answered 429 (heketi
	// busy) is retried; 0 means DefaultRetryMaxAttempts, negative means
	// never.
	RetryMaxAttempts int
	// RetryMinDelay and RetryMaxDelay bound the delay between retries,
	// which doubles from the minimum; 0 means the defaults.
	RetryMinDelay, RetryMaxDelay time.Duration
	// PollInterval is the wait between polls of a running job; 0 means
	// DefaultPollInterval. It is also how late, at most, a cancellation
	// is noticed between two polls.
	PollInterval time.Duration
	// MaxConcurrentRequests bounds the requests in flight; 0 means
	// DefaultMaxConcurrentRequests.
	MaxConcurrentRequests int
	// PageSize is List's page size when the caller gives none; 0 means
	// DefaultPageSize.
	PageSize int
	// Logger receives retries and rollbacks at debug and warning level;
	// nil is silent. Keys are never logged.
	Logger *slog.Logger

	// DeepDirPrefix is for heketi-compatible servers that carve one
	// Gluster volume into directories and report a volume's name as the
	// deep path "<volume>/<prefix><heketi name>" (deepdirprefix). The
	// Backend then reads the heketi name back without the prefix. Empty
	// means none; a real heketi never reports a deep path.
	DeepDirPrefix string
}

// TLS configures the backend's own HTTPS client. The zero value trusts the
// system's certificate authorities.
type TLS struct {
	// CAFile is a PEM file of the certificate authorities to trust
	// instead of the system's.
	CAFile string
	// InsecureSkipVerify turns off the server certificate's checks.
	InsecureSkipVerify bool
}

// Backend is the heketi backend: each subvolume is a heketi volume. Create
// one with Open. A Backend is safe for concurrent use by multiple
// goroutines.
type Backend struct {
	noSnapshots // see snapshot.go
	opts        Options
	durability  api.VolumeDurabilityInfo
	clusterSet  map[string]bool // nil: all clusters
	hc          *http.Client
	transport   *http.Transport // ours to close; nil with Options.HTTPClient
	sem         chan struct{}
	log         *slog.Logger
	// locks serializes operations on one name within a Backend: heketi
	// does not keep names unique across clusters nor check clone names, so
	// the look-up before a create must not race another create of it.
	locks keyedlock.Map

	mu     sync.Mutex
	closed bool
	// known is the last info seen of each volume id, without bricks. A
	// volume's name and cluster never change, so it is a safe index from
	// ids to names; sizes are read again when they matter.
	known map[string]*api.VolumeInfoResponse
	// clones maps the ids of the clones this Backend made to their
	// source's name: heketi does not record it.
	clones map[string]string
	// orphans maps names to the /queue URL of a job on them whose
	// outcome a call did not see (see jobs.go).
	orphans map[string]string
}

var (
	_ backend.Backend     = (*Backend)(nil)
	_ backend.Resizer     = (*Backend)(nil)
	_ backend.Cloner      = (*Backend)(nil)
	_ backend.UsageReader = (*Backend)(nil)
	_ backend.Pinger      = (*Backend)(nil)
	_ backend.Aser        = (*Backend)(nil)
)

func init() {
	backend.Register("heketi", func(ctx context.Context, params map[string]string) (backend.Backend, error) {
		o, err := OptionsFromParams(params)
		if err != nil {
			return nil, err
		}
		return Open(ctx, o)
	})
}

// Open returns a Backend for the heketi server opts describe. It checks
// the options and reads the CA files but does not contact the server: call
// Ping for that. Invalid options are errors of kind InvalidArgument.
func Open(ctx context.Context, opts *Options) (*Backend, error) {
	const op = "open heketi"
	if err := ctx.Err(); err != nil {
		return nil, subvolkit.E(subvolkit.Canceled, op, "", err)
	}
	if opts == nil {
		return nil, subvolkit.Errorf(subvolkit.InvalidArgument, op, "", "no options")
	}
	o := *opts
	invalid := func(format string, args ...any) (*Backend, error) {
		return nil, subvolkit.Errorf(subvolkit.InvalidArgument, op, "", format, args...)
	}
	u, err := url.Parse(strings.TrimSpace(o.URL))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return invalid("resturl %q is not an http or https URL", o.URL)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return invalid("resturl %q has a query or fragment", o.URL)
	}
	o.URL = strings.TrimRight(u.String(), "/")
	if o.User == "" && o.Key != "" {
		o.User = IssuerAdmin
	}
	if o.Key != "" && o.User != IssuerAdmin {
		// heketi lets "user" reach /volumes only: it can start a create
		// but not follow its job, and the volume would be left behind.
		return nil, subvolkit.Errorf(subvolkit.PermissionDenied, op, "",
			"heketi user %q cannot administer volumes (heketi lets only %q poll, expand and delete them)", o.User, IssuerAdmin)
	}
	d, err := parseVolumeType(o.Durability)
	if err != nil {
		return invalid("%v", err)
	}
	if err := checkGid(o.Gid); err != nil {
		return invalid("%v", err)
	}
	if err := checkSnapFactor(o.SnapshotFactor); err != nil {
		return invalid("%v", err)
	}
	if err := checkVolumeOptions(o.VolumeOptions); err != nil {
		return invalid("%v", err)
	}
	if err := checkClusters(o.Clusters); err != nil {
		return invalid("%v", err)
	}
	o.Clusters = slices.Clone(o.Clusters)
	o.VolumeOptions = slices.Clone(o.VolumeOptions)
	switch {
	case o.RetryMaxAttempts == 0:
		o.RetryMaxAttempts = DefaultRetryMaxAttempts
	case o.RetryMaxAttempts < 0:
		o.RetryMaxAttempts = 0
	}
	if o.RetryMinDelay <= 0 {
		o.RetryMinDelay = DefaultRetryMinDelay
	}
	if o.RetryMaxDelay <= 0 {
		o.RetryMaxDelay = DefaultRetryMaxDelay
	}
	o.RetryMaxDelay = max(o.RetryMaxDelay, o.RetryMinDelay)
	if o.PollInterval <= 0 {
		o.PollInterval = DefaultPollInterval
	}
	o.PollInterval = max(o.PollInterval, time.Millisecond)
	if o.MaxConcurrentRequests <= 0 {
		o.MaxConcurrentRequests = DefaultMaxConcurrentRequests
	}
	if o.PageSize <= 0 {
		o.PageSize = DefaultPageSize
	}

	b := &Backend{
		noSnapshots: noSnapshotsReason,
		opts:        o,
		durability:  d,
		sem:         make(chan struct{}, o.MaxConcurrentRequests),
		log:         o.Logger,
		known:       map[string]*api.VolumeInfoResponse{},
		clones:      map[string]string{},
		orphans:     map[string]string{},
	}
	if b.log == nil {
		b.log = slog.New(slog.DiscardHandler)
	}
	if len(o.Clusters) > 0 {
		b.clusterSet = map[string]bool{}
		for _, c := range o.Clusters {
			b.clusterSet[c] = true
		}
	}
	if o.HTTPClient != nil {
		if o.TLS != (TLS{}) {
			return invalid("set TLS options on HTTPClient's transport, not with TLS")
		}
		b.hc = o.HTTPClient
		return b, nil
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = o.MaxConcurrentRequests
	cfg, err := tlsutil.Config(o.TLS.CAFile, o.TLS.InsecureSkipVerify)
	if err != nil {
		return invalid("%v", err)
	}
	if cfg != nil {
		t.TLSClientConfig = cfg
	}
	b.transport = t
	b.hc = &http.Client{Transport: t}
	return b, nil
}

// check validates what every operation needs: an open backend, a live
// context and, for named operations, a name heketi accepts.
func (b *Backend) check(ctx context.Context, op, name string, named bool) error {
	b.mu.Lock()
	closed := b.closed
	b.mu.Unlock()
	if closed {
		return subvolkit.Errorf(subvolkit.FailedPrecondition, "", "", "backend is closed")
	}
	if err := ctx.Err(); err != nil {
		return subvolkit.E(subvolkit.Canceled, "", "", err)
	}
	if named {
		if err := naming.ValidateSubvolName(name); err != nil {
			return subvolkit.E(subvolkit.InvalidArgument, "", "", err)
		}
	}
	return nil
}

func (b *Backend) inClusters(cluster string) bool {
	return b.clusterSet == nil || b.clusterSet[cluster]
}

func (b *Backend) remember(info *api.VolumeInfoResponse) {
	c := *info
	c.Bricks = nil
	b.mu.Lock()
	b.known[info.Id] = &c
	b.mu.Unlock()
}

func (b *Backend) forget(id string) {
	b.mu.Lock()
	delete(b.known, id)
	delete(b.clones, id)
	b.mu.Unlock()
}

func (b *Backend) cached(id string) *api.VolumeInfoResponse {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.known[id]
}

// scanResult is what one listing of the server found.
type scanResult struct {
	ids     []string                           // every listed id
	fresh   map[string]*api.VolumeInfoResponse // infos read during the scan
	unknown []string                           // listed ids whose info could not be read
}

// scan lists the server's volumes and reads the info of the ids it has not
// seen before, to learn their names.
func (b *Backend) scan(ctx context.Context, op, name string) (*scanResult, error) {
	var list *api.VolumeListResponse
	err := b.call(ctx, op, name, func(c *client.Client) (err error) {
		list, err = c.VolumeList()
		return err
	})
	if err != nil {
		return nil, err
	}
	res := &scanResult{ids: list.Volumes, fresh: map[string]*api.VolumeInfoResponse{}}
	listed := make(map[string]bool, len(list.Volumes))
	var missing []string
	b.mu.Lock()
	for _, id := range list.Volumes {
		listed[id] = true
		if b.known[id] == nil {
			missing = append(missing, id)
		}
	}
	for id := range b.known {
		if !listed[id] {
			delete(b.known, id)
			delete(b.clones, id)
		}
	}
	b.mu.Unlock()
	if len(missing) == 0 {
		return res, nil
	}

	// Read the missing infos with a few workers; the first real error
	// stops the others.
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu       sync.Mutex
		firstErr error
		wg       sync.WaitGroup
		next     = make(chan string)
	)
	for range min(infoWorkers, len(missing)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for id := range next {
				var info *api.VolumeInfoResponse
				err := b.call(wctx, op, name, func(c *client.Client) (err error) {
					info, err = c.VolumeInfo(id)
					return err
				})
				mu.Lock()
				switch {
				case err == nil:
					b.remember(info)
					res.fresh[id] = info
				case subvolkit.KindOf(err) == subvolkit.NotFound:
					// Listed but hidden: heketi hides a volume
					// while it is the source of a clone.
					res.unknown = append(res.unknown, id)
				case firstErr == nil:
					firstErr = err
					cancel()
				}
				mu.Unlock()
			}
		}()
	}
feed:
	for _, id := range missing {
		select {
		case next <- id:
		case <-wctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	if err := ctx.Err(); err != nil {
		return nil, subvolkit.E(subvolkit.Canceled, "", "", err)
	}
	return res, nil
}

// resolve finds the id of the volume named name in the backend's clusters,
// and its info when the scan read it.
func (b *Backend) resolve(ctx context.Context, op, name string) (string, *api.VolumeInfoResponse, error) {
	res, err := b.scan(ctx, op, name)
	if err != nil {
		return "", nil, err
	}
	var matches []string
	hname := heketiName(name)
	b.mu.Lock()
	for _, id := range res.ids {
		if k := b.known[id]; k != nil && b.reportedHName(k.Name) == hname && b.inClusters(k.Cluster) {
			matches = append(matches, id)
		}
	}
	b.mu.Unlock()
	switch len(matches) {
	case 0:
		if len(res.unknown) > 0 {
			return "", nil, subvolkit.Errorf(subvolkit.Unavailable, "", "",
				"cannot tell whether it exists: heketi hides volume(s) %s while an operation runs on them; retry",
				strings.Join(res.unknown, ", "))
		}
		return "", nil, subvolkit.Errorf(subvolkit.NotFound, "", "", "no heketi volume has this name")
	case 1:
		return matches[0], res.fresh[matches[0]], nil
	}
	sort.Strings(matches)
	return "", nil, subvolkit.Errorf(subvolkit.FailedPrecondition, "", "",
		"%d heketi volumes have this name (ids %s): heketi keeps names unique only within a cluster; restrict the backend with clusterid",
		len(matches), strings.Join(matches, ", "))
}

// volumeInfo reads a volume's info. heketi answers "Id not found" both for
// a deleted volume and for one it hides while an operation runs on it (the
// source of a clone): a volume still listed is not reported missing.
func (b *Backend) volumeInfo(ctx context.Context, op, name, id string) (*api.VolumeInfoResponse, error) {
	var info *api.VolumeInfoResponse
	err := b.call(ctx, op, name, func(c *client.Client) (err error) {
		info, err = c.VolumeInfo(id)
		return err
	})
	if err == nil {
		b.remember(info)
		return info, nil
	}
	if subvolkit.KindOf(err) != subvolkit.NotFound {
		return nil, err
	}
	var list *api.VolumeListResponse
	if lerr := b.call(ctx, op, name, func(c *client.Client) (err error) {
		list, err = c.VolumeList()
		return err
	}); lerr != nil {
		return nil, lerr
	}
	if !slices.Contains(list.Volumes, id) {
		b.forget(id)
		return nil, err
	}
	if k := b.cached(id); k != nil {
		return k, nil
	}
	return nil, subvolkit.Errorf(subvolkit.Unavailable, "", "",
		"heketi hides volume %s while an operation runs on it; retry", id)
}

// get returns the id and current info of the named volume.
func (b *Backend) get(ctx context.Context, op, name string) (string, *api.VolumeInfoResponse, error) {
	id, info, err := b.resolve(ctx, op, name)
	if err != nil {
		return "", nil, err
	}
	if info == nil {
		if info, err = b.volumeInfo(ctx, op, name, id); err != nil {
			return "", nil, err
		}
	}
	return id, info, nil
}

// subvol describes a heketi volume as a Subvol.
func (b *Backend) subvol(info *api.VolumeInfoResponse) *backend.Subvol {
	volume, path, hname := splitName(info.Name, b.opts.DeepDirPrefix)
	sv := &backend.Subvol{
		Name:         subvolName(hname),
		ID:           info.Id,
		SizeBytes:    int64(info.Size) * quota.GiB,
		Servers:      servers(info),
		Volume:       volume,
		Path:         path,
		MountOptions: mountOptions(info),
		UID:          0, // heketi never changes the owner: root
		GID:          int(info.Gid),
	}
	if info.Gid != 0 {
		sv.Mode = heketiGidMode
	}
	b.mu.Lock()
	sv.Source = b.clones[info.Id]
	b.mu.Unlock()
	return sv
}

// reportedHName is the heketi name of a volume whose info reports name.
func (b *Backend) reportedHName(name string) string {
	_, _, h := splitName(name, b.opts.DeepDirPrefix)
	return h
}

// Capabilities reports that heketi sizes volumes in whole GiB.
func (b *Backend) Capabilities() backend.Capabilities {
	return backend.Capabilities{SizeGranularity: quota.GiB}
}

// toGiB returns n bytes in whole GiB, rounded up, as heketi sizes volumes:
// 1 byte is 1 GiB, 1 GiB + 1 byte is 2. n <= 0 is InvalidArgument.
func toGiB(n int64) (int, error) {
	if n <= 0 {
		return 0, subvolkit.Errorf(subvolkit.InvalidArgument, "", "", "size %d is not positive", n)
	}
	g, err := quota.RoundUp(n, quota.GiB)
	if err != nil {
		return 0, err
	}
	if g/quota.GiB > math.MaxInt {
		return 0, subvolkit.Errorf(subvolkit.InvalidArgument, "", "", "%d GiB does not fit in an int", g/quota.GiB)
	}
	return int(g / quota.GiB), nil
}

// servers returns the volume's volfile servers: the host of its mount
// device ("host:volume") first, then the other hosts heketi lists.
func servers(info *api.VolumeInfoResponse) []string {
	var out []string
	if dev := info.Mount.GlusterFS.MountPoint; dev != "" {
		if i := strings.LastIndex(dev, ":"); i > 0 {
			out = append(out, dev[:i])
		}
	}
	for _, h := range info.Mount.GlusterFS.Hosts {
		if h != "" && !slices.Contains(out, h) {
			out = append(out, h)
		}
	}
	return out
}

// mountOptions copies heketi's mount options (backup-volfile-servers),
// leaving out empty values.
func mountOptions(info *api.VolumeInfoResponse) map[string]string {
	var out map[string]string
	for k, v := range info.Mount.GlusterFS.Options {
		if v == "" {
			continue
		}
		if out == nil {
			out = map[string]string{}
		}
		out[k] = v
	}
	return out
}

// Create creates a heketi volume named req.Name of req.SizeBytes rounded up
// to whole GiB. heketi refuses a name already used in the same cluster
// only, so Create first looks the name up in all the backend's clusters
// (while holding a per-name lock): an existing volume is AlreadyExists.
// Labels are not stored: heketi volumes have none.
func (b *Backend) Create(ctx context.Context, req *backend.CreateRequest) (*backend.Subvol, error) {
	const op = "create"
	if err := b.check(ctx, op, req.Name, true); err != nil {
		return nil, err
	}
	gib, err := toGiB(req.SizeBytes)
	if err != nil {
		return nil, subvolkit.E(subvolkit.InvalidArgument, "", "", err)
	}
	set, err := b.settingsFor(req.Parameters, req.Owner)
	if err != nil {
		return nil, subvolkit.E(subvolkit.InvalidArgument, "", "", err)
	}
	unlock, err := b.locks.Lock(ctx, req.Name)
	if err != nil {
		return nil, subvolkit.E(subvolkit.Canceled, "", "", err)
	}
	defer unlock()
	if err := b.settle(ctx, op, req.Name); err != nil {
		return nil, err
	}

	id, _, err := b.resolve(ctx, op, req.Name)
	if err == nil {
		return nil, subvolkit.Errorf(subvolkit.AlreadyExists, "", "", "heketi volume %s has this name", id)
	}
	if subvolkit.KindOf(err) != subvolkit.NotFound {
		return nil, err
	}
	var info *api.VolumeInfoResponse
	orphan, err := b.callJob(ctx, op, req.Name, func(c *client.Client) (err error) {
		info, err = c.VolumeCreate(set.request(heketiName(req.Name), gib))
		return err
	})
	if err != nil {
		b.noteOrphan(req.Name, orphan)
		return nil, err
	}
	b.remember(info)
	return b.subvol(info), nil
}

// Get returns the named subvolume.
func (b *Backend) Get(ctx context.Context, name string) (*backend.Subvol, error) {
	const op = "get"
	if err := b.check(ctx, op, name, true); err != nil {
		return nil, err
	}
	if err := b.settle(ctx, op, name); err != nil {
		return nil, err
	}
	_, info, err := b.get(ctx, op, name)
	if err != nil {
		return nil, err
	}
	return b.subvol(info), nil
}

// Delete deletes the named heketi volume and its data. heketi cannot keep
// a volume's data while forgetting it, so DeletePolicyRetain and
// DeletePolicyArchive are Unimplemented.
func (b *Backend) Delete(ctx context.Context, name string, opts *backend.DeleteOptions) error {
	const op = "delete"
	if err := b.check(ctx, op, name, true); err != nil {
		return err
	}
	if opts != nil && opts.Policy != backend.DeletePolicyDelete {
		return subvolkit.Errorf(subvolkit.Unimplemented, "", "",
			"heketi can only delete a volume with its data, not %s it", opts.Policy)
	}
	unlock, err := b.locks.Lock(ctx, name)
	if err != nil {
		return subvolkit.E(subvolkit.Canceled, "", "", err)
	}
	defer unlock()
	if err := b.settle(ctx, op, name); err != nil {
		return err
	}
	id, _, err := b.resolve(ctx, op, name)
	if err != nil {
		return err
	}
	orphan, err := b.callJob(ctx, op, name, func(c *client.Client) error { return c.VolumeDelete(id) })
	if err == nil || subvolkit.KindOf(err) == subvolkit.NotFound {
		b.forget(id)
	}
	b.noteOrphan(name, orphan)
	return err
}

// List returns the volumes of the backend's clusters, sorted by name (then
// id), a page at a time. The page token is the last name and id returned.
func (b *Backend) List(ctx context.Context, opts *backend.ListOptions) (*backend.ListPage, error) {
	const op = "list"
	if err := b.check(ctx, op, "", false); err != nil {
		return nil, err
	}
	if opts == nil {
		opts = &backend.ListOptions{}
	}
	if opts.MaxResults < 0 {
		return nil, subvolkit.Errorf(subvolkit.InvalidArgument, "", "", "MaxResults %d is negative", opts.MaxResults)
	}
	var afterName, afterID string
	if opts.PageToken != "" {
		var ok bool
		afterName, afterID, ok = strings.Cut(opts.PageToken, "/")
		if !ok || afterName == "" || !isHeketiID(afterID) {
			return nil, subvolkit.Errorf(subvolkit.InvalidArgument, "", "", "malformed page token %q", opts.PageToken)
		}
	}
	res, err := b.scan(ctx, op, "")
	if err != nil {
		return nil, err
	}
	if len(res.unknown) > 0 {
		return nil, subvolkit.Errorf(subvolkit.Unavailable, "", "",
			"heketi hides volume(s) %s while an operation runs on them; retry", strings.Join(res.unknown, ", "))
	}
	type entry struct{ name, id string }
	var entries []entry
	b.mu.Lock()
	for _, id := range res.ids {
		if k := b.known[id]; k != nil && b.inClusters(k.Cluster) {
			entries = append(entries, entry{subvolName(b.reportedHName(k.Name)), id})
		}
	}
	b.mu.Unlock()
	sort.Slice(entries, func(i, j int) bool {
		if entries[i].name != entries[j].name {
			return entries[i].name < entries[j].name
		}
		return entries[i].id < entries[j].id
	})
	start := 0
	if opts.PageToken != "" {
		start = sort.Search(len(entries), func(i int) bool {
			e := entries[i]
			return e.name > afterName || (e.name == afterName && e.id > afterID)
		})
	}
	size := opts.MaxResults
	if size == 0 {
		size = b.opts.PageSize
	}
	end := min(start+size, len(entries))
	page := &backend.ListPage{Subvols: []*backend.Subvol{}}
	for _, e := range entries[start:end] {
		info := res.fresh[e.id]
		if info == nil {
			info, err = b.volumeInfo(ctx, op, e.name, e.id)
			if subvolkit.KindOf(err) == subvolkit.NotFound {
				continue // deleted since the listing
			}
			if err != nil {
				return nil, err
			}
		}
		page.Subvols = append(page.Subvols, b.subvol(info))
	}
	if end < len(entries) {
		last := entries[end-1]
		page.NextPageToken = last.name + "/" + last.id
	}
	return page, nil
}

// Resize sets the volume's size to sizeBytes rounded up to whole GiB.
// heketi's expand takes the GiB to add, so Resize reads the current size
// and sends the difference; the same size changes nothing, and a smaller
// one is Unimplemented: heketi cannot shrink a volume.
func (b *Backend) Resize(ctx context.Context, name string, sizeBytes int64) (*backend.Subvol, error) {
	const op = "resize"
	if err := b.check(ctx, op, name, true); err != nil {
		return nil, err
	}
	gib, err := toGiB(sizeBytes)
	if err != nil {
		return nil, subvolkit.E(subvolkit.InvalidArgument, "", "", err)
	}
	unlock, err := b.locks.Lock(ctx, name)
	if err != nil {
		return nil, subvolkit.E(subvolkit.Canceled, "", "", err)
	}
	defer unlock()
	if err := b.settle(ctx, op, name); err != nil {
		return nil, err
	}
	id, info, err := b.get(ctx, op, name)
	if err != nil {
		return nil, err
	}
	switch {
	case gib == info.Size:
		return b.subvol(info), nil
	case gib < info.Size:
		return nil, subvolkit.Errorf(subvolkit.Unimplemented, "", "",
			"heketi cannot shrink a volume: it is %d GiB, %d GiB was asked; nothing was changed", info.Size, gib)
	}
	delta := gib - info.Size
	orphan, err := b.callJob(ctx, op, name, func(c *client.Client) (err error) {
		info, err = c.VolumeExpand(id, &api.VolumeExpandRequest{Size: delta})
		return err
	})
	if err != nil {
		b.noteOrphan(name, orphan)
		return nil, err
	}
	b.remember(info)
	return b.subvol(info), nil
}

// Clone makes req.Name a heketi clone (an LVM snapshot clone) of
// req.Source. A heketi clone has its source's size and settings; a larger
// req.SizeBytes expands it afterwards (and removes it again if that
// fails). heketi does not check clone names at all, so Clone looks the
// name up first. Parameters cannot be given: a clone inherits them.
func (b *Backend) Clone(ctx context.Context, req *backend.CloneRequest) (*backend.Subvol, error) {
	const op = "clone"
	name := req.Name
	if err := b.check(ctx, op, name, true); err != nil {
		return nil, err
	}
	if err := naming.ValidateSubvolName(req.Source); err != nil {
		return nil, subvolkit.E(subvolkit.InvalidArgument, "", "", fmt.Errorf("source: %w", err))
	}
	if req.Source == name {
		return nil, subvolkit.Errorf(subvolkit.InvalidArgument, "", "", "source and clone are the same")
	}
	if req.SizeBytes < 0 {
		return nil, subvolkit.Errorf(subvolkit.InvalidArgument, "", "", "size %d is negative", req.SizeBytes)
	}
	for k := range req.Parameters {
		if !openParams[k] {
			return nil, subvolkit.Errorf(subvolkit.InvalidArgument, "", "", "unknown parameter %q", k)
		}
		return nil, subvolkit.Errorf(subvolkit.InvalidArgument, "", "",
			"parameter %q cannot be set on a clone: a heketi clone inherits its source's settings", k)
	}
	unlock, err := keyedlock.Lock2(ctx, &b.locks, req.Source, name)
	if err != nil {
		return nil, subvolkit.E(subvolkit.Canceled, "", "", err)
	}
	defer unlock()
	if err := b.settle(ctx, op, name); err != nil {
		return nil, err
	}
	if err := b.settle(ctx, op, req.Source); err != nil {
		return nil, err
	}

	id, _, err := b.resolve(ctx, op, name)
	if err == nil {
		return nil, subvolkit.Errorf(subvolkit.AlreadyExists, "", "", "heketi volume %s has this name", id)
	}
	if subvolkit.KindOf(err) != subvolkit.NotFound {
		return nil, err
	}
	srcID, src, err := b.get(ctx, op, req.Source)
	if err != nil {
		return nil, subvolkit.E(subvolkit.KindOf(err), "", "", fmt.Errorf("source %q: %w", req.Source, err))
	}
	want := src.Size
	if req.SizeBytes > 0 {
		if srcBytes := int64(src.Size) * quota.GiB; req.SizeBytes < srcBytes {
			return nil, subvolkit.Errorf(subvolkit.InvalidArgument, "", "",
				"%s is smaller than the source %q (%d GiB)", quota.HumanSize(req.SizeBytes), req.Source, src.Size)
		}
		g, err := toGiB(req.SizeBytes)
		if err != nil {
			return nil, subvolkit.E(subvolkit.InvalidArgument, "", "", err)
		}
		want = g
	}
	if req.Owner != nil {
		gid, err := ownerGid(req.Owner, src.Gid)
		if err == nil && gid != src.Gid {
			err = fmt.Errorf("a heketi clone keeps its source's gid %d, %d was asked", src.Gid, gid)
		}
		if err != nil {
			return nil, subvolkit.E(subvolkit.InvalidArgument, "", "", err)
		}
	}

	var info *api.VolumeInfoResponse
	orphan, err := b.callJob(ctx, op, name, func(c *client.Client) (err error) {
		info, err = c.VolumeClone(srcID, &api.VolumeCloneRequest{Name: heketiName(name)})
		return err
	})
	if err != nil {
		b.noteOrphan(name, orphan)
		return nil, err
	}
	b.remember(info)
	b.mu.Lock()
	b.clones[info.Id] = req.Source
	b.mu.Unlock()
	if want > info.Size {
		cloneID, delta := info.Id, want-info.Size
		var grown *api.VolumeInfoResponse
		orphan, err := b.callJob(ctx, op, name, func(c *client.Client) (err error) {
			grown, err = c.VolumeExpand(cloneID, &api.VolumeExpandRequest{Size: delta})
			return err
		})
		if err != nil {
			return nil, b.rollbackClone(ctx, op, name, cloneID, want, orphan, err)
		}
		info = grown
		b.remember(info)
	}
	return b.subvol(info), nil
}

// rollbackClone removes a clone that could not be expanded, even if ctx has
// ended (within rollbackTimeout), so that a retry starts from nothing.
func (b *Backend) rollbackClone(ctx context.Context, op, name, id string, want int, expandJob string, cause error) error {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), rollbackTimeout)
	defer cancel()
	err := fmt.Errorf("expanding the clone to %d GiB: %w", want, cause)
	// heketi refuses to delete a volume with a job pending: let an
	// interrupted expand end first.
	b.noteOrphan(name, expandJob)
	if serr := b.settle(rctx, op, name); serr != nil {
		return subvolkit.E(subvolkit.KindOf(cause), "", "", errors.Join(err, serr))
	}
	orphan, derr := b.callJob(rctx, op, name, func(c *client.Client) error { return c.VolumeDelete(id) })
	b.noteOrphan(name, orphan)
	if derr == nil || subvolkit.KindOf(derr) == subvolkit.NotFound {
		b.forget(id)
	} else {
		b.log.WarnContext(ctx, "heketi: could not remove a half-made clone", "name", name, "id", id, "err", derr)
		err = errors.Join(err, fmt.Errorf("removing the clone %s: %w", id, derr))
	}
	return subvolkit.E(subvolkit.KindOf(cause), "", "", err)
}

// Usage is Unimplemented: heketi's API reports sizes, not usage, and sets
// no Gluster quota on its volumes. Mount the volume and statfs it instead.
func (b *Backend) Usage(ctx context.Context, name string) (*quota.Usage, error) {
	const op = "usage"
	if err := b.check(ctx, op, name, true); err != nil {
		return nil, err
	}
	return nil, subvolkit.Errorf(subvolkit.Unimplemented, "", "",
		"heketi reports no usage (its API has sizes only and it sets no Gluster quota); statfs a mount of the volume instead")
}

// Ping checks that the server answers (GET /hello) and that the
// credentials are accepted (GET /volumes, which /hello does not check).
func (b *Backend) Ping(ctx context.Context) error {
	const op = "ping"
	if err := b.check(ctx, op, "", false); err != nil {
		return err
	}
	if err := b.call(ctx, op, "", func(c *client.Client) error { return c.Hello() }); err != nil {
		return err
	}
	return b.call(ctx, op, "", func(c *client.Client) error {
		_, err := c.VolumeList()
		return err
	})
}

// As sets *i to the backend's heketi client when i is a **client.Client
// (github.com/heketi/heketi/client/api/go-client): a new client with the
// backend's URL, credentials, HTTP client and poll interval, and heketi's
// own 429 retry off. Its calls take no context.
func (b *Backend) As(i any) bool {
	p, ok := i.(**client.Client)
	if !ok || p == nil {
		return false
	}
	c := client.NewClientWithOptions(b.opts.URL, b.opts.User, b.opts.Key, b.clientOptions())
	c.SetClientFunc(func(_ *tls.Config, check client.CheckRedirectFunc) (client.HttpPerformer, error) {
		hc := *b.hc
		hc.CheckRedirect = check
		return &hc, nil
	})
	*p = c
	return true
}

// Close releases idle connections. Later calls fail with kind
// FailedPrecondition; Close itself may be called again.
func (b *Backend) Close() error {
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
	if b.transport != nil {
		b.transport.CloseIdleConnections()
	}
	return nil
}

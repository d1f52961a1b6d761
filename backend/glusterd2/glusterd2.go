package glusterd2

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gluster/glusterd2/pkg/api"
	"github.com/gluster/glusterd2/pkg/restclient"
	smartvolapi "github.com/gluster/glusterd2/plugins/smartvol/api"

	"github.com/subvolkit/subvolkit"
	"github.com/subvolkit/subvolkit/backend"
	"github.com/subvolkit/subvolkit/internal/keyedlock"
	"github.com/subvolkit/subvolkit/internal/tlsutil"
	"github.com/subvolkit/subvolkit/naming"
	"github.com/subvolkit/subvolkit/quota"
)

// Defaults of Options.
const (
	DefaultUser             = "glustercli"
	DefaultTimeout          = 2 * time.Minute
	DefaultRetryMaxAttempts = 4
	DefaultRetryMinDelay    = 500 * time.Millisecond
	DefaultRetryMaxDelay    = 8 * time.Second
	// DefaultRollbackTimeout bounds the clean-up of a failed Create.
	DefaultRollbackTimeout = time.Minute
	// DefaultLostCreateGrace is how long a Create whose answer was lost
	// watches for the volume the server may still be making.
	DefaultLostCreateGrace = 2 * time.Second
	// DefaultPageSize is List's page size when ListOptions.MaxResults is 0.
	DefaultPageSize = 100
)

// MinSizeBytes is the smallest smart volume glusterd2 v4.1.1 makes (10 MiB);
// smaller requests are rounded up to it.
const MinSizeBytes = 10 * quota.MiB

// Metadata keys the backend keeps in a volume's glusterd2 metadata. A
// volume without MetaSize was not made by this backend.
const (
	MetaSize    = "subvolkit.size"    // size in bytes, decimal
	MetaName    = "subvolkit.name"    // the subvolume's name
	MetaCreated = "subvolkit.created" // creation time, RFC 3339, UTC
	MetaLabels  = "subvolkit.labels"  // labels as a JSON object
)

// MaxVolumeName is the longest glusterd2 volume name the backend uses.
// glusterd2 v4.1.1 names a smart volume's thin pool and logical volumes
// after it ("brick-<volume>-s0-b0"), and LVM limits those names to 127
// bytes with room for its own suffixes ("_tmeta").
const MaxVolumeName = 100

// maxMetadata is glusterd2's limit on a volume's metadata (keys and values).
const maxMetadata = 4096

// volNameRE is glusterd2's volume name pattern (volume.IsValidName).
var volNameRE = regexp.MustCompile(`^[a-zA-Z0-9_-]+$`)

// Options configure a glusterd2 backend. Only URL is required.
type Options struct {
	// URL is glusterd2's REST endpoint, such as "http://gd2.example:24007".
	URL string
	// User is the JWT issuer; glusterd2 v4.1.1 accepts only "glustercli",
	// the default.
	User string
	// Secret is the shared secret (the content of glusterd2's
	// <workdir>/auth file). Empty sends no Authorization header, for a
	// glusterd2 with restauth off.
	Secret string
	// TLS configures the backend's own HTTP client for an https URL
	// (tlscafile, tlsinsecure).
	TLS TLS
	// ReplicaCount is the replica count of new volumes: 0 or 1 for no
	// replication (glusterd2 makes one brick), 2 or 3.
	ReplicaCount int
	// DisperseCount makes new volumes erasure-coded with this many bricks
	// (at least 3); it excludes ReplicaCount.
	DisperseCount int
	// DisperseRedundancy is the disperse redundancy count; 0 lets
	// glusterd2 choose. It needs DisperseCount and must be less than half
	// of it.
	DisperseRedundancy int
	// HTTPClient sends the requests. Nil means a client of its own built
	// from TLS, which must be unset when HTTPClient is set.
	HTTPClient *http.Client
	// Timeout bounds each attempt of a request; 0 means DefaultTimeout and
	// a negative value no bound (the context's deadline still applies).
	Timeout time.Duration
	// RetryMaxAttempts is how many times a request that may be retried
	// (see the package documentation) is sent again; 0 means
	// DefaultRetryMaxAttempts and a negative value never.
	RetryMaxAttempts int
	// RetryMinDelay and RetryMaxDelay bound the backoff between attempts;
	// 0 means DefaultRetryMinDelay and DefaultRetryMaxDelay.
	RetryMinDelay, RetryMaxDelay time.Duration
	// RollbackTimeout bounds how long a failed Create spends removing
	// what it made. The clean-up runs even when the Create's context is
	// done (so a cancelled Create can return up to this much later), and
	// before Create returns, so that a retry finds nothing half-made;
	// 0 means DefaultRollbackTimeout.
	RollbackTimeout time.Duration
	// LostCreateGrace is how long a Create whose request was sent but
	// whose answer was lost (a broken connection, a cancelled context)
	// watches for the volume to appear, to remove it: glusterd2 finishes
	// a transaction even when its client has gone. Set it above the time
	// your glusterd2 takes to create a smart volume; 0 means
	// DefaultLostCreateGrace. The wait ends early when the volume shows up.
	LostCreateGrace time.Duration
	// Logger receives retries (Debug) and failed rollbacks (Warn); nil
	// discards them.
	Logger *slog.Logger
}

// layout is how new volumes are laid out.
type layout struct {
	replica, disperse, redundancy int
}

func (l layout) validate() error {
	switch {
	case l.replica < 0 || l.replica > 3:
		return fmt.Errorf("replica count %d is not 0 to 3", l.replica)
	case l.disperse < 0 || l.redundancy < 0:
		return fmt.Errorf("disperse count %d and redundancy %d must not be negative", l.disperse, l.redundancy)
	case l.disperse > 0 && l.replica > 1:
		return fmt.Errorf("replica count %d and disperse count %d exclude each other", l.replica, l.disperse)
	case l.redundancy > 0 && l.disperse == 0:
		return fmt.Errorf("disperse redundancy %d needs a disperse count", l.redundancy)
	case l.disperse > 0 && l.disperse < 3:
		return fmt.Errorf("disperse count %d is less than 3", l.disperse)
	case l.redundancy > 0 && 2*l.redundancy >= l.disperse:
		return fmt.Errorf("disperse redundancy %d is not less than half of the disperse count %d", l.redundancy, l.disperse)
	}
	return nil
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

// Backend is a glusterd2 backend: each subvolume is a glusterd2 smart
// volume. It is safe for concurrent use by multiple goroutines.
type Backend struct {
	noSnapshots // see snapshot.go
	c           *client
	opts        Options // as given, with defaults filled in
	layout      layout
	ownHC       bool
	closed      atomic.Bool
	// locks serializes Create and Delete per name within a Backend.
	// glusterd2 v4.1.1 checks that a smart volume's name is free before it
	// takes its transaction lock, and the loser of two concurrent creates
	// of one name undoes its brick preparation, which unmounts and removes
	// logical volumes named after the volume: the winner's bricks. Calls
	// from one process therefore never race; processes sharing a glusterd2
	// must not create the same name at the same time.
	locks keyedlock.Map
}

var (
	_ backend.Backend     = (*Backend)(nil)
	_ backend.Resizer     = (*Backend)(nil)
	_ backend.Cloner      = (*Backend)(nil)
	_ backend.UsageReader = (*Backend)(nil)
	_ backend.Pinger      = (*Backend)(nil)
	_ backend.Aser        = (*Backend)(nil)
)

// Open returns a backend for the glusterd2 at opts.URL. It checks the
// options (an error of kind InvalidArgument) and reads TLS.CAFile, but does not
// contact the server: call Ping for that.
func Open(ctx context.Context, opts *Options) (*Backend, error) {
	const op = "open glusterd2 backend"
	if err := ctx.Err(); err != nil {
		return nil, subvolkit.E(subvolkit.Canceled, op, "", err)
	}
	if opts == nil {
		return nil, subvolkit.Errorf(subvolkit.InvalidArgument, op, "", "no options: URL is required")
	}
	o := *opts
	invalid := func(format string, args ...any) error {
		return subvolkit.Errorf(subvolkit.InvalidArgument, op, "", format, args...)
	}
	u, err := url.Parse(o.URL)
	if err != nil {
		return nil, subvolkit.E(subvolkit.InvalidArgument, op, "", fmt.Errorf("URL: %w", err))
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return nil, invalid("URL %q is not an http(s)://host[:port] URL", o.URL)
	}
	if o.User == "" {
		o.User = DefaultUser
	}
	l := layout{o.ReplicaCount, o.DisperseCount, o.DisperseRedundancy}
	if err := l.validate(); err != nil {
		return nil, subvolkit.E(subvolkit.InvalidArgument, op, "", err)
	}
	if o.RetryMinDelay < 0 || o.RetryMaxDelay < 0 || o.RollbackTimeout < 0 {
		return nil, invalid("RetryMinDelay %v, RetryMaxDelay %v and RollbackTimeout %v must not be negative",
			o.RetryMinDelay, o.RetryMaxDelay, o.RollbackTimeout)
	}
	if o.RollbackTimeout == 0 {
		o.RollbackTimeout = DefaultRollbackTimeout
	}
	if o.LostCreateGrace <= 0 {
		o.LostCreateGrace = DefaultLostCreateGrace
	}
	if o.Timeout == 0 {
		o.Timeout = DefaultTimeout
	}
	if o.RetryMaxAttempts == 0 {
		o.RetryMaxAttempts = DefaultRetryMaxAttempts
	}
	if o.RetryMinDelay == 0 {
		o.RetryMinDelay = DefaultRetryMinDelay
	}
	if o.RetryMaxDelay == 0 {
		o.RetryMaxDelay = DefaultRetryMaxDelay
	}
	if o.RetryMaxDelay < o.RetryMinDelay {
		return nil, invalid("RetryMaxDelay %v is less than RetryMinDelay %v", o.RetryMaxDelay, o.RetryMinDelay)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	hc := o.HTTPClient
	own := hc == nil
	if hc != nil && o.TLS != (TLS{}) {
		return nil, invalid("TLS applies to the backend's own HTTP client; configure TLS on HTTPClient instead")
	}
	if hc == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		cfg, err := tlsutil.Config(o.TLS.CAFile, o.TLS.InsecureSkipVerify)
		if err != nil {
			return nil, subvolkit.E(subvolkit.InvalidArgument, op, "", err)
		}
		if cfg != nil {
			tr.TLSClientConfig = cfg
		}
		hc = &http.Client{Transport: tr}
	}
	c := &client{
		base:     strings.TrimSuffix(u.String(), "/"),
		user:     o.User,
		secret:   []byte(o.Secret),
		hc:       hc,
		timeout:  max(o.Timeout, 0),
		retryMax: max(o.RetryMaxAttempts, 0),
		waitMin:  o.RetryMinDelay,
		waitMax:  o.RetryMaxDelay,
		log:      o.Logger,
	}
	return &Backend{noSnapshots: noSnapshotsReason, c: c, opts: o, layout: l, ownHC: own}, nil
}

// check fails calls after Close and calls whose context is already done.
func (b *Backend) check(ctx context.Context, op, name string) error {
	if b.closed.Load() {
		return subvolkit.Errorf(subvolkit.FailedPrecondition, "", "", "glusterd2 backend is closed")
	}
	if err := ctx.Err(); err != nil {
		return subvolkit.E(subvolkit.Canceled, "", "", err)
	}
	return nil
}

// fail wraps a client error with its kind.
func fail(op, name string, err error) error {
	return subvolkit.E(ErrorKind(err), "", "", err)
}

// checkName rejects invalid subvolume names (InvalidArgument).
func checkName(op, name string) error {
	if err := naming.ValidateSubvolName(name); err != nil {
		return subvolkit.WithOp("", "", err)
	}
	return nil
}

// VolumeName returns the glusterd2 volume name that holds the subvolume
// name: name itself if glusterd2 accepts it (letters, digits, '_' and '-')
// and it is at most MaxVolumeName bytes long. Otherwise each run of other
// bytes becomes '-', the result is cut to leave room, and "-" and 10 hex
// digits of the SHA-256 of name are appended, so that distinct names get
// distinct volumes. The subvolume's own name is kept in the volume's
// metadata (MetaName), which Get and Delete check.
func VolumeName(name string) string {
	if len(name) <= MaxVolumeName && volNameRE.MatchString(name) {
		return name
	}
	var b strings.Builder
	dash := false
	for i := 0; i < len(name); i++ {
		c := name[i]
		ok := c == '_' || c == '-' || ('0' <= c && c <= '9') || ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z')
		switch {
		case ok:
			b.WriteByte(c)
			dash = false
		case !dash:
			b.WriteByte('-')
			dash = true
		}
	}
	sum := sha256.Sum256([]byte(name))
	base := b.String()
	if len(base) > MaxVolumeName-11 {
		base = base[:MaxVolumeName-11]
	}
	return base + "-" + hex.EncodeToString(sum[:5])
}

// layoutFor applies a request's Parameters (replica, disperse, redundancy)
// over the backend's layout.
func (b *Backend) layoutFor(op, name string, params map[string]string) (layout, error) {
	l := b.layout
	for _, k := range slices.Sorted(maps.Keys(params)) {
		n, err := strconv.Atoi(params[k])
		var p *int
		switch k {
		case "replica":
			p = &l.replica
		case "disperse":
			p = &l.disperse
		case "redundancy":
			p = &l.redundancy
		default:
			return l, subvolkit.Errorf(subvolkit.InvalidArgument, "", "",
				"unknown parameter %q (known: replica, disperse, redundancy)", k)
		}
		if err != nil {
			return l, subvolkit.Errorf(subvolkit.InvalidArgument, "", "", "parameter %s=%q is not an integer", k, params[k])
		}
		*p = n
	}
	if params["disperse"] != "" || params["redundancy"] != "" {
		if _, ok := params["replica"]; !ok {
			l.replica = 0
		}
	} else if params["replica"] != "" {
		l.disperse, l.redundancy = 0, 0
	}
	if err := l.validate(); err != nil {
		return l, subvolkit.E(subvolkit.InvalidArgument, "", "", err)
	}
	return l, nil
}

// Create makes a smart volume named req.Name of req.SizeBytes rounded up
// to whole MiB (at least MinSizeBytes), records the size, creation time and
// labels in its metadata and starts it. If a step after the volume was made
// fails, the volume is stopped and deleted again before Create returns.
func (b *Backend) Create(ctx context.Context, req *backend.CreateRequest) (*backend.Subvol, error) {
	const op = "create"
	if req == nil {
		return nil, subvolkit.Errorf(subvolkit.InvalidArgument, "", "", "nil request")
	}
	name := req.Name
	if err := b.check(ctx, op, name); err != nil {
		return nil, err
	}
	if err := checkName(op, name); err != nil {
		return nil, err
	}
	vol := VolumeName(name)
	if req.SizeBytes <= 0 {
		return nil, subvolkit.Errorf(subvolkit.InvalidArgument, "", "", "size must be positive, got %d", req.SizeBytes)
	}
	size, err := quota.RoundUp(max(req.SizeBytes, MinSizeBytes), quota.MiB)
	if err != nil {
		return nil, subvolkit.WithOp("", "", err)
	}
	if o := req.Owner; o != nil && (o.UID != -1 || o.GID != -1 || o.Mode != 0) {
		return nil, subvolkit.Errorf(subvolkit.Unimplemented, "", "",
			"glusterd2 v4.1.1 cannot set the owner or mode of a volume's root directory over REST (no such volume option or API)")
	}
	l, err := b.layoutFor(op, name, req.Parameters)
	if err != nil {
		return nil, err
	}
	meta, err := metadata(name, size, time.Now().UTC(), req.Labels)
	if err != nil {
		return nil, subvolkit.E(subvolkit.InvalidArgument, "", "", err)
	}
	unlock, err := b.locks.Lock(ctx, name)
	if err != nil {
		return nil, subvolkit.E(subvolkit.Canceled, "", "", err)
	}
	defer unlock()

	svReq := smartvolapi.VolCreateReq{
		Name:                    vol,
		Size:                    uint64(size / quota.MiB),
		DisperseCount:           l.disperse,
		DisperseRedundancyCount: l.redundancy,
	}
	if l.replica > 1 {
		svReq.ReplicaCount = l.replica
	}
	var created api.VolumeCreateResp
	if err := b.c.do(ctx, http.MethodPost, "/v1/smartvol", svReq, http.StatusCreated, &created); err != nil {
		var he *HTTPError
		if !errors.As(err, &he) {
			// No answer (a broken connection, a cancelled context):
			// the volume may have been made. Remove it if it is there
			// and still as smartvol makes it.
			b.removeFresh(ctx, vol)
		}
		return nil, fail(op, name, err)
	}

	var edited api.VolumeEditResp
	err = b.c.do(ctx, http.MethodPost, volPath(vol)+"/edit", api.VolEditReq{Metadata: meta}, http.StatusOK, &edited)
	if err == nil {
		var started api.VolumeStartResp
		err = b.c.do(ctx, http.MethodPost, volPath(vol)+"/start", api.VolumeStartReq{}, http.StatusOK, &started)
		if err == nil {
			return toSubvol(api.VolumeInfo(started)), nil
		}
	}
	if rbErr := b.rollback(ctx, vol); rbErr != nil {
		b.c.log.LogAttrs(ctx, slog.LevelWarn, "glusterd2: rollback of a failed create failed",
			slog.String("volume", vol), slog.Any("error", rbErr))
		return nil, subvolkit.E(ErrorKind(err), "", "",
			fmt.Errorf("%w (and removing the half-made volume failed: %v)", err, rbErr))
	}
	return nil, subvolkit.E(ErrorKind(err), "", "", fmt.Errorf("%w (the volume was removed again)", err))
}

// rollback stops (if need be) and deletes the volume vol Create made, even
// when ctx is done, within Options.RollbackTimeout.
func (b *Backend) rollback(ctx context.Context, vol string) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), b.opts.RollbackTimeout)
	defer cancel()
	err := b.c.do(ctx, http.MethodDelete, volPath(vol), nil, http.StatusNoContent, nil)
	var he *HTTPError
	if errors.As(err, &he) && he.Status == http.StatusBadRequest && he.has(msgDeleteStarted) {
		// The start went through after all.
		if err = b.stop(ctx, vol); err == nil {
			err = b.c.do(ctx, http.MethodDelete, volPath(vol), nil, http.StatusNoContent, nil)
		}
	}
	if ErrorKind(err) == subvolkit.NotFound {
		return nil // gone already
	}
	return err
}

// removeFresh deletes the volume vol if it exists, was never started and
// has no metadata of this backend: what a smartvol create whose answer was
// lost leaves. Failures are only logged: a later Delete removes such a
// volume too.
func (b *Backend) removeFresh(ctx context.Context, vol string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), b.opts.RollbackTimeout)
	defer cancel()
	// The server may still be working on the request: watch for the
	// volume for a grace period before concluding it was never made.
	deadline := time.Now().Add(b.opts.LostCreateGrace)
	for {
		var v api.VolumeGetResp
		err := b.c.do(ctx, http.MethodGet, volPath(vol), nil, http.StatusOK, &v)
		info := api.VolumeInfo(v)
		if err == nil && !managed(&info) && info.State == api.VolCreated {
			err = b.c.do(ctx, http.MethodDelete, volPath(vol), nil, http.StatusNoContent, nil)
		}
		if ErrorKind(err) == subvolkit.NotFound && time.Now().Before(deadline) {
			t := time.NewTimer(50 * time.Millisecond)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			continue
		}
		if err != nil && ErrorKind(err) != subvolkit.NotFound {
			b.c.log.LogAttrs(ctx, slog.LevelWarn, "glusterd2: could not check for a volume a failed create may have made",
				slog.String("volume", vol), slog.Any("error", err))
		}
		return
	}
}

// stop stops the volume vol; one already stopped is fine.
func (b *Backend) stop(ctx context.Context, vol string) error {
	err := b.c.do(ctx, http.MethodPost, volPath(vol)+"/stop", nil, http.StatusOK, nil)
	var he *HTTPError
	if errors.As(err, &he) && he.Status == http.StatusBadRequest && he.has(msgAlreadyStop) {
		return nil
	}
	return err
}

// metadata builds the metadata Create records, within glusterd2's limit.
func metadata(name string, size int64, created time.Time, labels map[string]string) (map[string]string, error) {
	m := map[string]string{
		MetaSize:    strconv.FormatInt(size, 10),
		MetaName:    name,
		MetaCreated: created.Format(time.RFC3339Nano),
	}
	if len(labels) > 0 {
		b, err := json.Marshal(labels)
		if err != nil {
			return nil, err
		}
		m[MetaLabels] = string(b)
	}
	n := 0
	for k, v := range m {
		n += len(k) + len(v)
	}
	if n > maxMetadata {
		return nil, fmt.Errorf("labels take %d bytes of volume metadata, more than glusterd2's limit of %d with the size and time", n, maxMetadata)
	}
	return m, nil
}

// volPath is the REST path of the glusterd2 volume vol.
func volPath(vol string) string { return "/v1/volumes/" + url.PathEscape(vol) }

// getVolume fetches the volume that holds the subvolume name; kind NotFound
// if glusterd2 has none.
func (b *Backend) getVolume(ctx context.Context, op, name string) (*api.VolumeInfo, error) {
	var v api.VolumeGetResp
	if err := b.c.do(ctx, http.MethodGet, volPath(VolumeName(name)), nil, http.StatusOK, &v); err != nil {
		return nil, fail(op, name, err)
	}
	info := api.VolumeInfo(v)
	return &info, nil
}

// managed reports whether this backend made the volume.
func managed(v *api.VolumeInfo) bool {
	_, ok := v.Metadata[MetaSize]
	return ok
}

// subvolName is the name of the subvolume a managed volume holds.
func subvolName(v *api.VolumeInfo) string {
	if n := v.Metadata[MetaName]; n != "" {
		return n
	}
	return v.Name
}

// notOurs checks that v holds the subvolume name. A volume without the
// backend's metadata, or holding another subvolume (whose name maps to the
// same volume name), is not that subvolume: for the pool, name does not
// exist, and the volume is left alone.
func notOurs(op, name string, v *api.VolumeInfo) error {
	if !managed(v) {
		return subvolkit.Errorf(subvolkit.NotFound, "", "",
			"glusterd2 volume %q exists but has no %q metadata, so it is not a subvolume (subvolkit did not make it, or it was retained); leaving it alone",
			v.Name, MetaSize)
	}
	if other := subvolName(v); other != name {
		return subvolkit.Errorf(subvolkit.NotFound, "", "",
			"glusterd2 volume %q holds the subvolume %q, not %q", v.Name, other, name)
	}
	return nil
}

// incomplete is the error for a volume this backend made but never started.
func incomplete(op, name string, v *api.VolumeInfo) error {
	return subvolkit.Errorf(subvolkit.FailedPrecondition, "", "",
		"glusterd2 volume %q was made but never started: a Create did not finish; Delete removes it", v.Name)
}

// Get returns the subvolume for the volume named name, or NotFound if there
// is no such volume or it was not made by this backend. A volume this
// backend made but never started (a Create whose clean-up failed) is
// FailedPrecondition: it holds the name until Delete removes it.
func (b *Backend) Get(ctx context.Context, name string) (*backend.Subvol, error) {
	const op = "get"
	if err := b.check(ctx, op, name); err != nil {
		return nil, err
	}
	if err := checkName(op, name); err != nil {
		return nil, err
	}
	v, err := b.getVolume(ctx, op, name)
	if err != nil {
		return nil, err
	}
	if err := notOurs(op, name, v); err != nil {
		return nil, err
	}
	if v.State == api.VolCreated {
		return nil, incomplete(op, name, v)
	}
	return toSubvol(*v), nil
}

// Delete removes the subvolume. DeletePolicyDelete stops the volume if it
// runs and deletes it (data and bricks go); DeletePolicyRetain only removes
// the backend's metadata, so the volume, running and with its data, leaves
// the pool; DeletePolicyArchive is Unimplemented. A volume this backend did
// not make is NotFound and left alone, except one that was never started (a
// Create that could not finish), which DeletePolicyDelete removes.
func (b *Backend) Delete(ctx context.Context, name string, opts *backend.DeleteOptions) error {
	const op = "delete"
	if err := b.check(ctx, op, name); err != nil {
		return err
	}
	policy := backend.DeletePolicyDelete
	if opts != nil {
		policy = opts.Policy
	}
	switch policy {
	case backend.DeletePolicyDelete, backend.DeletePolicyRetain:
	case backend.DeletePolicyArchive:
		return subvolkit.Errorf(subvolkit.Unimplemented, "", "",
			"glusterd2 cannot archive a volume: volumes cannot be renamed out of the pool's namespace")
	default:
		return subvolkit.Errorf(subvolkit.InvalidArgument, "", "", "unknown delete policy %d", policy)
	}
	if err := checkName(op, name); err != nil {
		return err
	}
	unlock, err := b.locks.Lock(ctx, name)
	if err != nil {
		return subvolkit.E(subvolkit.Canceled, "", "", err)
	}
	defer unlock()
	v, err := b.getVolume(ctx, op, name)
	if err != nil {
		return err
	}
	// A never-started volume without metadata is what a Create cut short
	// leaves; anything else must hold this subvolume.
	leftover := !managed(v) && v.State == api.VolCreated && policy == backend.DeletePolicyDelete
	if err := notOurs(op, name, v); err != nil && !leftover {
		return err
	}
	if policy == backend.DeletePolicyRetain {
		req := api.VolEditReq{
			Metadata:       map[string]string{MetaSize: "", MetaName: "", MetaCreated: "", MetaLabels: ""},
			DeleteMetadata: true,
		}
		if err := b.c.do(ctx, http.MethodPost, volPath(v.Name)+"/edit", req, http.StatusOK, nil); err != nil {
			return fail(op, name, err)
		}
		return nil
	}
	if v.State == api.VolStarted {
		if err := b.stop(ctx, v.Name); err != nil {
			return fail(op, name, err)
		}
	}
	if err := b.c.do(ctx, http.MethodDelete, volPath(v.Name), nil, http.StatusNoContent, nil); err != nil {
		return fail(op, name, err)
	}
	return nil
}

// List lists the volumes this backend made, sorted by name, leaving out
// those never started (see Get). glusterd2 has
// no paging: every page is cut from a full listing. The page token is the
// last name of the previous page.
func (b *Backend) List(ctx context.Context, opts *backend.ListOptions) (*backend.ListPage, error) {
	const op = "list"
	if err := b.check(ctx, op, ""); err != nil {
		return nil, err
	}
	if opts == nil {
		opts = &backend.ListOptions{}
	}
	if opts.MaxResults < 0 {
		return nil, subvolkit.Errorf(subvolkit.InvalidArgument, "", "", "MaxResults %d is negative", opts.MaxResults)
	}
	limit := opts.MaxResults
	if limit == 0 {
		limit = DefaultPageSize
	}
	var vols api.VolumeListResp
	if err := b.c.do(ctx, http.MethodGet, "/v1/volumes", nil, http.StatusOK, &vols); err != nil {
		return nil, fail(op, "", err)
	}
	var names []string
	byName := make(map[string]api.VolumeInfo, len(vols))
	for _, v := range vols {
		info := api.VolumeInfo(v)
		if !managed(&info) || info.State == api.VolCreated {
			continue
		}
		n := subvolName(&info)
		if _, dup := byName[n]; dup || n <= opts.PageToken || VolumeName(n) != info.Name {
			continue
		}
		byName[n] = info
		names = append(names, n)
	}
	sort.Strings(names)
	page := &backend.ListPage{}
	for _, n := range names {
		if len(page.Subvols) == limit {
			page.NextPageToken = page.Subvols[limit-1].Name
			break
		}
		page.Subvols = append(page.Subvols, toSubvol(byName[n]))
	}
	return page, nil
}

// Close marks the backend closed and closes idle connections of its own
// HTTP client. It never fails.
func (b *Backend) Close() error {
	if b.closed.Swap(true) {
		return nil
	}
	if b.ownHC {
		b.c.hc.CloseIdleConnections()
	}
	return nil
}

// Ping checks that glusterd2 answers GET /ping (with the credentials).
func (b *Backend) Ping(ctx context.Context) error {
	const op = "ping"
	if err := b.check(ctx, op, ""); err != nil {
		return err
	}
	if err := b.c.do(ctx, http.MethodGet, "/ping", nil, http.StatusOK, nil); err != nil {
		return fail(op, "", err)
	}
	return nil
}

// Resize is Unimplemented: glusterd2 v4.1.1 can grow a volume only by
// adding bricks, never to a size.
func (b *Backend) Resize(ctx context.Context, name string, sizeBytes int64) (*backend.Subvol, error) {
	const op = "resize"
	if err := b.check(ctx, op, name); err != nil {
		return nil, err
	}
	return nil, subvolkit.Errorf(subvolkit.Unimplemented, "", "",
		"glusterd2 v4.1.1 has no size-based expand: POST /v1/volumes/{volname}/expand takes bricks only, and smart volumes cannot be shrunk")
}

// Clone is Unimplemented: glusterd2 v4.1.1 answers 501 to snapshot clone.
func (b *Backend) Clone(ctx context.Context, req *backend.CloneRequest) (*backend.Subvol, error) {
	const op = "clone"
	name := ""
	if req != nil {
		name = req.Name
	}
	if err := b.check(ctx, op, name); err != nil {
		return nil, err
	}
	return nil, subvolkit.Errorf(subvolkit.Unimplemented, "", "",
		"glusterd2 v4.1.1 cannot clone: POST /v1/snapshot/{snapname}/clone answers 501 \"Snapshot Clone\" (and snapshots cannot be deleted either)")
}

// Usage reports the space used in the volume as glusterd2 measures it (GET
// /v1/volumes/{volname}/status, a statfs of the mounted volume). Limit is
// the subvolume's SizeBytes; the volume's filesystem is a little smaller
// (XFS overhead), so writes can fail somewhat before Used reaches Limit.
// Files and Dirs are unknown (-1). A volume that is not started is
// FailedPrecondition.
func (b *Backend) Usage(ctx context.Context, name string) (*quota.Usage, error) {
	const op = "usage"
	if err := b.check(ctx, op, name); err != nil {
		return nil, err
	}
	if err := checkName(op, name); err != nil {
		return nil, err
	}
	var st api.VolumeStatusResp
	if err := b.c.do(ctx, http.MethodGet, volPath(VolumeName(name))+"/status", nil, http.StatusOK, &st); err != nil {
		return nil, fail(op, name, err)
	}
	if err := notOurs(op, name, &st.Info); err != nil {
		return nil, err
	}
	if st.Size.Used > 1<<62 {
		return nil, subvolkit.Errorf(subvolkit.Internal, "", "", "glusterd2 reports an implausible size %+v", st.Size)
	}
	u := quota.NewUsage(toSubvol(st.Info).SizeBytes, int64(st.Size.Used))
	return &u, nil
}

// Capabilities reports that glusterd2 sizes smart volumes in whole MiB (and
// at least MinSizeBytes).
func (b *Backend) Capabilities() backend.Capabilities {
	return backend.Capabilities{SizeGranularity: quota.MiB}
}

// As exposes the clients underneath: *(**http.Client) is set to the HTTP
// client the backend uses, and *(**restclient.Client) to a new upstream
// pkg/restclient client for the same URL and credentials (for calls this
// package does not make; it has no context and a fixed 30 s timeout).
func (b *Backend) As(i any) bool {
	switch p := i.(type) {
	case **http.Client:
		*p = b.c.hc
		return true
	case **restclient.Client:
		*p = restclient.New(b.c.base, b.opts.User, b.opts.Secret, b.opts.TLS.CAFile, b.opts.TLS.InsecureSkipVerify)
		return true
	}
	return false
}

// toSubvol describes a volume this backend made.
func toSubvol(v api.VolumeInfo) *backend.Subvol {
	sv := &backend.Subvol{
		Name:    subvolName(&v),
		ID:      v.ID.String(),
		Volume:  v.Name,
		Path:    "",
		Servers: brickHosts(v.Subvols, nil),
		UID:     -1,
		GID:     -1,
	}
	if n, err := strconv.ParseInt(v.Metadata[MetaSize], 10, 64); err == nil {
		sv.SizeBytes = n
	}
	if t, err := time.Parse(time.RFC3339Nano, v.Metadata[MetaCreated]); err == nil {
		sv.Created = t
	}
	if raw := v.Metadata[MetaLabels]; raw != "" {
		var labels map[string]string
		if json.Unmarshal([]byte(raw), &labels) == nil && len(labels) > 0 {
			sv.Labels = labels
		}
	}
	return sv
}

// brickHosts appends the hosts of the bricks, each once, in brick order.
func brickHosts(subvols []api.Subvol, out []string) []string {
	for _, sv := range subvols {
		for _, br := range sv.Bricks {
			if br.Hostname != "" && !slices.Contains(out, br.Hostname) {
				out = append(out, br.Hostname)
			}
		}
		out = brickHosts(sv.Subvols, out)
	}
	return out
}

// Package provision is the subvolkit external provisioner: the callbacks of
// sigs.k8s.io/sig-storage-lib-external-provisioner (Provision, Delete), the
// Endpoints/Service keeper for glusterfs PVs and the expansion loop, all on
// the SDK's subvol.Pool.
//
// A claim's subvolume, Endpoints and Service are named from the claim's UID
// (package naming), so a claim deleted and created again under the same name
// never meets its predecessor's objects, and every retry after a crash finds
// the same names.
package provision

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/record"
	"sigs.k8s.io/sig-storage-lib-external-provisioner/v13/controller"

	"github.com/subvolkit/subvolkit"
	"github.com/subvolkit/subvolkit/internal/keyedlock"
	"github.com/subvolkit/subvolkit/naming"
	"github.com/subvolkit/subvolkit/subvol"
)

// Provisioner names.
const (
	// DefaultName is the provisioner's default name.
	DefaultName = "subvolkit.io/glusterfs"
	// LegacyName is gluster's external file provisioner's name, accepted so
	// that old StorageClasses keep working.
	LegacyName = "gluster.org/glusterfile"
)

// Annotations on PVs (and claims).
const (
	// AnnBackend holds the backend reference (JSON, no secrets): enough to
	// delete the subvolume when the StorageClass is gone.
	AnnBackend = "subvolkit.io/backend"
	// AnnSubvolume is the subvolume's name in its pool.
	AnnSubvolume = "subvolkit.io/subvolume"
	// AnnOnDelete is the DeletePolicy applied when the PV is deleted.
	AnnOnDelete = "subvolkit.io/on-delete"
	// AnnEndpoints is "namespace/name" of the PV's Endpoints and Service.
	AnnEndpoints = "subvolkit.io/endpoints"
	// AnnCloneRequest on a claim asks for a clone of "[namespace/]claim".
	AnnCloneRequest = "k8s.io/CloneRequest"
	// AnnCloneOf on a PV names the claim ("namespace/claim") it was cloned from.
	AnnCloneOf = "k8s.io/CloneOf"
	// AnnProvisionedBy is set by the provisioner library on every PV.
	AnnProvisionedBy = "pv.kubernetes.io/provisioned-by"
)

// Labels on Endpoints and Services.
const (
	LabelPVCUID      = "subvolkit.io/pvc-uid"
	LabelPVCName     = "gluster.kubernetes.io/provisioned-for-pvc"
	LabelProvisioner = "subvolkit.io/provisioner"
)

// CSIDriver is the CSI driver name of examples/csi.
const CSIDriver = "csi.subvolkit.io"

// FlexDriver is the FlexVolume driver of examples/flexvolume.
const FlexDriver = "rht/glfs-subvol"

// Config configures a Provisioner.
type Config struct {
	// Name is the provisioner's name (DefaultName if "").
	Name string
	// Client talks to the API server.
	Client kubernetes.Interface
	// BackendParams are extra parameters per backend name that come from
	// the provisioner's own flags, not from StorageClasses (the gluster
	// binary and its arguments for "cli", say): a StorageClass must not
	// choose programs to run.
	BackendParams map[string]map[string]string
	// AllowCrossNamespaceClone lets a claim clone a claim of another
	// namespace through k8s.io/CloneRequest.
	AllowCrossNamespaceClone bool
	// Logger (nil: slog.Default()).
	Logger *slog.Logger
	// Metrics (nil: not recorded) count the provisioner's own operations.
	Metrics *Metrics
	// PoolObservers, per backend name, are told about every Pool
	// operation (examples/metrics' Observe).
	PoolObservers map[string]subvol.Observer
	// Events records events on claims (nil: none).
	Events record.EventRecorder
}

// Provisioner implements controller.Provisioner (and Qualifier) on
// subvol.Pool. It is safe for concurrent use.
type Provisioner struct {
	cfg    Config
	pools  *pools
	gids   *gids
	logger *slog.Logger

	initMu sync.Mutex
	inited bool

	// epLocks serializes, per Endpoints "ns/name", Delete's removal of a
	// claim's Endpoints and Service with KeepEndpoints' re-creation of
	// them, so a sync working from a PV list read before the claim was
	// released cannot make them again after Delete removed them.
	epLocks keyedlock.Map
}

var _ controller.Provisioner = (*Provisioner)(nil)

// New returns a Provisioner. Close releases its pools.
func New(cfg Config) *Provisioner {
	if cfg.Name == "" {
		cfg.Name = DefaultName
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Provisioner{
		cfg:    cfg,
		pools:  newPools(cfg.Client, cfg.BackendParams, cfg.PoolObservers, cfg.Logger),
		gids:   newGids(),
		logger: cfg.Logger,
	}
}

// Close closes the pools the Provisioner opened.
func (p *Provisioner) Close() error { return p.pools.close() }

// Names returns the provisioner names this Provisioner answers to.
func (p *Provisioner) Names() []string {
	if p.cfg.Name == LegacyName {
		return []string{LegacyName}
	}
	return []string{p.cfg.Name, LegacyName}
}

func (p *Provisioner) owns(name string) bool {
	for _, n := range p.Names() {
		if n == name {
			return true
		}
	}
	return false
}

// init fills the gid table from the PVs and the pools' subvolumes, once,
// before the first allocation (and after leader election, when the previous
// leader's PVs are all visible).
func (p *Provisioner) init(ctx context.Context) error {
	p.initMu.Lock()
	defer p.initMu.Unlock()
	if p.inited {
		return nil
	}
	pvs, err := p.cfg.Client.CoreV1().PersistentVolumes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return subvolkit.E(subvolkit.Unavailable, "", "", fmt.Errorf("list PVs to rebuild the gid table: %w", err))
	}
	for _, pv := range pvs.Items {
		if gid, ok, err := parseGIDAnnotation(pv.Annotations); err == nil && ok {
			p.gids.mark(gid, pv.Name)
		}
	}
	classes, err := p.cfg.Client.StorageV1().StorageClasses().List(ctx, metav1.ListOptions{})
	if err != nil {
		return subvolkit.E(subvolkit.Unavailable, "", "", fmt.Errorf("list StorageClasses: %w", err))
	}
	for _, sc := range classes.Items {
		if !p.owns(sc.Provisioner) {
			continue
		}
		c, err := parseClass(sc.Name, sc.Parameters)
		if err != nil {
			continue
		}
		pool, err := p.pools.get(ctx, c.ref, c.restUserKey)
		if err != nil {
			p.logger.Warn("gid table: cannot open pool", "class", sc.Name, "err", err)
			continue
		}
		svs, err := pool.List(ctx)
		if err != nil {
			p.logger.Warn("gid table: cannot list pool", "class", sc.Name, "err", err)
			continue
		}
		for _, sv := range svs {
			if sv.GID >= DefaultGidMin {
				if uid := sv.Labels[labelUID]; uid != "" {
					p.gids.mark(sv.GID, uid)
				} else {
					p.gids.mark(sv.GID, "subvolume:"+sv.Name)
				}
			}
		}
	}
	p.inited = true
	return nil
}

// Subvolume labels.
const (
	labelUID       = "pvc-uid"
	labelNamespace = "pvc-namespace"
	labelName      = "pvc-name"
)

// Provision implements controller.Provisioner.
func (p *Provisioner) Provision(ctx context.Context, opts controller.ProvisionOptions) (pv *v1.PersistentVolume, state controller.ProvisioningState, err error) {
	start := time.Now()
	op := "provision"
	defer func() { p.cfg.Metrics.observe(op, start, err) }()

	claim, sc := opts.PVC, opts.StorageClass
	cfg, err := parseClass(sc.Name, sc.Parameters)
	if err != nil {
		return nil, controller.ProvisioningFinished, err
	}
	if claim.Spec.VolumeMode != nil && *claim.Spec.VolumeMode == v1.PersistentVolumeBlock {
		return nil, controller.ProvisioningFinished, invalid("block volumes are not supported")
	}
	req, ok := claim.Spec.Resources.Requests[v1.ResourceStorage]
	if !ok || req.Value() <= 0 {
		return nil, controller.ProvisioningFinished, invalid("claim %s/%s requests no storage", claim.Namespace, claim.Name)
	}
	name, err := subvolName(cfg, claim)
	if err != nil {
		return nil, controller.ProvisioningFinished, err
	}
	src, err := p.cloneSource(ctx, claim, cfg)
	if err != nil {
		return nil, controller.ProvisioningFinished, err
	}
	if src != nil {
		op = "clone"
	}
	if err := p.init(ctx); err != nil {
		return nil, controller.ProvisioningNoChange, err
	}
	pool, err := p.pools.get(ctx, cfg.ref, cfg.restUserKey)
	if err != nil {
		return nil, controller.ProvisioningNoChange, err
	}
	if err := ensureWarm(pool, cfg.warm); err != nil {
		return nil, controller.ProvisioningFinished, err
	}

	uid := string(claim.UID)
	// A subvolume left by an earlier attempt (this process's, or one that
	// died) keeps its group; otherwise reserve a new one.
	gid := -1
	existing, err := pool.Get(ctx, name)
	switch {
	case err == nil:
		gid = existing.GID
		if gid >= 0 && !p.gids.mark(gid, uid) {
			return nil, controller.ProvisioningFinished, subvolkit.Errorf(subvolkit.Internal, "", name, "its gid %d is already used by another PV", gid)
		}
	case errors.Is(err, subvolkit.ErrNotFound):
		if gid, err = p.gids.allocate(cfg.gidMin, cfg.gidMax, uid); err != nil {
			return nil, controller.ProvisioningFinished, err
		}
	default:
		return nil, controller.ProvisioningNoChange, err
	}

	labels := map[string]string{labelUID: uid, labelNamespace: claim.Namespace, labelName: claim.Name}
	owner := &subvol.Ownership{UID: -1, GID: gid, Mode: 0o2775}
	var sv *subvol.Subvol
	if src != nil {
		sv, err = pool.Clone(ctx, src.subvol, name, &subvol.CloneOptions{SizeBytes: req.Value(), Owner: owner, Labels: labels})
	} else {
		sv, err = pool.Allocate(ctx, name, req.Value(), &subvol.AllocateOptions{Owner: owner, Labels: labels})
	}
	if err != nil {
		if _, gerr := pool.Get(ctx, name); errors.Is(gerr, subvolkit.ErrNotFound) {
			p.gids.release(gid, uid)
			return nil, controller.ProvisioningFinished, err
		}
		return nil, controller.ProvisioningInBackground, err
	}

	refJSON, _ := json.Marshal(cfg.ref)
	pv = &v1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{
			Name: opts.PVName,
			Annotations: map[string]string{
				AnnGID:        strconv.Itoa(gid),
				AnnBackend:    string(refJSON),
				AnnSubvolume:  sv.Name,
				AnnOnDelete:   cfg.onDelete.String(),
				"Description": "subvolkit: dynamically provisioned subvolume",
			},
		},
		Spec: v1.PersistentVolumeSpec{
			PersistentVolumeReclaimPolicy: reclaimPolicy(sc),
			AccessModes:                   claim.Spec.AccessModes,
			Capacity:                      v1.ResourceList{v1.ResourceStorage: *resourceBytes(sv.SizeBytes)},
			MountOptions:                  sc.MountOptions,
			StorageClassName:              sc.Name,
			VolumeMode:                    claim.Spec.VolumeMode,
		},
	}
	if src != nil {
		pv.Annotations[AnnCloneOf] = src.ref
	}
	if gid < 0 {
		delete(pv.Annotations, AnnGID)
	}
	switch cfg.pvType {
	case PVTypeGlusterfs:
		epName, err := naming.EndpointName(cfg.epPrefix, uid)
		if err != nil {
			return nil, controller.ProvisioningInBackground, err
		}
		if err := p.ensureEndpoints(ctx, claim.Namespace, epName, claim.Name, uid, sv.Servers); err != nil {
			return nil, controller.ProvisioningInBackground, err
		}
		ns := claim.Namespace
		pv.Annotations[AnnEndpoints] = ns + "/" + epName
		pv.Spec.Glusterfs = &v1.GlusterfsPersistentVolumeSource{
			EndpointsName:      epName,
			EndpointsNamespace: &ns,
			Path:               glusterPath(sv),
		}
	case PVTypeFlex:
		pv.Spec.FlexVolume = &v1.FlexPersistentVolumeSource{
			Driver: FlexDriver,
			Options: map[string]string{
				"cluster": strings.Join(sv.Servers, ":"),
				"volume":  sv.Volume,
				"dir":     strings.TrimPrefix(sv.Path, "/"),
			},
		}
	case PVTypeCSI:
		pv.Spec.CSI = &v1.CSIPersistentVolumeSource{
			Driver:           CSIDriver,
			VolumeHandle:     cfg.ref.Pool + "/" + sv.Name,
			VolumeAttributes: volumeContext(sv),
		}
	}
	p.gids.rename(gid, uid, pv.Name)
	p.logger.Info("provisioned", "claim", claim.Namespace+"/"+claim.Name, "pv", pv.Name, "subvolume", sv.Name, "gid", gid, "bytes", sv.SizeBytes)
	return pv, controller.ProvisioningFinished, nil
}

// volumeContext is what a CSI node plugin needs to mount sv.
func volumeContext(sv *subvol.Subvol) map[string]string {
	return map[string]string{
		"servers": strings.Join(sv.Servers, ","),
		"volume":  sv.Volume,
		"path":    sv.Path,
	}
}

// glusterPath is the path of a glusterfs PV source: "<volume>/<dir>" for a
// directory subvolume, "<volume>" for a whole one.
func glusterPath(sv *subvol.Subvol) string {
	return sv.Volume + sv.Path
}

func reclaimPolicy(sc *storagev1.StorageClass) v1.PersistentVolumeReclaimPolicy {
	if sc.ReclaimPolicy != nil {
		return *sc.ReclaimPolicy
	}
	return v1.PersistentVolumeReclaimDelete
}

// subvolName names a claim's subvolume: "pvc-<uid>", or the in-tree
// volumenameprefix form "<prefix>_<namespace>_<claim>_<short uid>".
func subvolName(c *classConfig, claim *v1.PersistentVolumeClaim) (string, error) {
	if c.volumePrefix != "" {
		return naming.VolumeName(c.volumePrefix, claim.Namespace, claim.Name, string(claim.UID))
	}
	return naming.FromUID("", string(claim.UID))
}

// cloneRef is the source of a clone.
type cloneRef struct {
	ref    string // "namespace/claim"
	subvol string
}

// cloneSource finds the subvolume a claim asks to clone (k8s.io/CloneRequest
// or a PersistentVolumeClaim dataSource), or nil.
func (p *Provisioner) cloneSource(ctx context.Context, claim *v1.PersistentVolumeClaim, c *classConfig) (*cloneRef, error) {
	var ns, name string
	if ds := claim.Spec.DataSource; ds != nil {
		if ds.Kind != "PersistentVolumeClaim" || (ds.APIGroup != nil && *ds.APIGroup != "") {
			return nil, subvolkit.Errorf(subvolkit.Unimplemented, "", "", "dataSource of kind %s is not supported (only PersistentVolumeClaim)", ds.Kind)
		}
		ns, name = claim.Namespace, ds.Name
	} else if v := claim.Annotations[AnnCloneRequest]; v != "" {
		ns, name = claim.Namespace, v
		if a, b, ok := strings.Cut(v, "/"); ok {
			ns, name = a, b
		}
		if ns != claim.Namespace && !p.cfg.AllowCrossNamespaceClone {
			return nil, subvolkit.Errorf(subvolkit.PermissionDenied, "", "", "%s %q: cloning a claim of another namespace is not allowed", AnnCloneRequest, v)
		}
	} else {
		return nil, nil
	}
	ref := ns + "/" + name
	src, err := p.cfg.Client.CoreV1().PersistentVolumeClaims(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		if apierrors.IsNotFound(err) {
			return nil, subvolkit.Errorf(subvolkit.NotFound, "", "", "clone source claim %s not found", ref)
		}
		return nil, subvolkit.E(subvolkit.Unavailable, "", "", err)
	}
	if src.Spec.VolumeName == "" || src.Status.Phase != v1.ClaimBound {
		return nil, subvolkit.Errorf(subvolkit.FailedPrecondition, "", "", "clone source claim %s is not bound", ref)
	}
	pv, err := p.cfg.Client.CoreV1().PersistentVolumes().Get(ctx, src.Spec.VolumeName, metav1.GetOptions{})
	if err != nil {
		return nil, subvolkit.E(subvolkit.Unavailable, "", "", err)
	}
	var sref backendRef
	if err := json.Unmarshal([]byte(pv.Annotations[AnnBackend]), &sref); err != nil || pv.Annotations[AnnSubvolume] == "" {
		return nil, subvolkit.Errorf(subvolkit.FailedPrecondition, "", "", "clone source claim %s is not a subvolkit volume", ref)
	}
	if sref.key() != c.ref.key() {
		return nil, subvolkit.Errorf(subvolkit.InvalidArgument, "", "", "clone source claim %s is in another pool than this StorageClass's", ref)
	}
	return &cloneRef{ref: ref, subvol: pv.Annotations[AnnSubvolume]}, nil
}

// Delete implements controller.Provisioner: it needs nothing but the PV.
func (p *Provisioner) Delete(ctx context.Context, pv *v1.PersistentVolume) (err error) {
	start := time.Now()
	defer func() {
		var ign *controller.IgnoredError
		if !errors.As(err, &ign) {
			p.cfg.Metrics.observe("delete", start, err)
		}
	}()
	raw, name := pv.Annotations[AnnBackend], pv.Annotations[AnnSubvolume]
	if raw == "" || name == "" {
		return &controller.IgnoredError{Reason: "the PV was not provisioned by subvolkit"}
	}
	var ref backendRef
	if err := json.Unmarshal([]byte(raw), &ref); err != nil {
		return subvolkit.Errorf(subvolkit.InvalidArgument, "delete", name, "annotation %s: %v", AnnBackend, err)
	}
	policy, ok := subvol.ParseDeletePolicy(pv.Annotations[AnnOnDelete])
	if !ok {
		return subvolkit.Errorf(subvolkit.InvalidArgument, "delete", name, "annotation %s=%q", AnnOnDelete, pv.Annotations[AnnOnDelete])
	}
	if err := p.init(ctx); err != nil {
		return err
	}
	inline := ""
	if ref.Backend == BackendHeketi && ref.Secret == "" && pv.Spec.StorageClassName != "" {
		// An in-tree class with restuserkey inline: read it while the class exists.
		if sc, err := p.cfg.Client.StorageV1().StorageClasses().Get(ctx, pv.Spec.StorageClassName, metav1.GetOptions{}); err == nil {
			if c, err := parseClass(sc.Name, sc.Parameters); err == nil {
				inline = c.restUserKey
			}
		}
	}
	pool, err := p.pools.get(ctx, ref, inline)
	if err != nil {
		return err
	}
	if err := pool.Delete(ctx, name, &subvol.DeleteOptions{Policy: policy}); err != nil {
		return err
	}
	if ep := pv.Annotations[AnnEndpoints]; ep != "" {
		ns, epName, _ := strings.Cut(ep, "/")
		uid := ""
		if pv.Spec.ClaimRef != nil {
			uid = string(pv.Spec.ClaimRef.UID)
		}
		unlock, err := p.epLocks.Lock(ctx, ep)
		if err != nil {
			return err
		}
		err = p.deleteEndpoints(ctx, ns, epName, uid)
		unlock()
		if err != nil {
			return err
		}
	}
	if gid, ok, _ := parseGIDAnnotation(pv.Annotations); ok {
		p.gids.release(gid, pv.Name)
	}
	p.logger.Info("deleted", "pv", pv.Name, "subvolume", name, "policy", policy.String())
	return nil
}

// ensureWarm makes the pool keep the class's warm subvolumes, if it does
// not already: a burst of claims of those sizes is then served by renames.
func ensureWarm(pool *subvol.Pool, classes []subvol.WarmClass) error {
	if len(classes) == 0 {
		return nil
	}
	st := pool.WarmStatus()
	same := len(st) == len(classes)
	for _, c := range classes {
		same = same && slices.ContainsFunc(st, func(s subvol.WarmStatus) bool { return s.SizeBytes == c.SizeBytes && s.Target == c.Count })
	}
	if same {
		return nil
	}
	return pool.SetWarm(classes)
}

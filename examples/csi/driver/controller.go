package driver

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/subvolkit/subvolkit"
	"github.com/subvolkit/subvolkit/naming"
	"github.com/subvolkit/subvolkit/quota"
	"github.com/subvolkit/subvolkit/subvol"
)

// StorageClass parameters.
const (
	ParamPool     = "pool"
	ParamOnDelete = "onDelete"
	// labelOnDelete records onDelete with the subvolume, so DeleteVolume
	// needs nothing but the ID.
	labelOnDelete = "subvolkit.io/on-delete"
	// k8sPrefix marks the parameters external-provisioner adds itself
	// (--extra-create-metadata); they are accepted and ignored.
	k8sPrefix = "csi.storage.k8s.io/"
)

var controllerCaps = []csi.ControllerServiceCapability_RPC_Type{
	csi.ControllerServiceCapability_RPC_CREATE_DELETE_VOLUME,
	csi.ControllerServiceCapability_RPC_CREATE_DELETE_SNAPSHOT,
	csi.ControllerServiceCapability_RPC_LIST_SNAPSHOTS,
	csi.ControllerServiceCapability_RPC_GET_SNAPSHOT,
	csi.ControllerServiceCapability_RPC_CLONE_VOLUME,
	csi.ControllerServiceCapability_RPC_EXPAND_VOLUME,
	csi.ControllerServiceCapability_RPC_LIST_VOLUMES,
	csi.ControllerServiceCapability_RPC_GET_CAPACITY,
	csi.ControllerServiceCapability_RPC_GET_VOLUME,
	csi.ControllerServiceCapability_RPC_GET_VOLUME_HEALTH,
	csi.ControllerServiceCapability_RPC_LIST_VOLUME_HEALTH,
}

// ControllerGetCapabilities implements csi.ControllerServer.
func (d *Driver) ControllerGetCapabilities(ctx context.Context, req *csi.ControllerGetCapabilitiesRequest) (*csi.ControllerGetCapabilitiesResponse, error) {
	resp := &csi.ControllerGetCapabilitiesResponse{}
	for _, c := range controllerCaps {
		resp.Capabilities = append(resp.Capabilities, &csi.ControllerServiceCapability{
			Type: &csi.ControllerServiceCapability_Rpc{Rpc: &csi.ControllerServiceCapability_RPC{Type: c}}})
	}
	return resp, nil
}

// checkCaps accepts file system access in every single- and multi-node
// mode, and refuses block access with InvalidArgument.
func checkCaps(caps []*csi.VolumeCapability) error {
	if len(caps) == 0 {
		return errInvalid("volume capabilities are required")
	}
	for _, c := range caps {
		if err := checkCap(c); err != nil {
			return err
		}
	}
	return nil
}

func checkCap(c *csi.VolumeCapability) error {
	if c == nil {
		return errInvalid("volume capability is required")
	}
	if c.GetBlock() != nil {
		return errInvalid("block access is not supported: a subvolume is a directory (use a file system volume mode)")
	}
	if c.GetMount() == nil {
		return errInvalid("volume capability needs an access type (mount)")
	}
	if fs := c.GetMount().GetFsType(); fs != "" && fs != "glusterfs" {
		return errInvalid("fsType %q is not supported: a subvolume is a GlusterFS directory", fs)
	}
	switch m := c.GetAccessMode().GetMode(); m {
	case csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER, csi.VolumeCapability_AccessMode_SINGLE_NODE_READER_ONLY,
		csi.VolumeCapability_AccessMode_MULTI_NODE_READER_ONLY, csi.VolumeCapability_AccessMode_MULTI_NODE_SINGLE_WRITER,
		csi.VolumeCapability_AccessMode_MULTI_NODE_MULTI_WRITER:
	default:
		return errInvalid("access mode %v is not supported", m)
	}
	return nil
}

// volumeRef is a parsed volume or snapshot ID.
type volumeRef struct {
	pool, name string
}

// parseID parses a volume or snapshot ID; a malformed one is InvalidArgument.
func parseID(what, id string) (volumeRef, error) {
	if id == "" {
		return volumeRef{}, errInvalid("%s ID is required", what)
	}
	p, n, err := subvol.ParseVolumeID(id)
	if err != nil {
		return volumeRef{}, errInvalid("%s ID %q is malformed: want <pool>/<name>", what, id)
	}
	return volumeRef{p, n}, nil
}

// sizeFor picks a size from a capacity range: the required bytes, or the
// limit, or the pool's default.
func sizeFor(r *csi.CapacityRange, pc *PoolConfig) (size, limit int64, err error) {
	if r == nil {
		return pc.defaultSize, 0, nil
	}
	req, lim := r.GetRequiredBytes(), r.GetLimitBytes()
	switch {
	case req < 0 || lim < 0:
		return 0, 0, status.Errorf(codes.OutOfRange, "capacity range %d..%d is negative", req, lim)
	case req == 0 && lim == 0:
		return 0, 0, errInvalid("capacity range is given but empty: set required_bytes or limit_bytes")
	case lim > 0 && req > lim:
		return 0, 0, status.Errorf(codes.OutOfRange, "required bytes %d exceed limit bytes %d", req, lim)
	}
	size = req
	if size == 0 {
		size = min(pc.defaultSize, lim)
	}
	if pc.maxSize > 0 && size > pc.maxSize {
		return 0, 0, status.Errorf(codes.OutOfRange, "%s is more than the pool's maximum volume size %s",
			quota.HumanSize(size), quota.HumanSize(pc.maxSize))
	}
	if pc.capacity > 0 && size > pc.capacity {
		return 0, 0, status.Errorf(codes.OutOfRange, "%s is more than the pool's capacity %s",
			quota.HumanSize(size), quota.HumanSize(pc.capacity))
	}
	return size, lim, nil
}

// copyCtx bounds the wait for a copy so that the answer (ABORTED "in
// progress" if the copy is still running) reaches the caller before its own
// deadline.
func (d *Driver) copyCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	wait := d.cfg.CopyWait
	if dl, ok := ctx.Deadline(); ok {
		if left := time.Until(dl) - 500*time.Millisecond; left < wait {
			wait = max(left, 10*time.Millisecond)
		}
	}
	return context.WithTimeout(ctx, wait)
}

// CreateVolume implements csi.ControllerServer.
func (d *Driver) CreateVolume(ctx context.Context, req *csi.CreateVolumeRequest) (*csi.CreateVolumeResponse, error) {
	if req.GetName() == "" {
		return nil, errInvalid("name is required")
	}
	if err := checkCaps(req.GetVolumeCapabilities()); err != nil {
		return nil, err
	}
	params := req.GetParameters()
	policy := subvol.DeletePolicyDelete
	for k, v := range params {
		switch {
		case k == ParamPool, strings.HasPrefix(k, k8sPrefix):
		case k == ParamOnDelete:
			p, ok := subvol.ParseDeletePolicy(v)
			if !ok {
				return nil, errInvalid("parameter %s=%q: want delete, retain or archive", ParamOnDelete, v)
			}
			policy = p
		default:
			return nil, errInvalid("unknown parameter %q (known: %s, %s)", k, ParamPool, ParamOnDelete)
		}
	}
	poolName := params[ParamPool]
	if poolName == "" {
		return nil, errInvalid("parameter %q is required (pools: %v)", ParamPool, slices.Sorted(maps.Keys(d.pools)))
	}
	e := d.pools[poolName]
	if e == nil {
		return nil, errInvalid("parameter %s=%q: no such pool (pools: %v)", ParamPool, poolName, slices.Sorted(maps.Keys(d.pools)))
	}
	size, limit, err := sizeFor(req.GetCapacityRange(), e.cfg)
	if err != nil {
		return nil, err
	}
	name, err := naming.ForRequest(req.GetName())
	if err != nil {
		return nil, errInvalid("name %q: %v", req.GetName(), err)
	}
	id, err := subvol.VolumeID(poolName, name)
	if err != nil {
		return nil, errInvalid("%v", err)
	}
	var (
		srcVol, srcSnap volumeRef
		src             = req.GetVolumeContentSource()
	)
	switch {
	case src == nil:
	case src.GetVolume() != nil:
		if srcVol, err = parseID("source volume", src.GetVolume().GetVolumeId()); err != nil {
			return nil, err
		}
	case src.GetSnapshot() != nil:
		// A malformed snapshot ID names no snapshot of this driver.
		if srcSnap, err = parseID("source snapshot", src.GetSnapshot().GetSnapshotId()); err != nil {
			return nil, status.Errorf(codes.NotFound, "source snapshot %q does not exist: not an ID of this driver (<pool>/<name>)",
				src.GetSnapshot().GetSnapshotId())
		}
	default:
		return nil, errInvalid("unsupported volume content source")
	}
	for _, r := range []volumeRef{srcVol, srcSnap} {
		if r.pool != "" && r.pool != poolName {
			return nil, errInvalid("the content source is in pool %q, the volume would be in %q: copies stay in one pool", r.pool, poolName)
		}
	}
	if src != nil && req.GetCapacityRange() == nil {
		size = 0 // the source's size
	}
	pool, err := e.open(ctx, req.GetSecrets())
	if err != nil {
		return nil, err
	}
	labels := map[string]string{labelOnDelete: policy.String()}
	var sv *subvol.Subvol
	switch {
	case srcVol.name != "":
		cctx, cancel := d.copyCtx(ctx)
		defer cancel()
		sv, err = pool.CloneInBackground(cctx, srcVol.name, name, &subvol.CloneOptions{SizeBytes: size, Labels: labels})
	case srcSnap.name != "":
		cctx, cancel := d.copyCtx(ctx)
		defer cancel()
		sv, err = pool.Restore(cctx, srcSnap.name, name, &subvol.CloneOptions{SizeBytes: size, Labels: labels})
	default:
		sv, err = pool.Allocate(ctx, name, size, &subvol.AllocateOptions{LimitBytes: limit, Labels: labels})
	}
	if err != nil {
		if subvolkit.KindOf(err) == subvolkit.NotFound && src != nil {
			return nil, status.Errorf(codes.NotFound, "content source %s: %v", sourceID(src), err)
		}
		return nil, toStatus(err)
	}
	if limit > 0 && sv.SizeBytes > limit {
		return nil, status.Errorf(codes.AlreadyExists, "volume %s exists with %s, above the limit %s", id,
			quota.HumanSize(sv.SizeBytes), quota.HumanSize(limit))
	}
	return &csi.CreateVolumeResponse{Volume: &csi.Volume{
		VolumeId: id, CapacityBytes: sv.SizeBytes, VolumeContext: sv.VolumeContext(), ContentSource: src,
	}}, nil
}

// sourceID is the ID a content source names.
func sourceID(src *csi.VolumeContentSource) string {
	if v := src.GetVolume(); v != nil {
		return "volume " + v.GetVolumeId()
	}
	return "snapshot " + src.GetSnapshot().GetSnapshotId()
}

// DeleteVolume implements csi.ControllerServer: with the onDelete policy
// recorded at creation. A missing volume is success.
func (d *Driver) DeleteVolume(ctx context.Context, req *csi.DeleteVolumeRequest) (*csi.DeleteVolumeResponse, error) {
	ref, err := parseID("volume", req.GetVolumeId())
	if err != nil {
		return nil, err
	}
	pool, err := d.pool(ctx, ref.pool, req.GetSecrets(), codes.InvalidArgument)
	if err != nil {
		return nil, err
	}
	if pool.CopyInProgress(ref.name) {
		return nil, status.Errorf(codes.Aborted, "volume %s is being copied (in progress)", req.GetVolumeId())
	}
	sv, err := pool.Get(ctx, ref.name)
	if subvolkit.KindOf(err) == subvolkit.NotFound {
		return &csi.DeleteVolumeResponse{}, nil
	}
	if err != nil {
		return nil, toStatus(err)
	}
	policy, ok := subvol.ParseDeletePolicy(sv.Labels[labelOnDelete])
	if !ok {
		policy = subvol.DeletePolicyRetain // unreadable: keep the data
	}
	if err := pool.Delete(ctx, ref.name, &subvol.DeleteOptions{Policy: policy}); err != nil {
		return nil, toStatus(err)
	}
	return &csi.DeleteVolumeResponse{}, nil
}

// getVolume returns the volume behind an ID: NotFound for an unknown pool
// or a missing subvolume.
func (d *Driver) getVolume(ctx context.Context, id string, secrets map[string]string) (*subvol.Pool, volumeRef, *subvol.Subvol, error) {
	ref, err := parseID("volume", id)
	if err != nil {
		return nil, ref, nil, err
	}
	pool, err := d.pool(ctx, ref.pool, secrets, codes.NotFound)
	if err != nil {
		return nil, ref, nil, err
	}
	sv, err := pool.Get(ctx, ref.name)
	if err != nil {
		return nil, ref, nil, toStatus(err)
	}
	return pool, ref, sv, nil
}

// ControllerExpandVolume implements csi.ControllerServer: the new absolute
// quota limit, online; no node step is needed.
func (d *Driver) ControllerExpandVolume(ctx context.Context, req *csi.ControllerExpandVolumeRequest) (*csi.ControllerExpandVolumeResponse, error) {
	if req.GetVolumeId() == "" {
		return nil, errInvalid("volume ID is required")
	}
	if req.GetCapacityRange() == nil {
		return nil, errInvalid("capacity range is required")
	}
	if c := req.GetVolumeCapability(); c != nil {
		if err := checkCap(c); err != nil {
			return nil, err
		}
	}
	pool, ref, sv, err := d.getVolume(ctx, req.GetVolumeId(), req.GetSecrets())
	if err != nil {
		return nil, err
	}
	size, _, err := sizeFor(req.GetCapacityRange(), d.pools[ref.pool].cfg)
	if err != nil {
		return nil, err
	}
	if sv.SizeBytes < size {
		if sv, err = pool.Resize(ctx, ref.name, size); err != nil {
			return nil, toStatus(err)
		}
	}
	return &csi.ControllerExpandVolumeResponse{CapacityBytes: sv.SizeBytes, NodeExpansionRequired: false}, nil
}

// ValidateVolumeCapabilities implements csi.ControllerServer.
func (d *Driver) ValidateVolumeCapabilities(ctx context.Context, req *csi.ValidateVolumeCapabilitiesRequest) (*csi.ValidateVolumeCapabilitiesResponse, error) {
	if req.GetVolumeId() == "" {
		return nil, errInvalid("volume ID is required")
	}
	if len(req.GetVolumeCapabilities()) == 0 {
		return nil, errInvalid("volume capabilities are required")
	}
	if _, _, _, err := d.getVolume(ctx, req.GetVolumeId(), req.GetSecrets()); err != nil {
		return nil, err
	}
	if err := checkCaps(req.GetVolumeCapabilities()); err != nil {
		return nil, err
	}
	return &csi.ValidateVolumeCapabilitiesResponse{Confirmed: &csi.ValidateVolumeCapabilitiesResponse_Confirmed{
		VolumeContext: req.GetVolumeContext(), VolumeCapabilities: req.GetVolumeCapabilities(),
		Parameters: req.GetParameters(), MutableParameters: req.GetMutableParameters(),
	}}, nil
}

func csiVolume(id string, sv *subvol.Subvol, pool string) *csi.Volume {
	v := &csi.Volume{VolumeId: id, CapacityBytes: sv.SizeBytes, VolumeContext: sv.VolumeContext()}
	switch {
	case sv.Source != "":
		src, _ := subvol.VolumeID(pool, sv.Source)
		v.ContentSource = &csi.VolumeContentSource{Type: &csi.VolumeContentSource_Volume{
			Volume: &csi.VolumeContentSource_VolumeSource{VolumeId: src}}}
	case sv.SourceSnapshot != "":
		src, _ := subvol.VolumeID(pool, sv.SourceSnapshot)
		v.ContentSource = &csi.VolumeContentSource{Type: &csi.VolumeContentSource_Snapshot{
			Snapshot: &csi.VolumeContentSource_SnapshotSource{SnapshotId: src}}}
	}
	return v
}

// ControllerGetVolume implements csi.ControllerServer.
func (d *Driver) ControllerGetVolume(ctx context.Context, req *csi.ControllerGetVolumeRequest) (*csi.ControllerGetVolumeResponse, error) {
	_, ref, sv, err := d.getVolume(ctx, req.GetVolumeId(), nil)
	if err != nil {
		return nil, err
	}
	return &csi.ControllerGetVolumeResponse{Volume: csiVolume(req.GetVolumeId(), sv, ref.pool),
		Status: &csi.ControllerGetVolumeResponse_VolumeStatus{}}, nil
}

// health is a volume's health from the controller's side: DEGRADED when it
// holds more than its size (a writer overshot the quota).
func health(ctx context.Context, id string, pool *subvol.Pool, sv *subvol.Subvol) *csi.VolumeHealth {
	h := &csi.VolumeHealth{VolumeId: id}
	u, err := pool.Usage(ctx, sv.Name)
	switch {
	case err != nil && subvolkit.KindOf(err) != subvolkit.Unimplemented:
		h.HealthStatuses = append(h.HealthStatuses, &csi.VolumeHealth_VolumeHealthEntry{
			Status: csi.VolumeHealthErrorType_INACCESSIBLE, Reason: "UsageUnreadable", Message: err.Error()})
	case err == nil && u.Used > sv.SizeBytes:
		h.HealthStatuses = append(h.HealthStatuses, &csi.VolumeHealth_VolumeHealthEntry{
			Status: csi.VolumeHealthErrorType_DEGRADED, Reason: "OverQuota",
			Message: fmt.Sprintf("holds %s, more than its size %s", quota.HumanSize(u.Used), quota.HumanSize(sv.SizeBytes))})
	}
	return h
}

// ControllerGetVolumeHealth implements csi.ControllerServer.
func (d *Driver) ControllerGetVolumeHealth(ctx context.Context, req *csi.ControllerGetVolumeHealthRequest) (*csi.ControllerGetVolumeHealthResponse, error) {
	pool, _, sv, err := d.getVolume(ctx, req.GetVolumeId(), req.GetSecrets())
	if err != nil {
		return nil, err
	}
	return &csi.ControllerGetVolumeHealthResponse{VolumeHealth: health(ctx, req.GetVolumeId(), pool, sv)}, nil
}

// listed is a volume of some pool, with its ID.
type listed struct {
	id   string
	pool namedPool
	sv   *subvol.Subvol
}

// listVolumes returns a page of every pool's volumes sorted by ID, after the
// token (the last ID of the previous page). A token that is not a volume ID
// is ABORTED, as CSI asks.
func (d *Driver) listVolumes(ctx context.Context, token string, max int32) ([]listed, string, error) {
	if max < 0 {
		return nil, "", errInvalid("max_entries %d is negative", max)
	}
	if token != "" {
		if _, _, err := subvol.ParseVolumeID(token); err != nil {
			return nil, "", status.Errorf(codes.Aborted, "starting token %q is not one this driver gave", token)
		}
	}
	var all []listed
	for _, np := range d.opened(ctx) {
		svs, err := np.pool.List(ctx)
		if err != nil {
			return nil, "", toStatus(err)
		}
		for _, sv := range svs {
			id, err := subvol.VolumeID(np.name, sv.Name)
			if err != nil || id <= token {
				continue
			}
			all = append(all, listed{id, np, sv})
		}
	}
	slices.SortFunc(all, func(a, b listed) int { return strings.Compare(a.id, b.id) })
	next := ""
	if max > 0 && len(all) > int(max) {
		all = all[:max]
		next = all[len(all)-1].id
	}
	return all, next, nil
}

// ListVolumes implements csi.ControllerServer.
func (d *Driver) ListVolumes(ctx context.Context, req *csi.ListVolumesRequest) (*csi.ListVolumesResponse, error) {
	page, next, err := d.listVolumes(ctx, req.GetStartingToken(), req.GetMaxEntries())
	if err != nil {
		return nil, err
	}
	resp := &csi.ListVolumesResponse{NextToken: next}
	for _, l := range page {
		resp.Entries = append(resp.Entries, &csi.ListVolumesResponse_Entry{Volume: csiVolume(l.id, l.sv, l.pool.name)})
	}
	return resp, nil
}

// ControllerListVolumeHealth implements csi.ControllerServer.
func (d *Driver) ControllerListVolumeHealth(ctx context.Context, req *csi.ControllerListVolumeHealthRequest) (*csi.ControllerListVolumeHealthResponse, error) {
	page, next, err := d.listVolumes(ctx, req.GetStartingToken(), req.GetMaxEntries())
	if err != nil {
		return nil, err
	}
	resp := &csi.ControllerListVolumeHealthResponse{NextToken: next}
	for _, l := range page {
		resp.Entries = append(resp.Entries, health(ctx, l.id, l.pool.pool, l.sv))
	}
	return resp, nil
}

// GetCapacity implements csi.ControllerServer: a pool's configured capacity
// minus the sizes of its subvolumes and snapshots (0 when no capacity is
// configured), for the pool the parameters name or, without one, for all.
func (d *Driver) GetCapacity(ctx context.Context, req *csi.GetCapacityRequest) (*csi.GetCapacityResponse, error) {
	for _, c := range req.GetVolumeCapabilities() {
		if err := checkCap(c); err != nil {
			return nil, err
		}
	}
	names := slices.Sorted(maps.Keys(d.pools))
	if p := req.GetParameters()[ParamPool]; p != "" {
		if d.pools[p] == nil {
			return nil, errInvalid("parameter %s=%q: no such pool", ParamPool, p)
		}
		names = []string{p}
	}
	var avail, maxSize int64
	for _, name := range names {
		e := d.pools[name]
		if e.cfg.capacity == 0 {
			continue
		}
		pool, err := e.open(ctx, nil)
		if err != nil {
			return nil, err
		}
		used, err := allocated(ctx, pool)
		if err != nil {
			return nil, toStatus(err)
		}
		free := max(e.cfg.capacity-used, 0)
		avail += free
		m := free
		if e.cfg.maxSize > 0 {
			m = min(m, e.cfg.maxSize)
		}
		maxSize = max(maxSize, m)
	}
	resp := &csi.GetCapacityResponse{AvailableCapacity: avail}
	if maxSize > 0 {
		resp.MaximumVolumeSize = wrapperspb.Int64(maxSize)
	}
	return resp, nil
}

// allocated is the sum of the sizes of a pool's subvolumes and snapshots.
func allocated(ctx context.Context, pool *subvol.Pool) (int64, error) {
	svs, err := pool.List(ctx)
	if err != nil {
		return 0, err
	}
	var n int64
	for _, sv := range svs {
		n += sv.SizeBytes
	}
	snaps, err := pool.ListSnapshots(ctx)
	if err != nil && subvolkit.KindOf(err) != subvolkit.Unimplemented {
		return 0, err
	}
	for _, s := range snaps {
		n += s.SizeBytes
	}
	return n, nil
}

func csiSnapshot(pool string, s *subvol.Snapshot) *csi.Snapshot {
	id, _ := subvol.VolumeID(pool, s.Name)
	src, _ := subvol.VolumeID(pool, s.Source)
	return &csi.Snapshot{SnapshotId: id, SourceVolumeId: src, SizeBytes: s.SizeBytes,
		CreationTime: timestamppb.New(s.Created), ReadyToUse: true}
}

// CreateSnapshot implements csi.ControllerServer. The copy runs in the
// background; until it is done the answer is ABORTED "in progress".
func (d *Driver) CreateSnapshot(ctx context.Context, req *csi.CreateSnapshotRequest) (*csi.CreateSnapshotResponse, error) {
	if req.GetName() == "" {
		return nil, errInvalid("name is required")
	}
	ref, err := parseID("source volume", req.GetSourceVolumeId())
	if err != nil {
		return nil, err
	}
	for k := range req.GetParameters() {
		if !strings.HasPrefix(k, k8sPrefix) {
			return nil, errInvalid("unknown snapshot parameter %q", k)
		}
	}
	name, err := naming.ForRequest(req.GetName())
	if err != nil {
		return nil, errInvalid("name %q: %v", req.GetName(), err)
	}
	if _, err := subvol.VolumeID(ref.pool, name); err != nil {
		return nil, errInvalid("%v", err)
	}
	pool, err := d.pool(ctx, ref.pool, req.GetSecrets(), codes.NotFound)
	if err != nil {
		return nil, err
	}
	cctx, cancel := d.copyCtx(ctx)
	defer cancel()
	s, err := pool.CreateSnapshot(cctx, name, ref.name, nil)
	if err != nil {
		if subvolkit.KindOf(err) == subvolkit.NotFound {
			return nil, status.Errorf(codes.NotFound, "source volume %s: %v", req.GetSourceVolumeId(), err)
		}
		return nil, toStatus(err)
	}
	return &csi.CreateSnapshotResponse{Snapshot: csiSnapshot(ref.pool, s)}, nil
}

// DeleteSnapshot implements csi.ControllerServer. A missing snapshot is
// success.
func (d *Driver) DeleteSnapshot(ctx context.Context, req *csi.DeleteSnapshotRequest) (*csi.DeleteSnapshotResponse, error) {
	if req.GetSnapshotId() == "" {
		return nil, errInvalid("snapshot ID is required")
	}
	ref, err := parseID("snapshot", req.GetSnapshotId())
	if err != nil {
		// Not an ID of this driver: no such snapshot, which is success.
		d.log.InfoContext(ctx, "DeleteSnapshot of a malformed snapshot ID: nothing to delete", "id", req.GetSnapshotId())
		return &csi.DeleteSnapshotResponse{}, nil
	}
	pool, err := d.pool(ctx, ref.pool, req.GetSecrets(), codes.InvalidArgument)
	if err != nil {
		return nil, err
	}
	if err := pool.DeleteSnapshot(ctx, ref.name); err != nil {
		if errors.Is(err, subvol.ErrInProgress) {
			return nil, status.Errorf(codes.Aborted, "snapshot %s is being taken (in progress)", req.GetSnapshotId())
		}
		return nil, toStatus(err)
	}
	return &csi.DeleteSnapshotResponse{}, nil
}

// GetSnapshot implements csi.ControllerServer.
func (d *Driver) GetSnapshot(ctx context.Context, req *csi.GetSnapshotRequest) (*csi.GetSnapshotResponse, error) {
	if req.GetSnapshotId() == "" {
		return nil, errInvalid("snapshot ID is required")
	}
	ref, err := parseID("snapshot", req.GetSnapshotId())
	if err != nil {
		return nil, status.Errorf(codes.NotFound, "snapshot %q does not exist: not an ID of this driver (<pool>/<name>)", req.GetSnapshotId())
	}
	pool, err := d.pool(ctx, ref.pool, req.GetSecrets(), codes.NotFound)
	if err != nil {
		return nil, err
	}
	s, err := pool.GetSnapshot(ctx, ref.name)
	if err != nil {
		return nil, toStatus(err)
	}
	return &csi.GetSnapshotResponse{Snapshot: csiSnapshot(ref.pool, s)}, nil
}

// ListSnapshots implements csi.ControllerServer: every pool's snapshots
// sorted by ID, filtered by snapshot or source volume ID, a page at a time.
func (d *Driver) ListSnapshots(ctx context.Context, req *csi.ListSnapshotsRequest) (*csi.ListSnapshotsResponse, error) {
	if req.GetMaxEntries() < 0 {
		return nil, errInvalid("max_entries %d is negative", req.GetMaxEntries())
	}
	token := req.GetStartingToken()
	if token != "" {
		if _, _, err := subvol.ParseVolumeID(token); err != nil {
			return nil, status.Errorf(codes.Aborted, "starting token %q is not one this driver gave", token)
		}
	}
	var all []*csi.Snapshot
	for _, np := range d.opened(ctx) {
		snaps, err := np.pool.ListSnapshots(ctx)
		if subvolkit.KindOf(err) == subvolkit.Unimplemented {
			continue
		}
		if err != nil {
			return nil, toStatus(err)
		}
		for _, s := range snaps {
			cs := csiSnapshot(np.name, s)
			if (req.GetSnapshotId() != "" && cs.SnapshotId != req.GetSnapshotId()) ||
				(req.GetSourceVolumeId() != "" && cs.SourceVolumeId != req.GetSourceVolumeId()) ||
				cs.SnapshotId <= token {
				continue
			}
			all = append(all, cs)
		}
	}
	slices.SortFunc(all, func(a, b *csi.Snapshot) int { return strings.Compare(a.SnapshotId, b.SnapshotId) })
	resp := &csi.ListSnapshotsResponse{}
	if n := int(req.GetMaxEntries()); n > 0 && len(all) > n {
		all = all[:n]
		resp.NextToken = all[n-1].SnapshotId
	}
	for _, s := range all {
		resp.Entries = append(resp.Entries, &csi.ListSnapshotsResponse_Entry{Snapshot: s})
	}
	return resp, nil
}

package driver

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/subvolkit/subvolkit"
	"github.com/subvolkit/subvolkit/mount"
	"github.com/subvolkit/subvolkit/subvol"
)

// node is the node side: the Mounter, and a record per staged volume under
// StateDir/volumes, for the calls that get only a volume ID.
type node struct {
	d   *Driver
	m   *mount.Mounter
	dir string
}

// stageRecord is what the node remembers of a staged volume.
type stageRecord struct {
	VolumeID    string            `json:"volumeID"`
	Context     map[string]string `json:"context"`
	StagingPath string            `json:"stagingPath"`
}

func newNode(ctx context.Context, d *Driver) (*node, error) {
	n := &node{d: d, m: d.cfg.Mounter, dir: filepath.Join(d.cfg.StateDir, "volumes")}
	if err := os.MkdirAll(n.dir, 0o700); err != nil {
		return nil, err
	}
	// A FUSE client that died while the plugin was down (or with it) is
	// restored now, with every bind of it.
	healed, err := n.m.Heal(ctx)
	if len(healed) > 0 {
		d.log.InfoContext(ctx, "healed dead mounts on start", "targets", healed)
	}
	if err != nil {
		d.log.WarnContext(ctx, "healing on start", "err", err)
	}
	return n, nil
}

func (n *node) recordPath(volumeID string) string {
	h := sha256.Sum256([]byte(volumeID))
	return filepath.Join(n.dir, hex.EncodeToString(h[:12])+".json")
}

func (n *node) writeRecord(r *stageRecord) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	p := n.recordPath(r.VolumeID)
	if err := os.WriteFile(p+".tmp", b, 0o600); err != nil {
		return err
	}
	return os.Rename(p+".tmp", p)
}

func (n *node) readRecord(volumeID string) (*stageRecord, error) {
	b, err := os.ReadFile(n.recordPath(volumeID))
	if err != nil {
		return nil, err
	}
	var r stageRecord
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, err
	}
	if r.VolumeID != volumeID {
		return nil, fmt.Errorf("record of %q found for %q", r.VolumeID, volumeID)
	}
	return &r, nil
}

// checkPath refuses relative paths and, when KubeletDir is set, paths
// outside it.
func (d *Driver) checkPath(what, p string) error {
	if p == "" {
		return errInvalid("%s is required", what)
	}
	if !filepath.IsAbs(p) {
		return errInvalid("%s %q is not absolute", what, p)
	}
	if k := d.cfg.KubeletDir; k != "" {
		c := filepath.Clean(p)
		if !strings.HasPrefix(c, filepath.Clean(k)+"/") {
			return errInvalid("%s %q is outside the kubelet directory %s", what, p, k)
		}
	}
	return nil
}

func (d *Driver) nodeVolume(id string, cap *csi.VolumeCapability, vctx map[string]string) (*subvol.Subvol, error) {
	if _, err := parseID("volume", id); err != nil {
		return nil, err
	}
	if cap == nil {
		return nil, errInvalid("volume capability is required")
	}
	if err := checkCap(cap); err != nil {
		return nil, err
	}
	sv, err := subvol.FromVolumeContext(vctx)
	if err != nil {
		return nil, errInvalid("volume context of %s (it must be the one CreateVolume returned): %v", id, err)
	}
	if _, name, _ := subvol.ParseVolumeID(id); name != sv.Name {
		return nil, errInvalid("volume context names subvolume %q, the volume ID %q", sv.Name, id)
	}
	return sv, nil
}

var nodeCaps = []csi.NodeServiceCapability_RPC_Type{
	csi.NodeServiceCapability_RPC_STAGE_UNSTAGE_VOLUME,
	csi.NodeServiceCapability_RPC_GET_VOLUME_STATS,
	csi.NodeServiceCapability_RPC_GET_VOLUME_HEALTH,
}

// NodeGetCapabilities implements csi.NodeServer.
func (d *Driver) NodeGetCapabilities(ctx context.Context, req *csi.NodeGetCapabilitiesRequest) (*csi.NodeGetCapabilitiesResponse, error) {
	resp := &csi.NodeGetCapabilitiesResponse{}
	for _, c := range nodeCaps {
		resp.Capabilities = append(resp.Capabilities, &csi.NodeServiceCapability{
			Type: &csi.NodeServiceCapability_Rpc{Rpc: &csi.NodeServiceCapability_RPC{Type: c}}})
	}
	return resp, nil
}

// NodeGetInfo implements csi.NodeServer.
func (d *Driver) NodeGetInfo(ctx context.Context, req *csi.NodeGetInfoRequest) (*csi.NodeGetInfoResponse, error) {
	return &csi.NodeGetInfoResponse{NodeId: d.cfg.NodeID}, nil
}

// NodeStageVolume implements csi.NodeServer: the node's shared mount of the
// Gluster volume (one FUSE client per volume and server set) and a bind of
// the subvolume's directory on the staging path. A dead shared mount is
// restored, with all its binds.
func (d *Driver) NodeStageVolume(ctx context.Context, req *csi.NodeStageVolumeRequest) (*csi.NodeStageVolumeResponse, error) {
	if req.GetVolumeId() == "" {
		return nil, errInvalid("volume ID is required")
	}
	if err := d.checkPath("staging target path", req.GetStagingTargetPath()); err != nil {
		return nil, err
	}
	sv, err := d.nodeVolume(req.GetVolumeId(), req.GetVolumeCapability(), req.GetVolumeContext())
	if err != nil {
		return nil, err
	}
	if err := d.node.m.Publish(ctx, sv, req.GetStagingTargetPath(), nil); err != nil {
		return nil, toStatus(err)
	}
	rec := &stageRecord{VolumeID: req.GetVolumeId(), Context: req.GetVolumeContext(), StagingPath: req.GetStagingTargetPath()}
	if err := d.node.writeRecord(rec); err != nil {
		return nil, status.Errorf(codes.Internal, "recording the staged volume: %v", err)
	}
	return &csi.NodeStageVolumeResponse{}, nil
}

// NodeUnstageVolume implements csi.NodeServer; idempotent.
func (d *Driver) NodeUnstageVolume(ctx context.Context, req *csi.NodeUnstageVolumeRequest) (*csi.NodeUnstageVolumeResponse, error) {
	if req.GetVolumeId() == "" {
		return nil, errInvalid("volume ID is required")
	}
	if err := d.checkPath("staging target path", req.GetStagingTargetPath()); err != nil {
		return nil, err
	}
	if err := d.node.m.Unpublish(ctx, req.GetStagingTargetPath()); err != nil {
		return nil, toStatus(err)
	}
	if err := os.Remove(d.node.recordPath(req.GetVolumeId())); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, status.Errorf(codes.Internal, "removing the stage record: %v", err)
	}
	return &csi.NodeUnstageVolumeResponse{}, nil
}

// readOnlyMode reports whether an access mode only reads.
func readOnlyMode(c *csi.VolumeCapability) bool {
	switch c.GetAccessMode().GetMode() {
	case csi.VolumeCapability_AccessMode_SINGLE_NODE_READER_ONLY, csi.VolumeCapability_AccessMode_MULTI_NODE_READER_ONLY:
		return true
	}
	return false
}

// NodePublishVolume implements csi.NodeServer: a bind of the staged
// subvolume's directory on the target (read-only when asked). It shows
// what the staging path shows; binding from the node's shared mount rather
// than from the staging path keeps one reference count (the mount table)
// and lets a dead FUSE client be healed here: if the shared mount's client
// has died, it is mounted again and every bind of it (staging paths and
// targets) is restored before the new bind is made.
func (d *Driver) NodePublishVolume(ctx context.Context, req *csi.NodePublishVolumeRequest) (*csi.NodePublishVolumeResponse, error) {
	if req.GetVolumeId() == "" {
		return nil, errInvalid("volume ID is required")
	}
	if err := d.checkPath("target path", req.GetTargetPath()); err != nil {
		return nil, err
	}
	if err := d.checkPath("staging target path", req.GetStagingTargetPath()); err != nil {
		return nil, err
	}
	sv, err := d.nodeVolume(req.GetVolumeId(), req.GetVolumeCapability(), req.GetVolumeContext())
	if err != nil {
		return nil, err
	}
	if err := d.node.staged(req.GetStagingTargetPath(), sv); err != nil {
		return nil, err
	}
	ro := req.GetReadonly() || readOnlyMode(req.GetVolumeCapability())
	if err := d.node.m.Publish(ctx, sv, req.GetTargetPath(), &mount.PublishOptions{ReadOnly: ro}); err != nil {
		return nil, toStatus(err)
	}
	return &csi.NodePublishVolumeResponse{}, nil
}

// staged checks that the staging path shows sv (live or dead: a dead one is
// healed by the publish).
func (n *node) staged(staging string, sv *subvol.Subvol) error {
	b, ok, err := n.bindAt(staging)
	if err != nil {
		return toStatus(err)
	}
	if !ok || b.Path != pathOf(sv) {
		return status.Errorf(codes.FailedPrecondition, "volume %s is not staged at %s (NodeStageVolume first)", sv.Name, staging)
	}
	return nil
}

func pathOf(sv *subvol.Subvol) string {
	if sv.Path == "" {
		return "/"
	}
	return sv.Path
}

// bindAt returns the bind of a shared mount whose target is p.
func (n *node) bindAt(p string) (mount.Bind, bool, error) {
	c, err := filepath.EvalSymlinks(p)
	if err != nil {
		c = filepath.Clean(p)
	}
	sms, err := n.m.SharedMounts()
	if err != nil {
		return mount.Bind{}, false, err
	}
	for _, sm := range sms {
		for _, b := range sm.Binds {
			if b.Target == c {
				return b, true, nil
			}
		}
	}
	return mount.Bind{}, false, nil
}

// NodeUnpublishVolume implements csi.NodeServer; idempotent.
func (d *Driver) NodeUnpublishVolume(ctx context.Context, req *csi.NodeUnpublishVolumeRequest) (*csi.NodeUnpublishVolumeResponse, error) {
	if req.GetVolumeId() == "" {
		return nil, errInvalid("volume ID is required")
	}
	if err := d.checkPath("target path", req.GetTargetPath()); err != nil {
		return nil, err
	}
	if err := d.node.m.Unpublish(ctx, req.GetTargetPath()); err != nil {
		return nil, toStatus(err)
	}
	return &csi.NodeUnpublishVolumeResponse{}, nil
}

// NodeGetVolumeStats implements csi.NodeServer: bytes and inodes from
// statfs, which reports the quota. CSI v1.13 moved the volume condition to
// NodeGetVolumeHealth: when the FUSE client is dead, this call fails with
// UNAVAILABLE and NodeGetVolumeHealth reports the volume INACCESSIBLE.
func (d *Driver) NodeGetVolumeStats(ctx context.Context, req *csi.NodeGetVolumeStatsRequest) (*csi.NodeGetVolumeStatsResponse, error) {
	if req.GetVolumeId() == "" {
		return nil, errInvalid("volume ID is required")
	}
	if req.GetVolumePath() == "" {
		return nil, errInvalid("volume path is required")
	}
	rec, err := d.node.readRecord(req.GetVolumeId())
	if err != nil {
		return nil, status.Errorf(codes.NotFound, "volume %s is not staged on this node", req.GetVolumeId())
	}
	sv, err := subvol.FromVolumeContext(rec.Context)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "stage record of %s: %v", req.GetVolumeId(), err)
	}
	b, ok, err := d.node.bindAt(req.GetVolumePath())
	if err != nil {
		return nil, toStatus(err)
	}
	if !ok || b.Path != pathOf(sv) {
		return nil, status.Errorf(codes.NotFound, "volume %s is not mounted at %s", req.GetVolumeId(), req.GetVolumePath())
	}
	st, err := mount.Stats(ctx, req.GetVolumePath())
	if err != nil {
		if subvolkit.KindOf(err) == subvolkit.Unavailable {
			return nil, status.Errorf(codes.Unavailable, "volume condition abnormal: %v (the next NodeStageVolume or NodePublishVolume of a volume of this Gluster volume heals it)", err)
		}
		return nil, toStatus(err)
	}
	return &csi.NodeGetVolumeStatsResponse{Usage: []*csi.VolumeUsage{
		{Unit: csi.VolumeUsage_BYTES, Total: st.CapacityBytes, Used: st.UsedBytes, Available: st.AvailableBytes},
		{Unit: csi.VolumeUsage_INODES, Total: st.Inodes, Used: st.Inodes - st.InodesFree, Available: st.InodesFree},
	}}, nil
}

// NodeGetVolumeHealth implements csi.NodeServer: INACCESSIBLE, reason
// FUSEClientDead, when the staging path or the given publish path answers
// "transport endpoint is not connected".
func (d *Driver) NodeGetVolumeHealth(ctx context.Context, req *csi.NodeGetVolumeHealthRequest) (*csi.NodeGetVolumeHealthResponse, error) {
	if req.GetVolumeId() == "" {
		return nil, errInvalid("volume ID is required")
	}
	var paths []string
	if rec, err := d.node.readRecord(req.GetVolumeId()); err == nil {
		paths = append(paths, rec.StagingPath)
	}
	for _, p := range []string{req.GetStagingTargetPath(), req.GetVolumePublishPath()} {
		if p != "" {
			paths = append(paths, p)
		}
	}
	if len(paths) == 0 {
		return nil, status.Errorf(codes.NotFound, "volume %s is not staged on this node", req.GetVolumeId())
	}
	h := &csi.VolumeHealth{VolumeId: req.GetVolumeId()}
	for _, p := range paths {
		_, err := mount.Stats(ctx, p)
		switch {
		case err == nil:
		case subvolkit.KindOf(err) == subvolkit.Unavailable:
			h.HealthStatuses = append(h.HealthStatuses, &csi.VolumeHealth_VolumeHealthEntry{
				Status: csi.VolumeHealthErrorType_INACCESSIBLE, Reason: "FUSEClientDead",
				Message: fmt.Sprintf("%s: %v; the next NodeStageVolume or NodePublishVolume heals it", p, unwrapErrno(err))})
		case subvolkit.KindOf(err) == subvolkit.NotFound:
			h.HealthStatuses = append(h.HealthStatuses, &csi.VolumeHealth_VolumeHealthEntry{
				Status: csi.VolumeHealthErrorType_INACCESSIBLE, Reason: "PathMissing", Message: p + " does not exist"})
		default:
			return nil, toStatus(err)
		}
		if len(h.HealthStatuses) > 0 {
			break // one entry per (status, reason)
		}
	}
	return &csi.NodeGetVolumeHealthResponse{VolumeHealth: h}, nil
}

func unwrapErrno(err error) error {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return errno
	}
	return err
}

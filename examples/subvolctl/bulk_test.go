package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/client-go/kubernetes/scheme"

	"github.com/subvolkit/subvolkit/glustertest"
	"github.com/subvolkit/subvolkit/quota"
)

// glusterEnv is a real one-node GlusterFS and the subvolctl arguments that
// reach it through the cli backend, as an administrator would give them.
type glusterEnv struct {
	c    *glustertest.Cluster
	args []string // -b cli -p ...
	dir  string
}

// newGlusterEnv starts GlusterFS. The cli backend runs the gluster CLI
// through a wrapper script that enters glusterd's namespaces (the test
// cluster lives in network namespaces), given as the glusterpath parameter.
func newGlusterEnv(t testing.TB) *glusterEnv {
	t.Helper()
	glustertest.RequirePrereqs(t)
	c := glustertest.StartT(t, &glustertest.Options{Nodes: 1})
	dir := t.TempDir()
	wrapper := filepath.Join(dir, "gluster")
	script := fmt.Sprintf("#!/bin/sh\nexec nsenter -t %d -m -n -- gluster --glusterd-sock=%s --log-file=%s \"$@\"\n",
		c.GlusterdPID(1), c.GlusterdSocket(1), filepath.Join(c.LogDir(1), "subvolctl-cli.log"))
	require.NoError(t, os.WriteFile(wrapper, []byte(script), 0o755))
	return &glusterEnv{c: c, dir: dir, args: []string{
		"-b", "cli",
		"-p", "volume=" + c.Volume(),
		"-p", "servers=" + strings.Join(c.Servers(), ","),
		"-p", "glusterpath=" + wrapper,
		"-p", "mountdir=" + filepath.Join(dir, "backend"),
	}}
}

// subvolctl runs the binary with the environment's backend arguments.
func (e *glusterEnv) subvolctl(t testing.TB, args ...string) (stdout string, code int) {
	t.Helper()
	cmd := exec.Command(subvolctlBin(t), append(append([]string{}, e.args...), args...)...)
	cmd.Env = append(os.Environ(), "HOME="+e.dir)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	if cmd.ProcessState == nil {
		t.Fatalf("subvolctl %v: %v", args, err)
	}
	if errOut.Len() > 0 {
		t.Logf("subvolctl %v stderr: %s", args, errOut.String())
	}
	return out.String(), cmd.ProcessState.ExitCode()
}

// decodePVs decodes a YAML stream of PersistentVolumes strictly with
// client-go's scheme: an unknown or misspelt field is an error.
func decodePVs(t *testing.T, data []byte) []*corev1.PersistentVolume {
	t.Helper()
	dec := serializer.NewCodecFactory(scheme.Scheme, serializer.EnableStrict).UniversalDeserializer()
	var pvs []*corev1.PersistentVolume
	for _, doc := range strings.Split(string(data), "---\n") {
		if strings.TrimSpace(doc) == "" {
			continue
		}
		obj, gvk, err := dec.Decode([]byte(doc), nil, nil)
		require.NoError(t, err, "strict decoding of\n%s", doc)
		require.Equal(t, "PersistentVolume", gvk.Kind)
		pv, ok := obj.(*corev1.PersistentVolume)
		require.True(t, ok, "%T", obj)
		pvs = append(pvs, pv)
	}
	return pvs
}

// TestBulkCreatePVs creates 500 subvolumes on real GlusterFS with
// bulk-create (as gluster-subvol's creator.sh did) and checks the
// PersistentVolume YAML of every source against client-go's scheme.
func TestBulkCreatePVs(t *testing.T) {
	const n = 500
	e := newGlusterEnv(t)
	pvFile := filepath.Join(e.dir, "pvs-flex.yaml")

	start := time.Now()
	out, code := e.subvolctl(t, "bulk-create", "--count", fmt.Sprint(n), "--size", "1Mi", "--pv-out", pvFile, "-o", "json")
	require.Equal(t, exitOK, code, out)
	t.Logf("bulk-create of %d subvolumes: %s", n, time.Since(start).Round(time.Millisecond))
	var v bulkView
	require.NoError(t, json.Unmarshal([]byte(out), &v))
	require.Equal(t, n, v.Count)

	// What Gluster has: 500 limits of 1 MiB.
	limits, err := e.c.QuotaLimits(context.Background())
	require.NoError(t, err)
	assert.Len(t, limits, n)
	assert.Equal(t, fmt.Sprint(quota.MiB), limits["/00-00"])
	assert.Equal(t, fmt.Sprint(quota.MiB), limits["/01-f3"])

	data, err := os.ReadFile(pvFile)
	require.NoError(t, err)
	pvs := decodePVs(t, data)
	require.Len(t, pvs, n)
	names := map[string]bool{}
	for i, pv := range pvs {
		dir := fmt.Sprintf("%02x-%02x", i/256, i%256)
		names[pv.Name] = true
		assert.Equal(t, e.c.Volume()+"-"+dir, pv.Name)
		assert.True(t, pv.Spec.Capacity.Storage().Equal(resource.MustParse("1Mi")), "%s", pv.Spec.Capacity.Storage())
		assert.Equal(t, corev1.PersistentVolumeReclaimRetain, pv.Spec.PersistentVolumeReclaimPolicy)
		require.NotNil(t, pv.Spec.FlexVolume, pv.Name)
		assert.Equal(t, "rht/glfs-subvol", pv.Spec.FlexVolume.Driver)
		assert.Equal(t, map[string]string{
			"cluster": strings.Join(e.c.Servers(), ":"), "volume": e.c.Volume(), "dir": dir,
		}, pv.Spec.FlexVolume.Options)
		assert.Equal(t, dir, pv.Labels["subdir"])
	}
	assert.Len(t, names, n, "PV names are unique")

	// Again (idempotent), with the glusterfs and the CSI sources.
	for _, src := range []string{"glusterfs", "csi"} {
		file := filepath.Join(e.dir, "pvs-"+src+".yaml")
		out, code := e.subvolctl(t, "bulk-create", "--count", fmt.Sprint(n), "--size", "1Mi",
			"--pv-out", file, "--pv-source", src, "--parallel", "8")
		require.Equal(t, exitOK, code, out)
		data, err := os.ReadFile(file)
		require.NoError(t, err)
		pvs := decodePVs(t, data)
		require.Len(t, pvs, n)
		last := pvs[n-1]
		switch src {
		case "glusterfs":
			require.NotNil(t, last.Spec.Glusterfs)
			assert.Equal(t, "glusterfs-cluster", last.Spec.Glusterfs.EndpointsName)
			assert.Equal(t, e.c.Volume()+"/01-f3", last.Spec.Glusterfs.Path)
		case "csi":
			require.NotNil(t, last.Spec.CSI)
			assert.Equal(t, "csi.subvolkit.io", last.Spec.CSI.Driver)
			assert.Equal(t, e.c.Volume()+"/01-f3", last.Spec.CSI.VolumeHandle)
		}
	}

	// usage and list see all of them.
	out, code = e.subvolctl(t, "usage", "-o", "json")
	require.Equal(t, exitOK, code, out)
	var us []usageView
	require.NoError(t, json.Unmarshal([]byte(out), &us))
	require.Len(t, us, n)
	assert.Equal(t, int64(quota.MiB), us[0].LimitBytes)

	// The backend left nothing behind in its directory.
	_, err = os.Stat(filepath.Join(e.dir, "backend"))
	assert.True(t, os.IsNotExist(err), "the cli backend's MountDir is removed on Close: %v", err)
}

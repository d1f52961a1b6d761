package main

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	snapv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumesnapshot/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"

	"github.com/subvolkit/subvolkit/examples/csi/driver"
)

// TestDeployManifestsDecode decodes every document in deploy/ strictly
// (unknown or duplicate fields fail) with client-go's scheme and
// external-snapshotter's types, and checks that the pieces fit together:
// names, service accounts, the pools file, the driver's flags.
func TestDeployManifestsDecode(t *testing.T) {
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	if err := snapv1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	dec := serializer.NewCodecFactory(scheme, serializer.EnableStrict).UniversalDeserializer()
	files, err := filepath.Glob("deploy/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests in deploy/: %v", err)
	}
	var objs []runtime.Object
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(b)))
		for i := 0; ; i++ {
			doc, err := r.Read()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			if len(bytes.TrimSpace(doc)) == 0 {
				continue
			}
			obj, gvk, err := dec.Decode(doc, nil, nil)
			if err != nil {
				t.Errorf("%s, document %d: %v", f, i, err)
				continue
			}
			t.Logf("%s: %s", f, gvk.Kind)
			objs = append(objs, obj)
		}
	}
	var (
		name     string
		sas      = map[string]bool{}
		pools    map[string]*driver.PoolConfig
		classes  []*storagev1.StorageClass
		snapCls  []*snapv1.VolumeSnapshotClass
		podSpecs = map[string]*corev1.PodSpec{}
		kinds    = map[string]int{}
	)
	for _, o := range objs {
		switch o := o.(type) {
		case *storagev1.CSIDriver:
			name = o.Name
			if o.Spec.AttachRequired == nil || *o.Spec.AttachRequired {
				t.Errorf("CSIDriver: attachRequired must be false (no ControllerPublish)")
			}
		case *corev1.ServiceAccount:
			sas[o.Namespace+"/"+o.Name] = true
		case *corev1.ConfigMap:
			p, err := driver.ParsePools([]byte(o.Data["pools.yaml"]))
			if err != nil {
				t.Errorf("ConfigMap %s: pools.yaml: %v", o.Name, err)
			}
			pools = p
		case *storagev1.StorageClass:
			classes = append(classes, o)
		case *snapv1.VolumeSnapshotClass:
			snapCls = append(snapCls, o)
		case *appsv1.Deployment:
			podSpecs["Deployment/"+o.Name] = &o.Spec.Template.Spec
			if o.Spec.Selector == nil || o.Spec.Selector.MatchLabels["app"] != o.Spec.Template.Labels["app"] {
				t.Errorf("Deployment %s: selector does not match its template", o.Name)
			}
		case *appsv1.DaemonSet:
			podSpecs["DaemonSet/"+o.Name] = &o.Spec.Template.Spec
			if o.Spec.Selector == nil || o.Spec.Selector.MatchLabels["app"] != o.Spec.Template.Labels["app"] {
				t.Errorf("DaemonSet %s: selector does not match its template", o.Name)
			}
		}
		kinds[runtimeKind(scheme, o)]++
	}
	for _, k := range []string{"CSIDriver", "Deployment", "DaemonSet", "ClusterRole", "ClusterRoleBinding", "ConfigMap",
		"StorageClass", "VolumeSnapshotClass", "PersistentVolumeClaim", "VolumeSnapshot", "ServiceAccount", "Namespace"} {
		if kinds[k] == 0 {
			t.Errorf("deploy/ has no %s", k)
		}
	}
	if name != driver.DefaultName {
		t.Errorf("CSIDriver name %q, want %q", name, driver.DefaultName)
	}
	for _, sc := range classes {
		if sc.Provisioner != name {
			t.Errorf("StorageClass %s: provisioner %q, want %q", sc.Name, sc.Provisioner, name)
		}
		if pools[sc.Parameters["pool"]] == nil {
			t.Errorf("StorageClass %s: pool %q is not in the pools ConfigMap", sc.Name, sc.Parameters["pool"])
		}
	}
	for _, vc := range snapCls {
		if vc.Driver != name {
			t.Errorf("VolumeSnapshotClass %s: driver %q, want %q", vc.Name, vc.Driver, name)
		}
	}
	wantSidecars := map[string][]string{
		"Deployment/subvolkit-csi-controller": {"csi-provisioner", "csi-resizer", "csi-snapshotter", "liveness-probe", "subvolkit-csi"},
		"DaemonSet/subvolkit-csi-node":        {"node-driver-registrar", "liveness-probe", "subvolkit-csi"},
	}
	for key, want := range wantSidecars {
		spec := podSpecs[key]
		if spec == nil {
			t.Errorf("no %s", key)
			continue
		}
		if !sas["subvolkit-csi/"+spec.ServiceAccountName] {
			t.Errorf("%s: service account %q is not defined", key, spec.ServiceAccountName)
		}
		have := map[string]corev1.Container{}
		for _, c := range spec.Containers {
			have[c.Name] = c
		}
		for _, w := range want {
			if _, ok := have[w]; !ok {
				t.Errorf("%s: no %s container", key, w)
			}
		}
		if err := checkFlags(have["subvolkit-csi"].Args); err != nil {
			t.Errorf("%s: driver args: %v", key, err)
		}
		if strings.HasPrefix(key, "DaemonSet") {
			bidi := 0
			for _, m := range have["subvolkit-csi"].VolumeMounts {
				if m.MountPropagation != nil && *m.MountPropagation == corev1.MountPropagationBidirectional {
					bidi++
				}
			}
			if bidi < 2 {
				t.Errorf("%s: the kubelet and state directories need Bidirectional mount propagation", key)
			}
		}
	}
	df, err := os.ReadFile("Dockerfile")
	if err != nil || !bytes.Contains(df, []byte("glusterfs-client")) {
		t.Errorf("Dockerfile must install glusterfs-client: %v", err)
	}
}

func runtimeKind(s *runtime.Scheme, o runtime.Object) string {
	gvks, _, err := s.ObjectKinds(o)
	if err != nil || len(gvks) == 0 {
		return ""
	}
	return gvks[0].Kind
}

// checkFlags parses the driver's arguments with its own flag set.
func checkFlags(args []string) error {
	expanded := make([]string, len(args))
	for i, a := range args {
		expanded[i] = strings.ReplaceAll(a, "$(NODE_NAME)", "node-1")
	}
	_, err := parseFlags(expanded)
	return err
}

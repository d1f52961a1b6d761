package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"

	"github.com/subvolkit/subvolkit"
	"github.com/subvolkit/subvolkit/examples/provisioner/provision"
)

func TestParseFlags(t *testing.T) {
	f, err := parseFlags(nil, os.Stderr)
	if err != nil || f.name != provision.DefaultName || !f.leaderElect {
		t.Fatalf("defaults: %+v %v", f, err)
	}
	if _, err := parseFlags([]string{"--provisioner-name=a/b/c"}, os.Stderr); err == nil {
		t.Error("a name with two slashes was accepted")
	}
	if _, err := parseFlags([]string{"extra"}, os.Stderr); err == nil {
		t.Error("a stray argument was accepted")
	}
}

// TestProvisionerOnKubernetes runs the provisioner against a real control
// plane (etcd, kube-apiserver, kube-controller-manager's PV binder) and real
// GlusterFS, one subtest per scenario.
func TestProvisionerOnKubernetes(t *testing.T) {
	e := newEnv(t)
	sc := e.class(t, "svk", e.cliParams("gidMin", "5000", "gidMax", "5999"), func(sc *storagev1.StorageClass) {
		sc.AllowVolumeExpansion = ptr(true)
	})
	const timeout = 60 * time.Second

	t.Run("BoundQuotaEndpoints", func(t *testing.T) {
		ns := e.namespace(t)
		pvc := e.claim(t, ns, "data", sc.Name, "20Mi")
		pvc, pv := e.bound(t, ns, pvc.Name, timeout)
		uid := string(pvc.UID)
		name := "pvc-" + uid
		if pv.Name != name || pv.Annotations[provision.AnnSubvolume] != name {
			t.Fatalf("PV %s subvolume %q, want %s", pv.Name, pv.Annotations[provision.AnnSubvolume], name)
		}
		gid, err := strconv.Atoi(pv.Annotations[provision.AnnGID])
		if err != nil || gid < 5000 || gid > 5999 {
			t.Errorf("gid annotation %q, want one in [5000, 5999]", pv.Annotations[provision.AnnGID])
		}
		st, err := os.Stat(filepath.Join(e.volMnt, name))
		if err != nil {
			t.Fatalf("subvolume directory: %v", err)
		}
		if g := st.Sys().(*syscall.Stat_t).Gid; int(g) != gid {
			t.Errorf("subvolume group %d, want the PV's gid %d", g, gid)
		}
		epName := "glusterfs-dynamic-" + uid
		if g := pv.Spec.Glusterfs; g == nil || g.EndpointsName != epName || g.Path != e.gc.Volume()+"/"+name {
			t.Fatalf("glusterfs source %+v, want endpoints %s path %s/%s", g, epName, e.gc.Volume(), name)
		}
		ep, err := e.client.CoreV1().Endpoints(ns).Get(t.Context(), epName, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if ep.Labels[provision.LabelPVCUID] != uid || ep.Labels[provision.LabelPVCName] != "data" {
			t.Errorf("endpoints labels %v", ep.Labels)
		}
		if ips := ep.Subsets[0].Addresses; len(ips) != 1 || ips[0].IP != e.gc.Servers()[0] {
			t.Errorf("endpoints addresses %v, want %v", ips, e.gc.Servers())
		}
		svc, err := e.client.CoreV1().Services(ns).Get(t.Context(), epName, metav1.GetOptions{})
		if err != nil || svc.Labels[provision.LabelPVCUID] != uid {
			t.Fatalf("service: %v %v", err, svc)
		}

		// The quota holds through a mount of the PV's own source.
		mp := e.mountPV(t, pv)
		n, err := writeUntilFull(filepath.Join(mp, "fill"), 60<<20)
		if !errors.Is(err, syscall.EDQUOT) {
			t.Fatalf("wrote %d bytes into a 20Mi claim, error %v, want EDQUOT", n, err)
		}
		if n < 16<<20 || n > 26<<20 {
			t.Errorf("EDQUOT after %d MiB, want about 20", n>>20)
		}
		t.Logf("EDQUOT after %.1f MiB in a 20Mi claim", float64(n)/(1<<20))

		// Endpoints and Service deleted by someone come back.
		if err := e.client.CoreV1().Services(ns).Delete(t.Context(), epName, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		if err := e.client.CoreV1().Endpoints(ns).Delete(t.Context(), epName, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		poll(t, 20*time.Second, "endpoints and service recreated", func() (bool, error) {
			_, err1 := e.client.CoreV1().Endpoints(ns).Get(t.Context(), epName, metav1.GetOptions{})
			_, err2 := e.client.CoreV1().Services(ns).Get(t.Context(), epName, metav1.GetOptions{})
			return err1 == nil && err2 == nil, errors.Join(err1, err2)
		}, e.log)

		// Deleting the claim removes the subvolume, Endpoints and Service.
		_ = syscall.Unmount(mp, syscall.MNT_DETACH)
		e.deleteClaim(t, ns, pvc.Name)
		e.pvGone(t, pv.Name, timeout)
		if !e.subvolGone(name) {
			t.Errorf("subvolume %s still on the volume after its claim was deleted", name)
		}
		if _, err := e.client.CoreV1().Endpoints(ns).Get(t.Context(), epName, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("endpoints after delete: %v", err)
		}
		if _, err := e.client.CoreV1().Services(ns).Get(t.Context(), epName, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("service after delete: %v", err)
		}
	})

	t.Run("RetainAndArchive", func(t *testing.T) {
		ns := e.namespace(t)
		retain := e.class(t, "svk-retain", e.cliParams(), func(sc *storagev1.StorageClass) {
			sc.ReclaimPolicy = ptr(v1.PersistentVolumeReclaimRetain)
		})
		archive := e.class(t, "svk-archive", e.cliParams("onDelete", "archive"))

		pvc := e.claim(t, ns, "keep", retain.Name, "10Mi")
		_, pv := e.bound(t, ns, pvc.Name, timeout)
		e.deleteClaim(t, ns, pvc.Name)
		poll(t, timeout, "retained PV released", func() (bool, error) {
			cur, err := e.client.CoreV1().PersistentVolumes().Get(t.Context(), pv.Name, metav1.GetOptions{})
			return err == nil && cur.Status.Phase == v1.VolumeReleased, err
		}, nil)
		if _, err := e.pool.Get(t.Context(), pv.Annotations[provision.AnnSubvolume]); err != nil {
			t.Errorf("Retain: the subvolume is gone: %v", err)
		}
		// The admin deletes the PV: the subvolume stays (Retain).
		if err := e.client.CoreV1().PersistentVolumes().Delete(t.Context(), pv.Name, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		e.pvGone(t, pv.Name, timeout)
		if _, err := e.pool.Get(t.Context(), pv.Annotations[provision.AnnSubvolume]); err != nil {
			t.Errorf("Retain: the subvolume is gone after the PV was deleted: %v", err)
		}
		_ = e.pool.Delete(t.Context(), pv.Annotations[provision.AnnSubvolume], nil)

		pvc = e.claim(t, ns, "old", archive.Name, "10Mi")
		_, pv = e.bound(t, ns, pvc.Name, timeout)
		name := pv.Annotations[provision.AnnSubvolume]
		if err := os.WriteFile(filepath.Join(e.volMnt, name, "precious"), []byte("archived data"), 0o644); err != nil {
			t.Fatal(err)
		}
		e.deleteClaim(t, ns, pvc.Name)
		e.pvGone(t, pv.Name, timeout)
		if _, err := e.pool.Get(t.Context(), name); !errors.Is(err, subvolkit.ErrNotFound) {
			t.Errorf("archive: the subvolume is still in the pool: %v", err)
		}
		found := ""
		_ = filepath.WalkDir(e.volMnt, func(p string, d os.DirEntry, err error) error {
			if err == nil && d.Name() == "precious" && strings.Contains(p, name) {
				found = p
			}
			return nil
		})
		if found == "" || strings.HasPrefix(found, filepath.Join(e.volMnt, name)+"/") {
			t.Errorf("archive: the data was not moved out of the pool (found at %q)", found)
		} else if b, _ := os.ReadFile(found); string(b) != "archived data" {
			t.Errorf("archive: %s holds %q", found, b)
		}
	})

	t.Run("TwentyAtOnce", func(t *testing.T) {
		ns := e.namespace(t)
		const n = 20
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				e.claim(t, ns, fmt.Sprintf("c%02d", i), sc.Name, "10Mi")
			}()
		}
		wg.Wait()
		gids := map[string]string{}
		var pvs []string
		for i := range n {
			_, pv := e.bound(t, ns, fmt.Sprintf("c%02d", i), 2*timeout)
			g := pv.Annotations[provision.AnnGID]
			if other, dup := gids[g]; dup {
				t.Errorf("gid %s given to %s and %s", g, other, pv.Name)
			}
			gids[g] = pv.Name
			pvs = append(pvs, pv.Name)
			if !e.subvolExists(pv.Annotations[provision.AnnSubvolume]) {
				t.Errorf("no subvolume for %s", pv.Name)
			}
		}
		before := e.poolNames(t)
		for i := range n {
			e.deleteClaim(t, ns, fmt.Sprintf("c%02d", i))
		}
		for _, pv := range pvs {
			e.pvGone(t, pv, 2*timeout)
		}
		after := e.poolNames(t)
		for _, pv := range pvs {
			if !before[pv] {
				t.Errorf("%s was not in the pool before deletion", pv)
			}
			if after[pv] {
				t.Errorf("%s leaked: still in the pool", pv)
			}
		}
		e.noObjectsLeft(t, ns)
	})

	t.Run("SameNameRecreated", func(t *testing.T) {
		ns := e.namespace(t)
		first := e.claim(t, ns, "same", sc.Name, "10Mi")
		_, pv1 := e.bound(t, ns, "same", timeout)
		e.deleteClaim(t, ns, "same")
		poll(t, timeout, "old claim gone", func() (bool, error) {
			_, err := e.client.CoreV1().PersistentVolumeClaims(ns).Get(t.Context(), "same", metav1.GetOptions{})
			return apierrors.IsNotFound(err), nil
		}, nil)
		second := e.claim(t, ns, "same", sc.Name, "10Mi")
		_, pv2 := e.bound(t, ns, "same", timeout)
		if first.UID == second.UID || pv1.Name == pv2.Name || pv1.Annotations[provision.AnnSubvolume] == pv2.Annotations[provision.AnnSubvolume] {
			t.Fatalf("re-created claim reused %s", pv1.Name)
		}
		e.pvGone(t, pv1.Name, timeout)
		ep2 := "glusterfs-dynamic-" + string(second.UID)
		if _, err := e.client.CoreV1().Endpoints(ns).Get(t.Context(), ep2, metav1.GetOptions{}); err != nil {
			t.Errorf("the new claim's endpoints were touched by the old claim's deletion: %v", err)
		}
		if _, err := e.client.CoreV1().Endpoints(ns).Get(t.Context(), "glusterfs-dynamic-"+string(first.UID), metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("the old claim's endpoints: %v", err)
		}
		if !e.subvolExists(pv2.Annotations[provision.AnnSubvolume]) || !e.subvolGone(pv1.Annotations[provision.AnnSubvolume]) {
			t.Errorf("subvolumes: old %v new %v", e.subvolExists(pv1.Annotations[provision.AnnSubvolume]), e.subvolExists(pv2.Annotations[provision.AnnSubvolume]))
		}
		e.deleteClaim(t, ns, "same")
		e.pvGone(t, pv2.Name, timeout)
	})

	t.Run("LongClaimName", func(t *testing.T) {
		ns := e.namespace(t)
		long := strings.Repeat("a", 100) + ".with-dots." + strings.Repeat("b", 100)
		pvc := e.claim(t, ns, long, sc.Name, "10Mi")
		_, pv := e.bound(t, ns, long, timeout)
		ep, err := e.client.CoreV1().Endpoints(ns).Get(t.Context(), "glusterfs-dynamic-"+string(pvc.UID), metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if v := ep.Labels[provision.LabelPVCName]; len(v) > 63 || !strings.HasPrefix(v, "aaaa") {
			t.Errorf("label value %q", v)
		}
		e.deleteClaim(t, ns, long)
		e.pvGone(t, pv.Name, timeout)
	})

	t.Run("Clone", func(t *testing.T) {
		ns := e.namespace(t)
		src := e.claim(t, ns, "src", sc.Name, "10Mi")
		_, srcPV := e.bound(t, ns, src.Name, timeout)
		mp := e.mountPV(t, srcPV)
		if err := os.WriteFile(filepath.Join(mp, "hello"), []byte("cloned data"), 0o644); err != nil {
			t.Fatal(err)
		}
		_ = syscall.Unmount(mp, syscall.MNT_DETACH)
		e.claim(t, ns, "by-annotation", sc.Name, "10Mi", func(c *v1.PersistentVolumeClaim) {
			c.Annotations = map[string]string{provision.AnnCloneRequest: ns + "/src"}
		})
		e.claim(t, ns, "by-datasource", sc.Name, "20Mi", func(c *v1.PersistentVolumeClaim) {
			c.Spec.DataSource = &v1.TypedLocalObjectReference{Kind: "PersistentVolumeClaim", Name: "src"}
		})
		var pvs []string
		for _, name := range []string{"by-annotation", "by-datasource"} {
			_, pv := e.bound(t, ns, name, timeout)
			pvs = append(pvs, pv.Name)
			if got := pv.Annotations[provision.AnnCloneOf]; got != ns+"/src" {
				t.Errorf("%s: %s = %q", name, provision.AnnCloneOf, got)
			}
			b, err := os.ReadFile(filepath.Join(e.mountPV(t, pv), "hello"))
			if err != nil || string(b) != "cloned data" {
				t.Errorf("%s: read %q, %v", name, b, err)
			}
		}
		for _, name := range []string{"src", "by-annotation", "by-datasource"} {
			e.deleteClaim(t, ns, name)
		}
		for _, pv := range append(pvs, srcPV.Name) {
			e.pvGone(t, pv, timeout)
		}
	})

	t.Run("Expand", func(t *testing.T) {
		ns := e.namespace(t)
		pvc := e.claim(t, ns, "grow", sc.Name, "20Mi")
		pvc, pv := e.bound(t, ns, pvc.Name, timeout)
		// The binder and the provisioner may update the claim meanwhile:
		// retry a conflicting update on a fresh copy.
		err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
			c, err := e.client.CoreV1().PersistentVolumeClaims(ns).Get(t.Context(), pvc.Name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			c.Spec.Resources.Requests[v1.ResourceStorage] = resource.MustParse("40Mi")
			pvc, err = e.client.CoreV1().PersistentVolumeClaims(ns).Update(t.Context(), c, metav1.UpdateOptions{})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		want := resource.MustParse("40Mi")
		poll(t, timeout, "claim expanded", func() (bool, error) {
			c, err := e.client.CoreV1().PersistentVolumeClaims(ns).Get(t.Context(), pvc.Name, metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			q := c.Status.Capacity[v1.ResourceStorage]
			return q.Cmp(want) == 0, nil
		}, func() string { return e.events(ns, pvc.Name) + e.log() })
		cur, err := e.client.CoreV1().PersistentVolumes().Get(t.Context(), pv.Name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if q := cur.Spec.Capacity[v1.ResourceStorage]; q.Cmp(want) != 0 {
			t.Errorf("PV capacity %s, want 40Mi", q.String())
		}
		limits, err := e.gc.QuotaLimits(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if got := limits["/"+pv.Name]; got != strconv.Itoa(40<<20) {
			t.Errorf("quota limit of /%s = %q, want %d", pv.Name, got, 40<<20)
		}
		n, err := writeUntilFull(filepath.Join(e.mountPV(t, cur), "fill"), 30<<20)
		if err != nil {
			t.Errorf("writing 30 MiB into the expanded claim: %v after %d bytes", err, n)
		}
		// Shrinking: the API server refuses it, the volume stays.
		c, err := e.client.CoreV1().PersistentVolumeClaims(ns).Get(t.Context(), pvc.Name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		c.Spec.Resources.Requests[v1.ResourceStorage] = resource.MustParse("10Mi")
		if _, err := e.client.CoreV1().PersistentVolumeClaims(ns).Update(t.Context(), c, metav1.UpdateOptions{}); !apierrors.IsInvalid(err) {
			t.Errorf("shrinking a claim: %v, want the API server's Invalid", err)
		}
		e.deleteClaim(t, ns, pvc.Name)
		e.pvGone(t, pv.Name, timeout)
	})

	t.Run("StorageClassGone", func(t *testing.T) {
		ns := e.namespace(t)
		gone := e.class(t, "svk-gone", e.cliParams())
		pvc := e.claim(t, ns, "orphan", gone.Name, "10Mi")
		_, pv := e.bound(t, ns, pvc.Name, timeout)
		if err := e.client.StorageV1().StorageClasses().Delete(t.Context(), gone.Name, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		// A fresh provisioner (no pool open for it) deletes with the PV alone.
		e.stopProvisioner()
		e.startProvisioner()
		e.deleteClaim(t, ns, pvc.Name)
		e.pvGone(t, pv.Name, timeout)
		if !e.subvolGone(pv.Annotations[provision.AnnSubvolume]) {
			t.Error("the subvolume survived its claim after its StorageClass was deleted")
		}
	})

	t.Run("KilledMidProvisioning", func(t *testing.T) {
		ns := e.namespace(t)
		const n = 6
		before := e.poolNames(t)
		for i := range n {
			e.claim(t, ns, fmt.Sprintf("k%d", i), sc.Name, "10Mi")
		}
		// Kill as soon as the first subvolume appears.
		poll(t, timeout, "provisioning started", func() (bool, error) {
			return len(e.poolNames(t)) > len(before), nil
		}, e.log)
		e.killProvisioner()
		made := len(e.poolNames(t)) - len(before)
		t.Logf("killed after %d of %d subvolumes", made, n)
		e.startProvisioner()
		uids := map[string]bool{}
		for i := range n {
			pvc, pv := e.bound(t, ns, fmt.Sprintf("k%d", i), 2*timeout)
			uids["pvc-"+string(pvc.UID)] = true
			if pv.Annotations[provision.AnnSubvolume] != "pvc-"+string(pvc.UID) {
				t.Errorf("claim %s: subvolume %s", pvc.Name, pv.Annotations[provision.AnnSubvolume])
			}
		}
		after := e.poolNames(t)
		var extra []string
		for name := range after {
			if !before[name] && !uids[name] {
				extra = append(extra, name)
			}
		}
		if len(after)-len(before) != n || len(extra) > 0 {
			t.Errorf("%d new subvolumes for %d claims; extra: %v", len(after)-len(before), n, extra)
		}
		for i := range n {
			e.deleteClaim(t, ns, fmt.Sprintf("k%d", i))
		}
		poll(t, 2*timeout, "all deleted", func() (bool, error) {
			return len(e.poolNames(t)) == len(before), nil
		}, e.log)
	})

	t.Run("BadParameters", func(t *testing.T) {
		ns := e.namespace(t)
		cases := []struct {
			name   string
			params map[string]string
			want   string
		}{
			{"unknown-key", e.cliParams("colour", "blue"), `unknown parameter "colour"`},
			{"gid-range", e.cliParams("gidMin", "7000", "gidMax", "6000"), "gidMin 7000 is greater than gidMax 6000"},
			{"volumetype", e.cliParams("volumetype", "replicate:x"), `volumetype "replicate:x"`},
			{"prefix-too-long", e.cliParams("customepnameprefix", strings.Repeat("p", 30)), "more than 26"},
			{"backend", e.cliParams("backend", "ceph"), `unknown backend "ceph"`},
		}
		before := e.poolNames(t)
		for _, c := range cases {
			e.class(t, "bad-"+c.name, c.params)
			e.claim(t, ns, c.name, "bad-"+c.name, "10Mi")
		}
		for _, c := range cases {
			poll(t, timeout, c.name+": failure event", func() (bool, error) {
				ev := e.events(ns, c.name)
				return strings.Contains(ev, "ProvisioningFailed") && strings.Contains(ev, c.want) && strings.Contains(ev, "invalid argument"), nil
			}, func() string { return e.events(ns, c.name) })
			pvc, err := e.client.CoreV1().PersistentVolumeClaims(ns).Get(t.Context(), c.name, metav1.GetOptions{})
			if err != nil || pvc.Status.Phase != v1.ClaimPending {
				t.Errorf("%s: phase %v, %v", c.name, pvc.Status.Phase, err)
			}
		}
		if after := e.poolNames(t); len(after) != len(before) {
			t.Errorf("bad classes made subvolumes: %d before, %d after", len(before), len(after))
		}
	})

	t.Run("FlexAndCSISources", func(t *testing.T) {
		ns := e.namespace(t)
		e.class(t, "svk-flex", e.cliParams("pvType", "flex"))
		e.class(t, "svk-csi", e.cliParams("pvType", "csi"))
		e.claim(t, ns, "flex", "svk-flex", "10Mi")
		e.claim(t, ns, "csi", "svk-csi", "10Mi")
		pvc, pv := e.bound(t, ns, "flex", timeout)
		name := "pvc-" + string(pvc.UID)
		if f := pv.Spec.FlexVolume; f == nil || f.Driver != provision.FlexDriver || f.Options["volume"] != e.gc.Volume() ||
			f.Options["dir"] != name || f.Options["cluster"] != strings.Join(e.gc.Servers(), ":") {
			t.Errorf("flex source %+v", pv.Spec.FlexVolume)
		}
		pvc, pv2 := e.bound(t, ns, "csi", timeout)
		if c := pv2.Spec.CSI; c == nil || c.Driver != provision.CSIDriver || c.VolumeHandle != e.gc.Volume()+"/pvc-"+string(pvc.UID) {
			t.Errorf("csi source %+v", pv2.Spec.CSI)
		}
		e.deleteClaim(t, ns, "flex")
		e.deleteClaim(t, ns, "csi")
		e.pvGone(t, pv.Name, timeout)
		e.pvGone(t, pv2.Name, timeout)
	})

	t.Run("Metrics", func(t *testing.T) {
		m := e.scrape(t)
		for _, want := range []string{
			`subvolkit_provisioner_operations_total{operation="provision",result="success"}`,
			`subvolkit_provisioner_operation_duration_seconds_count{operation="delete"}`,
			`subvolkit_provisioner_errors_total{kind="invalid argument",operation="provision"}`,
			`controller_persistentvolumeclaim_provision_total`,
			`subvolkit_operations_total{backend="cli",operation="allocate"}`,
		} {
			if !strings.Contains(m, want) {
				t.Errorf("/metrics lacks %s", want)
			}
		}
	})

	t.Run("WarmClass", func(t *testing.T) {
		// A class with warm 3Mi:2: its pool keeps two 3 MiB subvolumes
		// ready; claims of 3Mi are served from them and the stock refills.
		wc := e.class(t, "svk-warm", e.cliParams("warm", "3Mi:2"))
		ns := e.namespace(t)
		stock := func() int {
			ents, _ := os.ReadDir(e.volMnt) // warm entries live at the volume's root
			n := 0
			for _, d := range ents {
				if strings.HasPrefix(d.Name(), ".subvolkit-warm.3145728.") {
					n++
				}
			}
			return n
		}
		e.claim(t, ns, "w0", wc.Name, "3Mi")
		_, pv := e.bound(t, ns, "w0", timeout)
		if !e.subvolExists(pv.Annotations[provision.AnnSubvolume]) {
			t.Errorf("no subvolume for %s", pv.Name)
		}
		// The first claim made the pool keep the class's stock.
		deadline := time.Now().Add(timeout)
		for stock() < 2 && time.Now().Before(deadline) {
			time.Sleep(200 * time.Millisecond)
		}
		if n := stock(); n < 2 {
			t.Fatalf("warm stock of 3Mi: %d, want 2", n)
		}
		e.claim(t, ns, "w1", wc.Name, "3Mi")
		_, pv1 := e.bound(t, ns, "w1", timeout)
		sub := pv1.Annotations[provision.AnnSubvolume]
		if pv1.Annotations[provision.AnnGID] == "" || !e.subvolExists(sub) {
			t.Errorf("warm-served %s: gid %q, exists %v", pv1.Name, pv1.Annotations[provision.AnnGID], e.subvolExists(sub))
		}
		// The test's own client saw the warm entry (root's) a moment ago
		// and may answer from its attribute cache for about a second.
		var st syscall.Stat_t
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			err := syscall.Stat(filepath.Join(e.volMnt, sub), &st)
			if err == nil && fmt.Sprint(st.Gid) == pv1.Annotations[provision.AnnGID] {
				break
			}
			if time.Now().After(deadline) {
				t.Errorf("warm-served %s: directory gid %d (%v), PV says %s", sub, st.Gid, err, pv1.Annotations[provision.AnnGID])
				break
			}
		}
		for _, c := range []string{"w0", "w1"} {
			e.deleteClaim(t, ns, c)
		}
		e.pvGone(t, pv.Name, timeout)
		e.pvGone(t, pv1.Name, timeout)
	})
}

// poolNames lists the subvolumes on the test volume.
func (e *env) poolNames(t testing.TB) map[string]bool {
	t.Helper()
	svs, err := e.pool.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]bool{}
	for _, sv := range svs {
		m[sv.Name] = true
	}
	return m
}

// noObjectsLeft checks that no Endpoints or Service of the provisioner is
// left in ns.
func (e *env) noObjectsLeft(t *testing.T, ns string) {
	t.Helper()
	sel := metav1.ListOptions{LabelSelector: provision.LabelPVCUID}
	eps, err := e.client.CoreV1().Endpoints(ns).List(t.Context(), sel)
	if err != nil {
		t.Fatal(err)
	}
	svcs, err := e.client.CoreV1().Services(ns).List(t.Context(), sel)
	if err != nil {
		t.Fatal(err)
	}
	if len(eps.Items)+len(svcs.Items) > 0 {
		t.Errorf("%d endpoints and %d services left in %s", len(eps.Items), len(svcs.Items), ns)
	}
}

func ptr[T any](v T) *T { return &v }

package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/yaml"

	"github.com/subvolkit/subvolkit/naming"
	"github.com/subvolkit/subvolkit/quota"
	"github.com/subvolkit/subvolkit/subvol"
)

// PV sources bulk-create can write.
const (
	pvSourceFlex      = "flex"      // flexVolume, driver rht/glfs-subvol (gluster-subvol; examples/flexvolume)
	pvSourceGlusterfs = "glusterfs" // the in-tree glusterfs source: endpoints + "volume/dir"
	pvSourceCSI       = "csi"       // csi.subvolkit.io, volumeHandle "<pool>/<name>"

	flexDriver       = "rht/glfs-subvol"
	defaultCSIDriver = "csi.subvolkit.io"
	maxHexIndex      = 0xffff
)

// bulkFlags are bulk-create's options.
type bulkFlags struct {
	count, start, end int
	size              string
	layout, pattern   string
	parallel          int
	own               ownerFlags
	dryRun            bool

	pvOut, pvSource, pvPrefix, storageClass, reclaim string
	endpoints, csiDriver, csiPool                    string
}

func (a *app) bulkCreateCmd() *cobra.Command {
	var f bulkFlags
	cmd := &cobra.Command{
		Use:   "bulk-create --size SIZE (--count N | --end E) [--start S] [--layout hex | --pattern FMT] [--pv-out FILE]",
		Short: "Create many subvolumes of one size, and PersistentVolume YAML for them (gluster-subvol's creator.sh)",
		Long: `bulk-create creates subvolumes number S to E (or S to S+N-1) of one size, named
by --layout hex (the index's two hex bytes, creator.sh's NN/MM layout as one
directory level: 00-00, 00-01, ..., ff-ff; 0 <= S <= E <= 65535) or by
--pattern, a Go format with one integer verb (pvc-%04d). It is idempotent:
subvolumes that exist with a compatible size are kept.

With --pv-out it writes one PersistentVolume per subvolume (Retain, RWO+RWX)
whose source is --pv-source: flex (driver rht/glfs-subvol, options cluster,
volume, dir: examples/flexvolume), glusterfs (endpoints --endpoints, path
volume/dir) or csi (driver csi.subvolkit.io, volumeHandle <pool>/<name>).`,
		Args: args(0, 0),
		RunE: a.runE(func(ctx context.Context, _ *cobra.Command, _ []string) error {
			return a.bulkCreate(ctx, &f)
		}),
	}
	fl := cmd.Flags()
	fl.IntVarP(&f.count, "count", "n", 0, "number of subvolumes")
	fl.IntVar(&f.start, "start", 0, "first index")
	fl.IntVar(&f.end, "end", -1, "last index (inclusive), instead of --count")
	fl.StringVarP(&f.size, "size", "s", "", "size of each subvolume")
	fl.StringVar(&f.layout, "layout", "hex", "naming: hex (NN-MM) or pattern (see --pattern)")
	fl.StringVar(&f.pattern, "pattern", "", "name format with one integer verb, such as pvc-%04d (implies --layout pattern)")
	fl.IntVar(&f.parallel, "parallel", 4, "allocations in flight")
	f.own.add(cmd)
	fl.BoolVar(&f.dryRun, "dry-run", false, "list the names; create nothing")
	fl.StringVar(&f.pvOut, "pv-out", "", "write PersistentVolume YAML to this file (- for stdout)")
	fl.StringVar(&f.pvSource, "pv-source", pvSourceFlex, "PV volume source: flex, glusterfs or csi")
	fl.StringVar(&f.pvPrefix, "pv-prefix", "", "PV name prefix (default: the volume's name)")
	fl.StringVar(&f.storageClass, "storage-class", "gluster-subvol", "PV storageClassName")
	fl.StringVar(&f.reclaim, "reclaim-policy", string(corev1.PersistentVolumeReclaimRetain), "PV reclaim policy: Retain, Delete or Recycle")
	fl.StringVar(&f.endpoints, "endpoints", "glusterfs-cluster", "Endpoints object of the glusterfs source")
	fl.StringVar(&f.csiDriver, "csi-driver", defaultCSIDriver, "CSI driver name of the csi source")
	fl.StringVar(&f.csiPool, "csi-pool", "", "pool part of the CSI volumeHandle <pool>/<name> (default: the volume's name)")
	_ = cmd.RegisterFlagCompletionFunc("layout", fixedCompletion("hex", "pattern"))
	_ = cmd.RegisterFlagCompletionFunc("pv-source", fixedCompletion(pvSourceFlex, pvSourceGlusterfs, pvSourceCSI))
	return cmd
}

// names returns the subvolume names the flags ask for.
func (f *bulkFlags) names() ([]string, error) {
	if f.pattern != "" {
		f.layout = "pattern"
	}
	first, last := f.start, f.end
	switch {
	case f.count > 0 && f.end >= 0:
		return nil, usageError{fmt.Errorf("give --count or --end, not both")}
	case f.count > 0:
		last = first + f.count - 1
	case f.end < 0:
		return nil, usageError{fmt.Errorf("--count or --end is required")}
	}
	if first < 0 || last < first {
		return nil, usageError{fmt.Errorf("want 0 <= start (%d) <= end (%d)", first, last)}
	}
	var format func(i int) string
	switch f.layout {
	case "hex":
		if last > maxHexIndex {
			return nil, usageError{fmt.Errorf("--layout hex: the last index %d is above %d", last, maxHexIndex)}
		}
		format = func(i int) string { return fmt.Sprintf("%02x-%02x", i/256, i%256) }
	case "pattern":
		if f.pattern == "" || strings.Count(strings.ReplaceAll(f.pattern, "%%", ""), "%") != 1 {
			return nil, usageError{fmt.Errorf("--pattern %q: want a format with exactly one integer verb, such as pvc-%%04d", f.pattern)}
		}
		format = func(i int) string { return fmt.Sprintf(f.pattern, i) }
	default:
		return nil, usageError{fmt.Errorf("--layout %q: want hex or pattern", f.layout)}
	}
	names := make([]string, 0, last-first+1)
	seen := make(map[string]bool, last-first+1)
	for i := first; i <= last; i++ {
		n := format(i)
		if err := naming.ValidateSubvolName(n); err != nil {
			return nil, usageError{fmt.Errorf("index %d: %w", i, err)}
		}
		if seen[n] {
			return nil, usageError{fmt.Errorf("--pattern %q gives %q twice", f.pattern, n)}
		}
		seen[n] = true
		names = append(names, n)
	}
	return names, nil
}

// bulkView is what bulk-create prints with -o json|yaml.
type bulkView struct {
	Count      int          `json:"count"`
	SizeBytes  int64        `json:"sizeBytes"`
	PVFile     string       `json:"pvFile,omitempty"`
	Seconds    float64      `json:"seconds"`
	Subvolumes []subvolView `json:"subvolumes"`
}

func (a *app) bulkCreate(ctx context.Context, f *bulkFlags) error {
	size, err := parseSize("size", f.size)
	if err != nil {
		return err
	}
	names, err := f.names()
	if err != nil {
		return err
	}
	owner, err := f.own.ownership()
	if err != nil {
		return err
	}
	switch f.pvSource {
	case pvSourceFlex, pvSourceGlusterfs, pvSourceCSI:
	default:
		return usageError{fmt.Errorf("--pv-source %q: want flex, glusterfs or csi", f.pvSource)}
	}
	switch corev1.PersistentVolumeReclaimPolicy(f.reclaim) {
	case corev1.PersistentVolumeReclaimRetain, corev1.PersistentVolumeReclaimDelete, corev1.PersistentVolumeReclaimRecycle:
	default:
		return usageError{fmt.Errorf("--reclaim-policy %q: want Retain, Delete or Recycle", f.reclaim)}
	}
	pool, err := a.openPool(ctx)
	if err != nil {
		return err
	}
	if f.dryRun {
		detail := fmt.Sprintf("%d subvolumes of %s", len(names), quota.HumanSize(size))
		if a.output != "table" {
			return a.printData(dryRunView{DryRun: true, Action: "allocate", Names: names, Detail: detail})
		}
		return a.printDryRun("allocate", []string{names[0] + " .. " + names[len(names)-1]}, detail)
	}
	// YAML on stdout leaves no room for anything else there.
	quiet := f.pvOut == "-"
	start := time.Now()
	var b *bar
	if !quiet {
		b = a.newBar(len(names), "allocate")
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	svs := make([]*subvol.Subvol, len(names))
	var (
		mu       sync.Mutex
		firstErr error
	)
	runParallel(len(names), f.parallel, func(i int) {
		if ctx.Err() != nil {
			return
		}
		sv, err := pool.Allocate(ctx, names[i], size, &subvol.AllocateOptions{Owner: owner})
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			if firstErr == nil {
				firstErr = err
				cancel() // stop at the first failure, as creator.sh does
			}
			return
		}
		svs[i] = sv
		b.add()
	})
	if firstErr == nil {
		b.finish()
	}
	done := svs[:0:0]
	for _, sv := range svs {
		if sv != nil {
			done = append(done, sv)
		}
	}
	if f.pvOut != "" && len(done) > 0 {
		if err := a.writePVs(f, done); err != nil {
			return err
		}
	}
	if firstErr != nil {
		return fmt.Errorf("%d of %d subvolumes allocated, then: %w", len(done), len(names), firstErr)
	}
	elapsed := time.Since(start)
	pvFile := f.pvOut
	if quiet {
		pvFile = ""
		a.log.Info("bulk-create done", "count", len(done), "seconds", elapsed.Seconds())
		return nil
	}
	if a.output != "table" {
		return a.printData(bulkView{Count: len(done), SizeBytes: size, PVFile: pvFile, Seconds: elapsed.Seconds(), Subvolumes: viewsOf(done)})
	}
	if pvFile == "" {
		pvFile = "-"
	}
	return a.printTable([]string{"SUBVOLUMES", "SIZE", "FIRST", "LAST", "PV FILE", "ELAPSED"}, [][]string{{
		fmt.Sprint(len(done)), quota.HumanSize(size), done[0].Name, done[len(done)-1].Name, pvFile,
		elapsed.Round(10 * time.Millisecond).String(),
	}})
}

// writePVs writes one PersistentVolume per subvolume, as a YAML stream, to
// f.pvOut (atomically, for a file).
func (a *app) writePVs(f *bulkFlags, svs []*subvol.Subvol) error {
	var buf bytes.Buffer
	for _, sv := range svs {
		pv, err := persistentVolume(f, sv)
		if err != nil {
			return err
		}
		out, err := yaml.Marshal(pv)
		if err != nil {
			return err
		}
		buf.WriteString("---\n")
		buf.Write(out)
	}
	if f.pvOut == "-" {
		_, err := a.stdout.Write(buf.Bytes())
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(f.pvOut), "."+filepath.Base(f.pvOut)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(buf.Bytes()); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), f.pvOut)
}

// persistentVolume is the PV of one subvolume, labelled as creator.sh did
// (cluster, volume, subdir).
func persistentVolume(f *bulkFlags, sv *subvol.Subvol) (*corev1.PersistentVolume, error) {
	dir := strings.TrimPrefix(sv.Path, "/")
	prefix := f.pvPrefix
	if prefix == "" {
		prefix = sv.Volume
	}
	name := strings.ToLower(prefix + "-" + sv.Name)
	if errs := validation.IsDNS1123Subdomain(name); len(errs) > 0 {
		return nil, usageError{fmt.Errorf("PV name %q: %s (choose --pv-prefix)", name, strings.Join(errs, "; "))}
	}
	pv := &corev1.PersistentVolume{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "PersistentVolume"},
		ObjectMeta: metav1.ObjectMeta{
			Name: name,
			Labels: map[string]string{
				"cluster":                labelValue(strings.Join(sv.Servers, "-")),
				"volume":                 labelValue(sv.Volume),
				"subdir":                 labelValue(strings.ReplaceAll(dir, "/", "-")),
				"subvolkit.io/subvolume": labelValue(sv.Name),
			},
		},
		Spec: corev1.PersistentVolumeSpec{
			Capacity: corev1.ResourceList{
				corev1.ResourceStorage: *resource.NewQuantity(sv.SizeBytes, resource.BinarySI),
			},
			AccessModes:                   []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce, corev1.ReadWriteMany},
			PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimPolicy(f.reclaim),
			StorageClassName:              f.storageClass,
		},
	}
	switch f.pvSource {
	case pvSourceFlex:
		pv.Spec.FlexVolume = &corev1.FlexPersistentVolumeSource{
			Driver: flexDriver,
			Options: map[string]string{
				"cluster": strings.Join(sv.Servers, ":"),
				"volume":  sv.Volume,
				"dir":     dir,
			},
		}
	case pvSourceGlusterfs:
		pv.Spec.Glusterfs = &corev1.GlusterfsPersistentVolumeSource{
			EndpointsName: f.endpoints,
			Path:          sv.Volume + sv.Path,
		}
	case pvSourceCSI:
		poolID := f.csiPool
		if poolID == "" {
			poolID = sv.Volume
		}
		pv.Spec.CSI = &corev1.CSIPersistentVolumeSource{
			Driver:       f.csiDriver,
			VolumeHandle: poolID + "/" + sv.Name,
			VolumeAttributes: map[string]string{
				"servers": strings.Join(sv.Servers, ","),
				"volume":  sv.Volume,
				"path":    sv.Path,
			},
		}
	}
	return pv, nil
}

// labelValue makes s a valid label value: at most 63 characters of
// letters, digits, '-', '_' and '.', starting and ending with a letter or
// digit. Other characters become '-'.
func labelValue(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			b[i] = '-'
		}
	}
	if len(b) > validation.LabelValueMaxLength {
		b = b[:validation.LabelValueMaxLength]
	}
	return strings.Trim(string(b), "-_.")
}

package main

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/uuid"

	"github.com/subvolkit/subvolkit/quota"
)

// BenchmarkClaimToBound measures, on the real control plane and real
// GlusterFS, the time from creating N claims at once to each being Bound
// (through kube-controller-manager's binder and this provisioner), against
// N concurrent Pool.Allocate calls on the same volume in the same run.
//
//	go test -run=NONE -bench=ClaimToBound -benchtime=3x ./provisioner/
func BenchmarkClaimToBound(b *testing.B) {
	e := newEnv(b)
	e.class(b, "bench", e.cliParams())
	for _, n := range []int{1, 20} {
		b.Run(fmt.Sprintf("claims=%d", n), func(b *testing.B) {
			b.StopTimer()
			var claim, alloc []time.Duration
			for i := 0; i < b.N; i++ {
				claim = append(claim, e.claimRound(b, n, i)...)
				alloc = append(alloc, e.allocRound(b, n)...)
			}
			b.ReportMetric(p50(claim).Seconds()*1000, "claim-to-bound-p50-ms")
			b.ReportMetric(p50(alloc).Seconds()*1000, "pool-allocate-p50-ms")
			b.ReportMetric(0, "ns/op")
		})
	}
}

func p50(d []time.Duration) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}

// claimRound creates n claims at once and returns each one's time to Bound;
// then deletes them and waits until their PVs are gone (not timed).
func (e *env) claimRound(b *testing.B, n, round int) []time.Duration {
	ctx := context.Background()
	ns := fmt.Sprintf("bench-%d-%d", n, round)
	if _, err := e.client.CoreV1().Namespaces().Create(ctx, &v1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		b.Fatal(err)
	}
	w, err := e.client.CoreV1().PersistentVolumeClaims(ns).Watch(ctx, metav1.ListOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer w.Stop()
	b.StartTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e.claim(b, ns, fmt.Sprintf("c%02d", i), "bench", "10Mi")
		}()
	}
	wg.Wait()
	bound := map[string]time.Duration{}
	timeout := time.After(3 * time.Minute)
	for len(bound) < n {
		select {
		case ev, ok := <-w.ResultChan():
			if !ok {
				b.Fatal("watch closed")
			}
			if c, ok := ev.Object.(*v1.PersistentVolumeClaim); ok && c.Status.Phase == v1.ClaimBound {
				if _, seen := bound[c.Name]; !seen {
					bound[c.Name] = time.Since(start)
				}
			}
		case <-timeout:
			b.Fatalf("%d of %d claims bound after 3 minutes\n%s", len(bound), n, e.log())
		}
	}
	b.StopTimer()
	var pvs []string
	for i := range n {
		c, err := e.client.CoreV1().PersistentVolumeClaims(ns).Get(ctx, fmt.Sprintf("c%02d", i), metav1.GetOptions{})
		if err != nil {
			b.Fatal(err)
		}
		pvs = append(pvs, c.Spec.VolumeName)
		e.deleteClaim(b, ns, c.Name)
	}
	for _, pv := range pvs {
		e.pvGone(b, pv, 3*time.Minute)
	}
	var out []time.Duration
	for _, d := range bound {
		out = append(out, d)
	}
	return out
}

// allocRound runs n concurrent Pool.Allocate calls and returns each one's
// latency; then deletes the subvolumes (not timed).
func (e *env) allocRound(b *testing.B, n int) []time.Duration {
	ctx := context.Background()
	names := make([]string, n)
	out := make([]time.Duration, n)
	for i := range names {
		names[i] = "bench-" + string(uuid.NewUUID())
	}
	b.StartTimer()
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t0 := time.Now()
			_, errs[i] = e.pool.Allocate(ctx, names[i], 10*quota.MiB, nil)
			out[i] = time.Since(t0)
		}()
	}
	wg.Wait()
	b.StopTimer()
	for i, name := range names {
		if errs[i] != nil {
			b.Fatal(errs[i])
		}
		if err := e.pool.Delete(ctx, name, nil); err != nil {
			b.Fatal(err)
		}
	}
	return out
}

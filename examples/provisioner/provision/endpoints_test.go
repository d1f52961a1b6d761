package provision

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	_ "github.com/subvolkit/subvolkit/backend/memory"
)

// TestSyncAfterDeleteMakesNothing: a KeepEndpoints sync that read a claim's
// PV as bound, and reaches the claim while Delete is removing its
// subvolume, Endpoints and Service, waits for Delete and then makes
// nothing again (CI once found a Service left by such a sync).
func TestSyncAfterDeleteMakesNothing(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	client := fake.NewClientset()
	p := New(Config{Client: client})
	defer func() { _ = p.Close() }()
	ref := backendRef{Backend: "memory"}
	pool, err := p.pools.get(ctx, ref, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Allocate(ctx, "sv1", 1<<20, nil); err != nil {
		t.Fatal(err)
	}
	const ns, name, uid = "ns1", "glusterfs-dynamic-u1", "u1"
	if err := p.ensureEndpoints(ctx, ns, name, "claim", uid, []string{"127.0.0.1"}); err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(ref)
	pv := &v1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: "pv1", Annotations: map[string]string{
			AnnEndpoints: ns + "/" + name, AnnBackend: string(raw), AnnSubvolume: "sv1",
		}},
		Spec: v1.PersistentVolumeSpec{ClaimRef: &v1.ObjectReference{Namespace: ns, Name: "claim", UID: uid}},
	}

	// Delete holds the claim's lock (as Delete does) and is in the middle
	// of its work when the sync reaches the same claim.
	unlock, err := p.epLocks.Lock(ctx, ns+"/"+name)
	if err != nil {
		t.Fatal(err)
	}
	synced := make(chan error, 1)
	go func() { synced <- p.syncOne(ctx, pv, ns+"/"+name, ref) }()
	select {
	case err := <-synced:
		t.Fatalf("the sync did not wait for Delete's lock: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	if err := pool.Delete(ctx, "sv1", nil); err != nil {
		t.Fatal(err)
	}
	if err := p.deleteEndpoints(ctx, ns, name, uid); err != nil {
		t.Fatal(err)
	}
	unlock()
	if err := <-synced; err != nil {
		t.Fatalf("sync: %v", err)
	}
	svcs, err := client.CoreV1().Services(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	eps, err := client.CoreV1().Endpoints(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(svcs.Items)+len(eps.Items) != 0 {
		t.Fatalf("the sync made %d Services and %d Endpoints again after Delete", len(svcs.Items), len(eps.Items))
	}

	// A sync of a claim that still has its subvolume makes what is missing.
	if _, err := pool.Allocate(ctx, "sv1", 1<<20, nil); err != nil {
		t.Fatal(err)
	}
	if err := p.syncOne(ctx, pv, ns+"/"+name, ref); err != nil {
		t.Fatal(err)
	}
	if _, err := client.CoreV1().Services(ns).Get(ctx, name, metav1.GetOptions{}); err != nil {
		t.Fatalf("a live claim's Service was not made: %v", err)
	}
}

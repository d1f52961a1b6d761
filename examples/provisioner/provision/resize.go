package provision

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/retry"
	"k8s.io/client-go/util/workqueue"

	"github.com/subvolkit/subvolkit"
)

// Event reasons of the expansion loop (external-resizer's).
const (
	EventResizing       = "Resizing"
	EventResizeFailed   = "VolumeResizeFailed"
	EventResizeDone     = "VolumeResizeSuccessful"
	EventShrinkRefused  = "VolumeShrinkRefused"
	resizeRetryMaxDelay = 2 * time.Minute
)

// ResizeLoop expands the subvolumes of bound claims whose request grew, like
// kubernetes-csi's external-resizer: Pool.Resize to the new request, then
// the PV's capacity, then the claim's status. A request below the volume's
// size is refused with an event (the API server refuses most of them
// already). It returns when ctx is done.
func (p *Provisioner) ResizeLoop(ctx context.Context, workers int) {
	q := workqueue.NewTypedRateLimitingQueue(workqueue.NewTypedItemExponentialFailureRateLimiter[string](500*time.Millisecond, resizeRetryMaxDelay))
	defer q.ShutDown()
	f := informers.NewSharedInformerFactory(p.cfg.Client, 0)
	inf := f.Core().V1().PersistentVolumeClaims().Informer()
	lister := f.Core().V1().PersistentVolumeClaims().Lister()
	add := func(obj any) {
		if k, err := cache.MetaNamespaceKeyFunc(obj); err == nil {
			q.Add(k)
		}
	}
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    add,
		UpdateFunc: func(_, n any) { add(n) },
	}); err != nil {
		p.logger.Error("claims informer", "err", err)
		return
	}
	f.Start(ctx.Done())
	defer f.Shutdown()
	if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
		return
	}
	go func() { <-ctx.Done(); q.ShutDown() }()
	done := make(chan struct{})
	for i := 0; i < max(workers, 1); i++ {
		go func() {
			defer func() { done <- struct{}{} }()
			for {
				key, quit := q.Get()
				if quit {
					return
				}
				ns, name, _ := cache.SplitMetaNamespaceKey(key)
				claim, err := lister.PersistentVolumeClaims(ns).Get(name)
				if err == nil {
					err = p.resizeClaim(ctx, claim)
				}
				if err != nil && ctx.Err() == nil {
					q.AddRateLimited(key)
				} else {
					q.Forget(key)
				}
				q.Done(key)
			}
		}()
	}
	for i := 0; i < max(workers, 1); i++ {
		<-done
	}
}

// resizeClaim expands one claim's volume if its request grew. A nil error
// means there is nothing (more) to do.
func (p *Provisioner) resizeClaim(ctx context.Context, claim *v1.PersistentVolumeClaim) (err error) {
	if claim.Status.Phase != v1.ClaimBound || claim.Spec.VolumeName == "" || claim.DeletionTimestamp != nil {
		return nil
	}
	want, ok := claim.Spec.Resources.Requests[v1.ResourceStorage]
	if !ok {
		return nil
	}
	pv, err := p.cfg.Client.CoreV1().PersistentVolumes().Get(ctx, claim.Spec.VolumeName, metav1.GetOptions{})
	if err != nil {
		return err
	}
	if !p.owns(pv.Annotations[AnnProvisionedBy]) || pv.Annotations[AnnSubvolume] == "" {
		return nil
	}
	have := pv.Spec.Capacity[v1.ResourceStorage]
	status := claim.Status.Capacity[v1.ResourceStorage]
	switch want.Cmp(have) {
	case 0:
		return p.finishResize(ctx, claim, have)
	case -1:
		if want.Cmp(status) < 0 {
			p.event(claim, v1.EventTypeWarning, EventShrinkRefused, "subvolkit: resize %q: %s: requested %s is below the volume's %s: volumes only grow",
				pv.Annotations[AnnSubvolume], subvolkit.FailedPrecondition, want.String(), have.String())
		}
		// The backend rounded up past the request: the claim is served.
		return p.finishResize(ctx, claim, have)
	}

	start := time.Now()
	defer func() { p.cfg.Metrics.observe("resize", start, err) }()
	var ref backendRef
	if err := json.Unmarshal([]byte(pv.Annotations[AnnBackend]), &ref); err != nil {
		return nil // not ours to fix
	}
	pool, err := p.pools.get(ctx, ref, "")
	if err != nil {
		p.event(claim, v1.EventTypeWarning, EventResizeFailed, "%v", err)
		return err
	}
	p.event(claim, v1.EventTypeNormal, EventResizing, "resizing subvolume %s to %s", pv.Annotations[AnnSubvolume], want.String())
	sv, err := pool.Resize(ctx, pv.Annotations[AnnSubvolume], want.Value())
	if err != nil {
		p.event(claim, v1.EventTypeWarning, EventResizeFailed, "%v", err)
		return err
	}
	got := *resourceBytes(sv.SizeBytes)
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur, err := p.cfg.Client.CoreV1().PersistentVolumes().Get(ctx, pv.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		cur.Spec.Capacity[v1.ResourceStorage] = got
		_, err = p.cfg.Client.CoreV1().PersistentVolumes().Update(ctx, cur, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		err = kubeErr("update PV "+pv.Name+" capacity", err)
		p.event(claim, v1.EventTypeWarning, EventResizeFailed, "%v", err)
		return err
	}
	return p.finishResize(ctx, claim, got)
}

// finishResize records size as the claim's capacity once the PV has it.
func (p *Provisioner) finishResize(ctx context.Context, claim *v1.PersistentVolumeClaim, size resource.Quantity) error {
	cur := claim.Status.Capacity[v1.ResourceStorage]
	if cur.Cmp(size) == 0 {
		return nil
	}
	grew := cur.Cmp(size) < 0
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		c, err := p.cfg.Client.CoreV1().PersistentVolumeClaims(claim.Namespace).Get(ctx, claim.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if c.Status.Capacity == nil {
			c.Status.Capacity = v1.ResourceList{}
		}
		c.Status.Capacity[v1.ResourceStorage] = size
		c.Status.Conditions = slices.DeleteFunc(c.Status.Conditions, func(c v1.PersistentVolumeClaimCondition) bool {
			return c.Type == v1.PersistentVolumeClaimResizing || c.Type == v1.PersistentVolumeClaimFileSystemResizePending
		})
		if c.Status.AllocatedResources != nil {
			c.Status.AllocatedResources[v1.ResourceStorage] = size
		}
		c.Status.AllocatedResourceStatuses = nil
		_, err = p.cfg.Client.CoreV1().PersistentVolumeClaims(c.Namespace).UpdateStatus(ctx, c, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		return kubeErr(fmt.Sprintf("update claim %s/%s status", claim.Namespace, claim.Name), err)
	}
	if grew {
		p.event(claim, v1.EventTypeNormal, EventResizeDone, "subvolume resized to %s", size.String())
	}
	return nil
}

func (p *Provisioner) event(obj runtime.Object, typ, reason, format string, args ...any) {
	if p.cfg.Events != nil {
		p.cfg.Events.Eventf(obj, typ, reason, format, args...)
	}
}

package provision

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"time"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"

	"github.com/subvolkit/subvolkit"
	"github.com/subvolkit/subvolkit/naming"
)

func resourceBytes(n int64) *resource.Quantity { return resource.NewQuantity(n, resource.BinarySI) }

// labelValue makes s a valid label value (at most 63 characters).
func labelValue(s string) string {
	s = strings.NewReplacer("/", "-", ":", "-").Replace(s)
	return naming.Truncate(s, naming.MaxDNSLabel)
}

func (p *Provisioner) epLabels(claimName, uid string) map[string]string {
	return map[string]string{
		LabelPVCUID:      uid,
		LabelPVCName:     labelValue(claimName),
		LabelProvisioner: labelValue(p.cfg.Name),
	}
}

// endpointIPs resolves the servers to IP addresses, which is all an
// Endpoints object may hold.
func endpointIPs(ctx context.Context, servers []string) ([]string, error) {
	var ips []string
	for _, s := range servers {
		if ip := net.ParseIP(s); ip != nil {
			ips = append(ips, ip.String())
			continue
		}
		addrs, err := net.DefaultResolver.LookupHost(ctx, s)
		if err != nil {
			return nil, subvolkit.E(subvolkit.Unavailable, "", "", fmt.Errorf("resolve gluster server %q: %w", s, err))
		}
		ips = append(ips, addrs...)
	}
	slices.Sort(ips)
	ips = slices.Compact(ips)
	if len(ips) == 0 {
		return nil, subvolkit.Errorf(subvolkit.FailedPrecondition, "", "", "the pool reports no servers")
	}
	return ips, nil
}

// ensureEndpoints creates, or brings in step with servers, the Endpoints
// and Service ns/name of the claim with uid. An object of that name that is
// not this claim's is never touched (AlreadyExists).
func (p *Provisioner) ensureEndpoints(ctx context.Context, ns, name, claimName, uid string, servers []string) error {
	ips, err := endpointIPs(ctx, servers)
	if err != nil {
		return err
	}
	labels := p.epLabels(claimName, uid)
	//lint:ignore SA1019 the glusterfs PV source (in-tree plugin) reads v1 Endpoints; it has no EndpointSlice form
	subsets := []v1.EndpointSubset{{Ports: []v1.EndpointPort{{Port: 1, Protocol: v1.ProtocolTCP}}}}
	for _, ip := range ips {
		subsets[0].Addresses = append(subsets[0].Addresses, v1.EndpointAddress{IP: ip})
	}
	api := p.cfg.Client.CoreV1()
	ep, err := api.Endpoints(ns).Get(ctx, name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		//lint:ignore SA1019 the glusterfs PV source (in-tree plugin) reads v1 Endpoints; it has no EndpointSlice form
		_, err = api.Endpoints(ns).Create(ctx, &v1.Endpoints{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: labels}, Subsets: subsets}, metav1.CreateOptions{})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			return kubeErr("create endpoints "+ns+"/"+name, err)
		}
	case err != nil:
		return kubeErr("get endpoints "+ns+"/"+name, err)
	default:
		if ep.Labels[LabelPVCUID] != uid {
			return subvolkit.Errorf(subvolkit.AlreadyExists, "", "", "endpoints %s/%s belong to another claim", ns, name)
		}
		if !sameAddresses(ep.Subsets, ips) {
			ep.Subsets = subsets
			if _, err := api.Endpoints(ns).Update(ctx, ep, metav1.UpdateOptions{}); err != nil {
				return kubeErr("update endpoints "+ns+"/"+name, err)
			}
		}
	}
	svc, err := api.Services(ns).Get(ctx, name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		_, err = api.Services(ns).Create(ctx, &v1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: labels},
			Spec:       v1.ServiceSpec{Ports: []v1.ServicePort{{Protocol: v1.ProtocolTCP, Port: 1, TargetPort: intstr.FromInt32(1)}}},
		}, metav1.CreateOptions{})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			return kubeErr("create service "+ns+"/"+name, err)
		}
	case err != nil:
		return kubeErr("get service "+ns+"/"+name, err)
	default:
		if svc.Labels[LabelPVCUID] != uid {
			return subvolkit.Errorf(subvolkit.AlreadyExists, "", "", "service %s/%s belongs to another claim", ns, name)
		}
	}
	return nil
}

//lint:ignore SA1019 the glusterfs PV source (in-tree plugin) reads v1 Endpoints; it has no EndpointSlice form
func sameAddresses(subsets []v1.EndpointSubset, ips []string) bool {
	var have []string
	for _, s := range subsets {
		for _, a := range s.Addresses {
			have = append(have, a.IP)
		}
	}
	slices.Sort(have)
	return slices.Equal(have, ips)
}

// deleteEndpoints deletes the Endpoints and Service ns/name if they belong
// to the claim with uid ("" skips the check).
func (p *Provisioner) deleteEndpoints(ctx context.Context, ns, name, uid string) error {
	api := p.cfg.Client.CoreV1()
	if svc, err := api.Services(ns).Get(ctx, name, metav1.GetOptions{}); err == nil {
		if uid == "" || svc.Labels[LabelPVCUID] == uid {
			if err := api.Services(ns).Delete(ctx, name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &svc.UID}}); err != nil && !apierrors.IsNotFound(err) {
				return kubeErr("delete service "+ns+"/"+name, err)
			}
		}
	} else if !apierrors.IsNotFound(err) {
		return kubeErr("get service "+ns+"/"+name, err)
	}
	if ep, err := api.Endpoints(ns).Get(ctx, name, metav1.GetOptions{}); err == nil {
		if uid == "" || ep.Labels[LabelPVCUID] == uid {
			if err := api.Endpoints(ns).Delete(ctx, name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &ep.UID}}); err != nil && !apierrors.IsNotFound(err) {
				return kubeErr("delete endpoints "+ns+"/"+name, err)
			}
		}
	} else if !apierrors.IsNotFound(err) {
		return kubeErr("get endpoints "+ns+"/"+name, err)
	}
	return nil
}

// kubeErr gives an API error a subvolkit kind.
func kubeErr(what string, err error) error {
	kind := subvolkit.Unavailable
	switch {
	case apierrors.IsInvalid(err), apierrors.IsBadRequest(err):
		kind = subvolkit.InvalidArgument
	case apierrors.IsForbidden(err), apierrors.IsUnauthorized(err):
		kind = subvolkit.PermissionDenied
	case apierrors.IsAlreadyExists(err), apierrors.IsConflict(err):
		kind = subvolkit.AlreadyExists
	case apierrors.IsNotFound(err):
		kind = subvolkit.NotFound
	}
	return subvolkit.E(kind, "", "", fmt.Errorf("%s: %w", what, err))
}

// KeepEndpoints keeps the Endpoints and Services of glusterfs PVs in step
// with their pools' servers: it recreates them when someone deletes them and
// updates their addresses, at once when the informer sees a deletion and
// every interval otherwise. It returns when ctx is done.
func (p *Provisioner) KeepEndpoints(ctx context.Context, interval time.Duration) {
	trigger := make(chan struct{}, 1)
	poke := func() {
		select {
		case trigger <- struct{}{}:
		default:
		}
	}
	f := informers.NewSharedInformerFactoryWithOptions(p.cfg.Client, 0,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = LabelPVCUID }))
	h := cache.ResourceEventHandlerFuncs{DeleteFunc: func(any) { poke() }}
	if _, err := f.Core().V1().Endpoints().Informer().AddEventHandler(h); err != nil {
		p.logger.Error("endpoints informer", "err", err)
	}
	if _, err := f.Core().V1().Services().Informer().AddEventHandler(h); err != nil {
		p.logger.Error("services informer", "err", err)
	}
	f.Start(ctx.Done())
	defer f.Shutdown()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if err := p.syncEndpoints(ctx); err != nil && ctx.Err() == nil {
			p.logger.Warn("endpoints sync", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-trigger:
		case <-t.C:
		}
	}
}

// syncEndpoints runs one pass of KeepEndpoints.
func (p *Provisioner) syncEndpoints(ctx context.Context) error {
	pvs, err := p.cfg.Client.CoreV1().PersistentVolumes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	var errs []error
	for i := range pvs.Items {
		pv := &pvs.Items[i]
		ep := pv.Annotations[AnnEndpoints]
		if ep == "" || pv.Spec.Glusterfs == nil || pv.Spec.ClaimRef == nil || pv.DeletionTimestamp != nil || !p.owns(pv.Annotations[AnnProvisionedBy]) {
			continue
		}
		if pv.Status.Phase == v1.VolumeReleased && pv.Spec.PersistentVolumeReclaimPolicy == v1.PersistentVolumeReclaimDelete {
			continue // being deleted: Delete removes its Endpoints and Service
		}
		var ref backendRef
		if err := json.Unmarshal([]byte(pv.Annotations[AnnBackend]), &ref); err != nil {
			continue
		}
		if err := p.syncOne(ctx, pv, ep, ref); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// syncOne brings the Endpoints and Service ep ("ns/name") of pv in step
// with its subvolume's servers, under ep's lock: Delete removes the
// subvolume before it takes that lock to remove them, so a subvolume
// found here is one whose Endpoints Delete has not removed yet.
func (p *Provisioner) syncOne(ctx context.Context, pv *v1.PersistentVolume, ep string, ref backendRef) error {
	pool, err := p.pools.get(ctx, ref, "")
	if err != nil {
		return err
	}
	unlock, err := p.epLocks.Lock(ctx, ep)
	if err != nil {
		return err
	}
	defer unlock()
	sv, err := pool.Get(ctx, pv.Annotations[AnnSubvolume])
	if err != nil {
		if errors.Is(err, subvolkit.ErrNotFound) {
			return nil
		}
		return err
	}
	ns, name, _ := strings.Cut(ep, "/")
	if err := p.ensureEndpoints(ctx, ns, name, pv.Spec.ClaimRef.Name, string(pv.Spec.ClaimRef.UID), sv.Servers); err != nil {
		return fmt.Errorf("pv %s: %w", pv.Name, err)
	}
	return nil
}

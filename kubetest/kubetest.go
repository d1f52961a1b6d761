// Package kubetest starts a real Kubernetes control plane (etcd,
// kube-apiserver and kube-controller-manager with its PersistentVolume
// binder and expander) on the loopback, for tests of controllers and
// provisioners built on subvolkit, as glustertest starts real GlusterFS.
//
// The binaries are built once per machine from the Go module proxy by
// scripts/build-kube.sh and cached outside the repository, keyed by version.
// This is the public face of the project's harness
// (internal/testutil/kubetest, which holds the code and its own start/stop
// test), so that the examples and users' own tests import only public
// packages.
//
// Typical use:
//
//	cp := kubetest.StartT(t, nil) // stopped in t.Cleanup
//	cfg := cp.Kubeconfig()        // a kubeconfig file for client-go
package kubetest

import (
	"context"
	"testing"

	kt "github.com/subvolkit/subvolkit/internal/testutil/kubetest"
)

// Version is the Kubernetes version the control plane runs.
const Version = kt.Version

// Options tune Start; a nil *Options means the defaults.
type Options = kt.Options

// ControlPlane is a running control plane; Stop ends every process it
// started and removes its directory.
type ControlPlane = kt.ControlPlane

// Prereqs returns why the control plane cannot start here ("" when it can).
func Prereqs() string { return kt.Prereqs() }

// EnsureBinaries builds the binaries into dir if they are missing and
// returns the directory that holds them.
func EnsureBinaries(ctx context.Context, dir string) (string, error) {
	return kt.EnsureBinaries(ctx, dir)
}

// Start starts the control plane and waits until it serves.
func Start(ctx context.Context, opts *Options) (*ControlPlane, error) { return kt.Start(ctx, opts) }

// StartT starts the control plane for a test and stops it in t.Cleanup. It
// skips the test when a prerequisite is missing, and fails it instead under
// CI=true.
func StartT(t testing.TB, opts *Options) *ControlPlane { return kt.StartT(t, opts) }

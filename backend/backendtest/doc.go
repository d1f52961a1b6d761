// Package backendtest is the conformance suite for subvolume backends. Every
// backend in this module runs it, and so can an out-of-tree backend: it
// checks the contract written in package backend's documentation (the error
// kinds each method must return, idempotency through subvol.Pool, sizes
// reported honestly, cancellation that changes nothing, concurrent use), so
// that code written against subvol.Pool behaves the same on every backend.
//
// # Running it
//
// A backend author writes a Harness and calls RunConformanceTests from an
// ordinary test:
//
//	type harness struct{ srv *fakeServer }
//
//	func (h *harness) MakeBackend(ctx context.Context, t *testing.T) (backend.Backend, error) {
//		return mybackend.New(ctx, &mybackend.Options{URL: h.srv.URL})
//	}
//
//	func (h *harness) Options() backendtest.Options {
//		return backendtest.Options{
//			SizeUnit:     quota.GiB,
//			MaxSizeBytes: 100 * quota.GiB,
//			Capabilities: backendtest.Resize | backendtest.Clone | backendtest.Ping,
//			AsTypes:      []any{new(*myclient.Client)},
//		}
//	}
//
//	func (h *harness) Close() { h.srv.Close() }
//
//	func TestConformance(t *testing.T) {
//		backendtest.RunConformanceTests(t, func(ctx context.Context, t *testing.T) (backendtest.Harness, error) {
//			return &harness{srv: startFakeServer(t)}, nil
//		})
//	}
//
// RunConformanceTests runs one flat subtest per behaviour ("Create",
// "DeleteMissing", "ConcurrentAllocateSameName", …), so `go test -run
// 'TestConformance/Clone'` runs one of them. Each subtest calls the
// HarnessMaker, then MakeBackend once, then Options, and closes the backend
// and the harness when it ends. A harness over something expensive (a real
// Gluster cluster) should start it once, outside the HarnessMaker, and let
// the HarnessMaker return a cheap harness over it.
//
// # What the suite assumes
//
//   - The backend may hold subvolumes the suite did not make: the suite gives
//     every subvolume a fresh name ("bt-<random run id>-<test>-<n>", always
//     valid and at most 63 bytes, a DNS-1123 label) so that reruns against a
//     shared cluster never collide, and it deletes what it made, even when a
//     test fails. Subvolumes deleted with DeletePolicyRetain or
//     DeletePolicyArchive leave their data behind, as the policies say.
//   - Subtests run one after another, never in parallel: the checks that a
//     failed call changed nothing compare Options.Snapshot (or the List
//     output) before and after.
//   - Sizes are multiples of Options.SizeUnit. The usual size is 16 MiB
//     rounded up to SizeUnit; the backend must have room for about
//     3*Concurrency subvolumes of twice that size at once.
//   - The suite makes 65 + 3*Concurrency Create or Clone calls (89 with the
//     default Concurrency of 8), of which up to 52 + Concurrency succeed; the
//     others fail early (a duplicate name, a cancelled context, a bad
//     argument). On a slow real cluster, Concurrency 4 keeps it under 60.
//
// # Optional behaviour
//
// Each harness declares the optional behaviours its backend has, as a set of
// Capability bits in Options.Capabilities (Resize, Shrink, Clone, Usage,
// Ping, Retain, Archive, Owner, Labels, Reconcile, Snapshot, Warm,
// ListUsage), and the
// types its As documents in
// Options.AsTypes. A declared capability that answers Unimplemented fails;
// an undeclared one must answer Unimplemented (the subtest is then skipped,
// quoting the answer) or, for Owner, refuse with InvalidArgument, and an
// undeclared one that works fails too: a regression to Unimplemented never
// stays green, and a backend never half-supports a capability. As must
// succeed for every type in AsTypes and fail for any other. Content checks
// (a clone copies the data; usage grows after a write) run only when
// Options.WriteFile and Options.ReadFile are set.
//
// List must page by a stable token: subvolumes created or deleted between
// pages never make a page skip or repeat a name that exists throughout
// (ListPagingStable). A names-only List (ListNamesOnly) has every
// subvolume, with the ID, Path, Volume and Servers Get reports, and no
// retained one; List with WithUsage (ListWithUsage) fills every entry's
// usage with ListUsage and none without it.
//
// Every valid subvolume name must be accepted: a backend that cannot
// represent one (heketi's names have no '.') maps it one-to-one.
//
// Errors a backend returns carry a kind and name no subvolume nor Pool
// operation (the Pool adds them, once); the suite checks that messages say
// "subvolkit:" once.
//
// The package uses only the standard library's testing: no assertion
// library is imported by code that runs the suite.
package backendtest

// Package subvolkit turns one big GlusterFS volume into thousands of small,
// quota-limited subvolumes for Kubernetes and anything else that needs
// persistent storage.
//
// # Why subvolumes
//
// The classic Kubernetes flow asks heketi for a whole Gluster volume per
// claim. Every volume costs brick processes (15-20 MiB each), ports and a
// slow transaction, so clusters stall at a few hundred claims. A subvolume
// is a top-level directory of one shared volume with a Gluster directory
// quota on it: it costs no process and about 150 ms to make, and a client
// mounts just that directory ("deep mount", host:/volume/dir) or binds it
// from one shared mount of the volume.
//
// # Packages
//
//   - subvol: the Pool, the API applications use — Allocate, Get, List,
//     Resize, Usage, Clone, Delete, idempotent the way CSI expects — with
//     its own Subvol, Ownership, DeletePolicy and options.
//   - backend: for backend authors: the interface every backend implements,
//     optional capabilities, and a registry (backend.Register /
//     backend.Open by name with string parameters; every backend also has
//     OptionsFromParams).
//   - backend/cli: subvolumes as directories + quota through the gluster
//     CLI; backend/heketi and backend/glusterd2: one REST volume per
//     subvolume; backend/memory: an in-process reference backend for tests.
//   - backend/backendtest: the conformance suite every backend passes.
//   - mount: deep mounts and shared mounts + bind mounts on a node, verified
//     against the mount table, with stale-mount healing and fast failover.
//   - naming: deterministic, length-safe names (UID based, 63-character
//     Kubernetes limit); quota: sizes (ParseQuantity for Kubernetes
//     quantities, ParseGlusterSize for Gluster's 1024-based units) and
//     usage.
//
// # Errors
//
// Every error carries a portable Kind. Match it with errors.Is against the
// sentinels (ErrNotFound, ErrAlreadyExists, ErrInvalidArgument, …) or read
// it with KindOf; the backend's own error stays reachable with errors.As.
// Context errors keep their kinds (Canceled, DeadlineExceeded). Errors are
// wrapped once: backends return a kind and their native cause, and
// subvol.Pool adds the operation and the subvolume's name, so a message
// reads `subvolkit: <op> "<name>": <kind>: <cause>` with "subvolkit:" once.
//
//	sv, err := pool.Allocate(ctx, "pvc-1c0f…", 10*quota.GiB, nil)
//	switch {
//	case errors.Is(err, subvolkit.ErrAlreadyExists):
//		// the name is taken with an incompatible size
//	case errors.Is(err, subvolkit.ErrInvalidArgument):
//		// bad name or size: nothing was created
//	case err != nil:
//		var ce *cli.CLIError
//		if errors.As(err, &ce) { log.Print(ce.OpErrno) }
//	}
//
// # A short example
//
//	// Once per volume: enable quota, strict quota timeouts.
//	err := cli.Prepare(ctx, nil, "gv0", &cli.PrepareOptions{StrictQuota: true})
//	if err != nil { … }
//	b, err := cli.Open(ctx, &cli.Options{
//		Volume:  "gv0",
//		Servers: []string{"gluster-1", "gluster-2", "gluster-3"},
//	})
//	if err != nil { … }
//	pool := subvol.NewPool(b, nil)
//	defer pool.Close()
//	name, _ := naming.FromUID("pvc", string(claim.UID))
//	sv, err := pool.Allocate(ctx, name, 10*quota.GiB, nil)
//	// mount it on a node: mount -t glusterfs gluster-1:/gv0/<name> /target
//	// (package mount does this, verified, with backup volfile servers)
package subvolkit

package subvol

import "time"

// Observer is told about every Pool operation once it has finished: op is
// the operation ("allocate", "get", "list", "resize", "usage", "clone",
// "delete", "reconcile", "create snapshot", "get snapshot", "list
// snapshots", "delete snapshot", "restore", ...), name the subvolume or
// snapshot ("" for the lists and reconcile; the destination for clone and
// restore), d how long it took and err what
// it returned (nil on success; use subvolkit.KindOf for its kind). It is
// called synchronously, on the caller's goroutine, possibly from many
// goroutines at once: it must be fast and safe for concurrent use. Metrics
// front ends use it (see the examples module's metrics package).
type Observer func(op, name string, d time.Duration, err error)

// observe reports one finished operation to the Pool's Observer, if any.
// Call it deferred, with the address of the method's named error result.
func (p *Pool) observe(op, name string, start time.Time, errp *error) {
	if p.obs != nil {
		p.obs(op, name, time.Since(start), *errp)
	}
}

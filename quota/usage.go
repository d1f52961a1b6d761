package quota

// Usage is how much of a subvolume's limit is used. All values are bytes.
// A backend that cannot tell a value reports -1 for it.
type Usage struct {
	// Limit is the hard limit (the subvolume's size).
	Limit int64
	// Used is the space used, as the backend accounts it. It may exceed
	// Limit: Gluster lets writes in flight overshoot a limit slightly.
	Used int64
	// Available is Limit-Used, never negative.
	Available int64
	// Files and Dirs count the objects in the subvolume, -1 when unknown.
	Files, Dirs int64
}

// NewUsage returns the Usage for a limit and a used amount, with Available
// computed and Files/Dirs unknown.
func NewUsage(limit, used int64) Usage {
	avail := limit - used
	if avail < 0 {
		avail = 0
	}
	return Usage{Limit: limit, Used: used, Available: avail, Files: -1, Dirs: -1}
}

// Exceeded reports whether Used has reached Limit.
func (u Usage) Exceeded() bool { return u.Limit >= 0 && u.Used >= u.Limit }

package cli

// SetFailpointHook installs f as b's failpoint hook (tests only).
func SetFailpointHook(b *Backend, f func(step string)) { b.failHook.Store(&f) }

package cli

// failpoint calls the test hook, if one is set, with the name of the step
// that just completed ("create:mkdir", "delete:renamed", …). The crash
// tests set a hook that kills the process there; production code never
// sets one.
func (b *Backend) failpoint(step string) {
	if f := b.failHook.Load(); f != nil {
		(*f)(step)
	}
}

package main

import "github.com/spf13/cobra"

// extraCmds are the commands of the SDK's newer capabilities.
func (a *app) extraCmds() []*cobra.Command {
	return []*cobra.Command{a.reconcileCmd(), a.prepareCmd(), a.snapshotCmd(), a.warmCmd()}
}

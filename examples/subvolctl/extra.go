package main

import "github.com/spf13/cobra"

// extraCmds are the commands of SDK capabilities that may be missing.
func (a *app) extraCmds() []*cobra.Command { return nil }

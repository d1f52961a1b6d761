package cli_test

import (
	"errors"
	"fmt"

	"github.com/subvolkit/subvolkit"
	"github.com/subvolkit/subvolkit/backend/cli"
)

// OptionsFromParams reads a StorageClass's parameters (or those given to
// backend.Open("cli", …)). Quota settings are not among them: preparing the
// volume is cli.Prepare's job, never Open's.
func ExampleOptionsFromParams() {
	o, err := cli.OptionsFromParams(map[string]string{
		"volume":           "gv0",
		"servers":          "gfs1, gfs2,gfs3",
		"retrymaxattempts": "5",
		"retrymindelay":    "100ms",
	})
	fmt.Println(o.Volume, o.Servers, o.RetryMaxAttempts, o.RetryMinDelay, err)

	_, err = cli.OptionsFromParams(map[string]string{"volume": "gv0", "strictquota": "true"})
	fmt.Println(errors.Is(err, subvolkit.ErrInvalidArgument))
	fmt.Println(err)
	// Output:
	// gv0 [gfs1 gfs2 gfs3] 5 100ms <nil>
	// true
	// subvolkit: cli options: invalid argument: unknown parameter "strictquota"
}

package glusterd2

import (
	"context"
	"maps"
	"slices"
	"strconv"

	"github.com/subvolkit/subvolkit"
	"github.com/subvolkit/subvolkit/backend"
)

// Name is the name the package registers itself under (see backend.Register).
const Name = "glusterd2"

func init() {
	backend.Register(Name, func(ctx context.Context, params map[string]string) (backend.Backend, error) {
		opts, err := parseParams(params)
		if err != nil {
			return nil, err
		}
		return Open(ctx, opts)
	})
}

// parseParams turns registry parameters (see the package documentation)
// into Options. An unknown or malformed parameter is InvalidArgument.
func parseParams(params map[string]string) (*Options, error) {
	const op = "open glusterd2 backend"
	opts := &Options{}
	for _, k := range slices.Sorted(maps.Keys(params)) {
		v := params[k]
		var err error
		switch k {
		case "url":
			opts.URL = v
		case "user":
			opts.User = v
		case "secret":
			opts.Secret = v
		case "cacert":
			opts.CACert = v
		case "insecure":
			opts.Insecure, err = strconv.ParseBool(v)
		case "replica":
			opts.ReplicaCount, err = strconv.Atoi(v)
		case "disperse":
			opts.DisperseCount, err = strconv.Atoi(v)
		case "redundancy":
			opts.DisperseRedundancy, err = strconv.Atoi(v)
		default:
			return nil, subvolkit.Errorf(subvolkit.InvalidArgument, op, "",
				"unknown parameter %q (known: url, user, secret, cacert, insecure, replica, disperse, redundancy)", k)
		}
		if err != nil {
			return nil, subvolkit.Errorf(subvolkit.InvalidArgument, op, "", "parameter %s=%q: %v", k, v, err)
		}
	}
	return opts, nil
}

package memory

import (
	"context"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"

	"github.com/subvolkit/subvolkit"
	"github.com/subvolkit/subvolkit/backend"
	"github.com/subvolkit/subvolkit/quota"
)

// Name is the name the package registers itself under (see backend.Register).
const Name = "memory"

func init() {
	backend.Register(Name, func(ctx context.Context, params map[string]string) (backend.Backend, error) {
		if err := ctx.Err(); err != nil {
			return nil, subvolkit.E(subvolkit.Canceled, "open memory backend", "", err)
		}
		opts, err := OptionsFromParams(params)
		if err != nil {
			return nil, err
		}
		return New(opts), nil
	})
}

// OptionsFromParams turns string parameters (those given to
// backend.Open("memory", …); see the package documentation) into Options.
// An unknown or malformed parameter, or a dir that is not an existing
// directory, is an error of kind InvalidArgument.
func OptionsFromParams(params map[string]string) (*Options, error) {
	const op = "memory options"
	opts := &Options{}
	for _, k := range slices.Sorted(maps.Keys(params)) {
		v := params[k]
		switch k {
		case "servers":
			for s := range strings.SplitSeq(v, ",") {
				s = strings.TrimSpace(s)
				if s == "" {
					return nil, subvolkit.Errorf(subvolkit.InvalidArgument, op, "",
						"parameter servers=%q has an empty entry", v)
				}
				opts.Servers = append(opts.Servers, s)
			}
		case "volume":
			if strings.TrimSpace(v) == "" || strings.ContainsAny(v, "/\x00") {
				return nil, subvolkit.Errorf(subvolkit.InvalidArgument, op, "", "parameter volume=%q is not a volume name", v)
			}
			opts.Volume = v
		case "capacity":
			n, err := quota.ParseQuantity(v)
			if err != nil {
				return nil, subvolkit.E(subvolkit.InvalidArgument, op, "", fmt.Errorf("parameter capacity: %w", err))
			}
			if n <= 0 {
				return nil, subvolkit.Errorf(subvolkit.InvalidArgument, op, "", "parameter capacity=%q must be positive", v)
			}
			opts.MaxSizeBytes = n
		case "dir":
			fi, err := os.Stat(v)
			if err != nil {
				return nil, subvolkit.E(subvolkit.InvalidArgument, op, "", fmt.Errorf("parameter dir: %w", err))
			}
			if !fi.IsDir() {
				return nil, subvolkit.Errorf(subvolkit.InvalidArgument, op, "", "parameter dir=%q is not a directory", v)
			}
			opts.Dir = v
		default:
			return nil, subvolkit.Errorf(subvolkit.InvalidArgument, op, "",
				"unknown parameter %q (known: servers, volume, capacity, dir)", k)
		}
	}
	return opts, nil
}

package glusterd2

import (
	"context"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/subvolkit/subvolkit"
	"github.com/subvolkit/subvolkit/backend"
)

// Name is the name the package registers itself under (see backend.Register).
const Name = "glusterd2"

func init() {
	backend.Register(Name, func(ctx context.Context, params map[string]string) (backend.Backend, error) {
		opts, err := OptionsFromParams(params)
		if err != nil {
			return nil, err
		}
		return Open(ctx, opts)
	})
}

// Parameter names of OptionsFromParams (and of backend.Open("glusterd2",
// …)). The TLS and retry keys are spelled the same in every backend.
const (
	ParamURL              = "url"              // Options.URL, required
	ParamUser             = "user"             // Options.User
	ParamSecret           = "secret"           // Options.Secret
	ParamTLSCAFile        = "tlscafile"        // Options.TLS.CAFile
	ParamTLSInsecure      = "tlsinsecure"      // Options.TLS.InsecureSkipVerify, a boolean
	ParamReplica          = "replica"          // Options.ReplicaCount
	ParamDisperse         = "disperse"         // Options.DisperseCount
	ParamRedundancy       = "redundancy"       // Options.DisperseRedundancy
	ParamRetryMaxAttempts = "retrymaxattempts" // Options.RetryMaxAttempts, an integer
	ParamRetryMinDelay    = "retrymindelay"    // Options.RetryMinDelay, a Go duration ("500ms")
	ParamRetryMaxDelay    = "retrymaxdelay"    // Options.RetryMaxDelay, a Go duration ("8s")
)

var knownParams = []string{
	ParamURL, ParamUser, ParamSecret, ParamTLSCAFile, ParamTLSInsecure, ParamReplica, ParamDisperse,
	ParamRedundancy, ParamRetryMaxAttempts, ParamRetryMinDelay, ParamRetryMaxDelay,
}

// OptionsFromParams turns string parameters (a StorageClass's, or those
// given to backend.Open("glusterd2", …)) into Options; see the Param
// constants. An unknown or malformed parameter is InvalidArgument.
func OptionsFromParams(params map[string]string) (*Options, error) {
	const op = "glusterd2 options"
	opts := &Options{}
	for _, k := range slices.Sorted(maps.Keys(params)) {
		v := params[k]
		t := strings.TrimSpace(v)
		var err error
		switch k {
		case ParamURL:
			opts.URL = t
		case ParamUser:
			opts.User = t
		case ParamSecret:
			opts.Secret = v
		case ParamTLSCAFile:
			opts.TLS.CAFile = t
		case ParamTLSInsecure:
			opts.TLS.InsecureSkipVerify, err = strconv.ParseBool(t)
		case ParamReplica:
			opts.ReplicaCount, err = strconv.Atoi(t)
		case ParamDisperse:
			opts.DisperseCount, err = strconv.Atoi(t)
		case ParamRedundancy:
			opts.DisperseRedundancy, err = strconv.Atoi(t)
		case ParamRetryMaxAttempts:
			opts.RetryMaxAttempts, err = strconv.Atoi(t)
		case ParamRetryMinDelay:
			opts.RetryMinDelay, err = time.ParseDuration(t)
		case ParamRetryMaxDelay:
			opts.RetryMaxDelay, err = time.ParseDuration(t)
		default:
			return nil, subvolkit.Errorf(subvolkit.InvalidArgument, op, "",
				"unknown parameter %q (known: %s)", k, strings.Join(knownParams, ", "))
		}
		if err != nil {
			return nil, subvolkit.Errorf(subvolkit.InvalidArgument, op, "", "parameter %s=%q: %v", k, v, err)
		}
	}
	return opts, nil
}

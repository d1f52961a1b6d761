package cli

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/subvolkit/subvolkit"
	"github.com/subvolkit/subvolkit/quota"
)

// CLIError is the error the gluster CLI reported. It is reachable with
// errors.As from every error the backend returns for a failed CLI call.
type CLIError struct {
	Args    []string // the CLI arguments (after --mode=script --xml)
	OpRet   int      // cliOutput/opRet (0 means success)
	OpErrno int      // cliOutput/opErrno, such as 30802 for a busy volume lock
	Message string   // opErrstr, or stderr when there was no XML
}

// Error implements error.
func (e *CLIError) Error() string {
	return fmt.Sprintf("gluster %s: %s (opRet %d, opErrno %d)", strings.Join(e.Args, " "), e.Message, e.OpRet, e.OpErrno)
}

// glusterCLI runs CLI calls for one volume: it serializes the calls that take
// glusterd's cluster-wide volume lock and retries the lock conflicts.
type glusterCLI struct {
	runner             Runner
	volume             string
	retryMax           int
	minDelay, maxDelay time.Duration
	lockMu             sync.Mutex // serializes quota calls (they take the volume lock)
}

func newGlusterCLI(r Runner, volume string, retryMax int, minDelay, maxDelay time.Duration) *glusterCLI {
	return &glusterCLI{runner: r, volume: volume, retryMax: retryMax, minDelay: minDelay, maxDelay: maxDelay}
}

// call runs one CLI call and returns its parsed answer. Calls that take the
// volume lock (quota operations) are serialized in this process and retried
// with capped, jittered exponential backoff while glusterd answers "Another
// transaction is in progress" (another process or node holds the lock), or
// while its own aux mount is not connected (isAuxDown).
func (g *glusterCLI) call(ctx context.Context, locked bool, args ...string) (*cliOutput, error) {
	if locked {
		g.lockMu.Lock()
		defer g.lockMu.Unlock()
	}
	delay := g.minDelay
	for attempt := 1; ; attempt++ {
		out, err := g.once(ctx, args)
		var ce *CLIError
		if err == nil || !errors.As(err, &ce) || !isTxnBusy(ce) && !isAuxDown(ce) {
			return out, err
		}
		if attempt > g.retryMax {
			what := "volume lock still busy"
			if !isTxnBusy(ce) {
				what = "glusterd's quota aux mount still not connected"
			}
			return nil, subvolkit.E(subvolkit.Unavailable, "", "",
				fmt.Errorf("%s, giving up after %d attempt(s): %w", what, attempt, err))
		}
		sleep := delay/2 + rand.N(delay/2+1)
		t := time.NewTimer(sleep)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, subvolkit.E(subvolkit.Canceled, "", "", ctx.Err())
		case <-t.C:
		}
		delay = min(2*delay, g.maxDelay)
	}
}

func isTxnBusy(ce *CLIError) bool {
	return ce.OpErrno == errnoTxnInProgress || strings.Contains(ce.Message, "Another transaction is in progress")
}

// isAuxDown reports glusterd's own quota aux mount not connected: "Failed
// to find the directory /var/run/gluster/VOL_quota_limit/PATH. Reason :
// Transport endpoint is not connected". glusterd mounts that client for
// each limit-usage or remove and unmounts it after; seen once in CI, with
// quota calls of several processes back to back. glusterd fails there
// before it changes anything, so the call is safe to repeat.
func isAuxDown(ce *CLIError) bool {
	return strings.Contains(ce.Message, "_quota_limit") && strings.Contains(ce.Message, "not connected")
}

func (g *glusterCLI) once(ctx context.Context, args []string) (*cliOutput, error) {
	if err := ctx.Err(); err != nil {
		return nil, subvolkit.E(subvolkit.Canceled, "", "", err)
	}
	full := append([]string{"--mode=script", "--xml"}, args...)
	stdout, stderr, runErr := g.runner.Run(ctx, full...)
	if ctxErr := ctx.Err(); ctxErr != nil {
		return nil, subvolkit.E(subvolkit.Canceled, "", "", ctxErr)
	}
	out, perr := parseCLIOutput(stdout)
	if perr != nil {
		msg := strings.TrimSpace(string(stderr))
		if msg == "" {
			msg = strings.TrimSpace(string(stdout))
		}
		ce := &CLIError{Args: args, OpRet: -1, Message: msg}
		if runErr != nil && msg == "" {
			ce.Message = runErr.Error()
		}
		kind := classify(ce) // non-XML answers: "Connection failed…" when glusterd is down
		if runErr != nil && !isExitError(runErr) {
			kind = subvolkit.Unavailable // the CLI could not be run at all
		}
		if isTxnBusy(ce) {
			return nil, ce
		}
		return nil, subvolkit.E(kind, "", "", ce)
	}
	if out.OpRet != 0 {
		ce := &CLIError{Args: args, OpRet: out.OpRet, OpErrno: out.OpErrno, Message: strings.TrimSpace(out.OpErrstr)}
		if ce.Message == "" {
			ce.Message = strings.TrimSpace(out.Output)
		}
		if ce.Message == "" {
			ce.Message = strings.TrimSpace(string(stderr))
		}
		if isTxnBusy(ce) {
			return nil, ce
		}
		return nil, subvolkit.E(classify(ce), "", "", ce)
	}
	return out, nil
}

func isExitError(err error) bool {
	var ee interface{ ExitCode() int }
	return errors.As(err, &ee)
}

// classify maps a failed CLI call to a portable kind from its opErrno and,
// where the CLI gives no distinct errno, its message text. (The few other
// readers of message text each look for one answer: the busy volume lock,
// a limit already removed, quota already enabled.)
func classify(ce *CLIError) subvolkit.Kind {
	m := ce.Message
	switch {
	case ce.OpErrno == errnoVolNotFound, strings.Contains(m, "does not exist") && strings.Contains(m, "Volume"):
		return subvolkit.FailedPrecondition // the pool's volume is gone: not a subvolume NotFound
	case strings.Contains(m, "Quota is disabled"):
		return subvolkit.FailedPrecondition
	case strings.Contains(m, "No such file or directory"):
		return subvolkit.NotFound
	case strings.Contains(m, "out of range"), strings.Contains(m, "Please enter"):
		return subvolkit.InvalidArgument
	case strings.Contains(m, "not connected"), strings.Contains(m, "Connection failed"), strings.Contains(m, "is not running"),
		strings.Contains(m, "gluster daemon is operational"), strings.Contains(m, "Connection refused"),
		strings.Contains(m, "timed out"), strings.Contains(m, "Error : Request timed out"),
		strings.Contains(m, "not operational"), strings.Contains(m, "Locking failed"), strings.Contains(m, "Staging failed"),
		strings.Contains(m, "Commit failed"), strings.Contains(m, "is down"):
		return subvolkit.Unavailable
	}
	return subvolkit.Unknown
}

// volumeInfo returns `volume info VOL`.
func (g *glusterCLI) volumeInfo(ctx context.Context) (*volumeXML, error) {
	out, err := g.call(ctx, false, "volume", "info", g.volume)
	if err != nil {
		return nil, err
	}
	if out.VolInfo == nil || len(out.VolInfo.Volumes.Volume) == 0 {
		return nil, subvolkit.Errorf(subvolkit.Unknown, "", "", "volume info %s: no volume in the answer", g.volume)
	}
	return &out.VolInfo.Volumes.Volume[0], nil
}

// limitUsage sets the hard limit of path to bytes.
func (g *glusterCLI) limitUsage(ctx context.Context, path string, bytes int64) error {
	_, err := g.call(ctx, true, "volume", "quota", g.volume, "limit-usage", path, quota.FormatGlusterSize(bytes))
	return err
}

// removeLimit removes path's limit. A path without a limit is not an error.
func (g *glusterCLI) removeLimit(ctx context.Context, path string) error {
	_, err := g.call(ctx, true, "volume", "quota", g.volume, "remove", path)
	var ce *CLIError
	if err != nil && errors.As(err, &ce) && strings.Contains(ce.Message, "No data available") {
		return nil // there was no limit
	}
	return err
}

// listLimit returns the quota row of one path (Hard -1 if it has no limit),
// or an error of kind NotFound if the path does not exist.
func (g *glusterCLI) listLimit(ctx context.Context, path string) (quotaLimit, error) {
	out, err := g.call(ctx, true, "volume", "quota", g.volume, "list", path)
	if err != nil {
		return quotaLimit{}, err
	}
	if out.VolQuota == nil || len(out.VolQuota.Limits) == 0 {
		return quotaLimit{}, subvolkit.Errorf(subvolkit.NotFound, "", "", "quota list %s: no such path on volume %s", path, g.volume)
	}
	for _, l := range out.VolQuota.Limits {
		if l.Path == path {
			return l.parse()
		}
	}
	return quotaLimit{}, subvolkit.Errorf(subvolkit.Unknown, "", "", "quota list %s: answer has no row for the path", path)
}

// setOption runs `volume set VOL key value`.
func (g *glusterCLI) setOption(ctx context.Context, key, value string) error {
	_, err := g.call(ctx, true, "volume", "set", g.volume, key, value)
	return err
}

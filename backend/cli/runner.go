package cli

import (
	"bytes"
	"context"
	"os/exec"
	"syscall"
	"time"
)

// Runner runs the gluster command-line tool. args are the arguments after
// the program name; the backend always passes --mode=script and --xml.
//
// Run must honour ctx (stop the process when ctx is done) and return the
// process's stdout and stderr; err is non-nil when the process could not run
// or exited non-zero (the backend judges the result by the XML's opRet, not
// by err, when stdout holds a cliOutput document).
//
// The default runs the local binary. Plug in your own to run the CLI over
// ssh, through `kubectl exec` into a Gluster pod, or inside a node's
// namespaces (as the tests do). Implementations must be safe for concurrent
// use.
type Runner interface {
	Run(ctx context.Context, args ...string) (stdout, stderr []byte, err error)
}

// ExecRunner runs a local gluster binary.
type ExecRunner struct {
	// Path is the gluster binary; "" means "gluster" looked up in PATH.
	Path string
	// ExtraArgs are passed before the backend's arguments, for example
	// "--glusterd-sock=/path" or "--remote-host=HOST" (read-only calls
	// only: glusterd refuses mutating calls from a remote CLI).
	ExtraArgs []string
}

// Run implements Runner.
func (r *ExecRunner) Run(ctx context.Context, args ...string) ([]byte, []byte, error) {
	path := r.Path
	if path == "" {
		path = "gluster"
	}
	all := append(append([]string{}, r.ExtraArgs...), args...)
	cmd := exec.CommandContext(ctx, path, all...)
	configureChild(cmd)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return stdout.Bytes(), stderr.Bytes(), err
}

// configureChild makes cmd's process die with its caller: it runs in a
// process group of its own, which is killed (SIGKILL) when the context is
// done, and it gets SIGKILL if the caller dies (Pdeathsig), so a killed SDK
// process leaves no `gluster … limit-usage` running behind it.
func configureChild(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error {
		if cmd.Process == nil {
			return nil
		}
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	cmd.WaitDelay = 5 * time.Second
}

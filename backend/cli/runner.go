package cli

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
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
	return runChild(ctx, r.command(args...))
}

// command returns the command that runs gluster with args.
func (r *ExecRunner) command(args ...string) *exec.Cmd {
	path := r.Path
	if path == "" {
		path = "gluster"
	}
	return exec.Command(path, append(append([]string{}, r.ExtraArgs...), args...)...)
}

// childAttrs puts cmd's process in a process group of its own and has it
// killed (SIGKILL) if the caller dies (Pdeathsig), so a killed SDK process
// leaves no `gluster … limit-usage` running behind it.
func childAttrs(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// runChild runs cmd (not started; files in its ExtraFiles are closed once
// it started) with childAttrs and returns its stdout and stderr. When ctx
// is done first, cmd's process group is killed (SIGKILL): the group is the
// process's own, so a wrapper's children go too.
func runChild(ctx context.Context, cmd *exec.Cmd) ([]byte, []byte, error) {
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	childAttrs(cmd)
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Start()
	closeExtra(cmd)
	if err == nil {
		stop := context.AfterFunc(ctx, func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) })
		err = cmd.Wait()
		stop()
	}
	return stdout.Bytes(), stderr.Bytes(), err
}

// ShellRunner runs the gluster CLI through long-lived gluster shells: a
// `gluster --xml` process reading commands from its standard input, as an
// administrator's interactive session does. A command sent to an idle shell
// skips the start of a process (and of whatever wraps it: nsenter, ssh),
// which costs more than everything subvolkit does around a quota call. A
// shell answers one command at a time; up to MaxShells stay open.
//
// Only commands known to answer with exactly one XML document go through a
// shell: `volume info VOL` and `volume quota VOL limit-usage|remove|list
// PATH`, with --mode=script and --xml, their words free of white space and
// control characters (the shell splits its input at white space and knows
// no quoting). Every other call, and a call that finds every shell busy,
// runs a process of its own, as ExecRunner does.
//
// A command that fails answers with its XML document, as it does from a
// process of its own, and the shell serves the next one. A shell is
// discarded, and its process killed, when the call's context ends before
// the answer and when it dies or writes while idle; the next call starts
// another. A call whose shell ends before the answer runs again in a
// process of its own, so that it answers as a one-off call does (a shell
// that loses glusterd exits with a bare newline).
//
// A gluster shell waits for glusterd where a one-off process gives up at
// once. So shells are started with --timeout (Timeout, 30 s by default;
// after any --timeout of ExtraArgs or Command, so it wins): a call made
// while glusterd is down fails after at most that long (the shell exits,
// and the call runs again on its own), and for 5 s after a shell died,
// calls run in processes of their own, which fail at once while glusterd
// stays down. A call waits that long for glusterd's answer, too (a one-off
// process, 120 s). After a restart of glusterd, an idle shell reconnects
// within a few seconds; a call meanwhile waits for it.
//
// The zero value runs the local gluster binary. A ShellRunner is safe for
// concurrent use. Close ends the idle shells; it may be called more than
// once, and the runner stays usable after it (later calls start shells
// anew).
type ShellRunner struct {
	// Path is the gluster binary; "" means "gluster" looked up in PATH.
	Path string
	// ExtraArgs are passed before the command's arguments, as
	// ExecRunner's are.
	ExtraArgs []string
	// Command, if not nil, replaces Path and ExtraArgs: it returns the
	// command that runs gluster with args (a shell when args hold only
	// options), for example inside a node's namespaces or over ssh. Files
	// in the returned command's ExtraFiles are closed once it started.
	Command func(args ...string) (*exec.Cmd, error)
	// MaxShells bounds the shells kept open; 0 means 2.
	MaxShells int
	// Timeout is a shell's --timeout, rounded up to whole seconds: how long
	// a command waits for glusterd, to connect and then to answer. 0 means
	// 30 s.
	Timeout time.Duration

	mu    sync.Mutex
	idle  []*glusterShell
	open  int       // shells started and not yet discarded
	epoch uint64    // Close's count: shells of an earlier epoch are not kept
	shun  time.Time // until then, calls run on their own (a shell just died)
}

// defaultShellTimeout is ShellRunner.Timeout's default. A gluster shell,
// unlike a one-off gluster process, does not give up at once when glusterd
// is down: it waits for a connection that long (120 s without --timeout),
// then exits.
const defaultShellTimeout = 30 * time.Second

// shellShun is how long calls run in processes of their own after a shell
// died on its own: while glusterd is down, they fail at once, as they
// would without shells.
const shellShun = 5 * time.Second

// maxShellLine is what the gluster shell reads of one line (CMDBUFSIZ, 1024,
// with its newline and NUL).
const maxShellLine = 1022

// shellCommands are the commands a shell may run: each answers with one XML
// document. The key is the command's first word after the volume's name
// ("" for `volume info VOL`).
var shellCommands = map[string]bool{"": true, "limit-usage": true, "remove": true, "list": true}

// shellLine returns the line a gluster shell is sent for args, or false if
// args must run in a process of their own.
func shellLine(args []string) (string, bool) {
	var words []string
	xml := false
	for _, a := range args {
		switch {
		case a == "--xml":
			xml = true
		case a == "--mode=script":
			// A shell whose input is not a terminal is in script mode.
		case a == "" || strings.HasPrefix(a, "-") || strings.ContainsFunc(a, func(c rune) bool { return c <= ' ' || c == 0x7f }):
			// White space or a control character: the shell would split
			// or mangle the word.
			return "", false
		default:
			words = append(words, a)
		}
	}
	if !xml || len(words) < 3 || words[0] != "volume" {
		return "", false
	}
	switch {
	case words[1] == "info" && len(words) == 3:
	case words[1] == "quota" && len(words) >= 5 && words[3] != "list" && shellCommands[words[3]] && words[4] != "":
	case words[1] == "quota" && len(words) == 5 && words[3] == "list":
	default:
		return "", false
	}
	line := strings.Join(words, " ")
	if len(line) > maxShellLine {
		return "", false
	}
	return line, true
}

// glusterShell is one running gluster shell.
type glusterShell struct {
	cmd     *exec.Cmd
	in      *os.File
	out     *bufio.Reader
	outFile *os.File
	greeted bool // the greeting was seen (and dropped)
	epoch   uint64
	done    chan struct{} // closed when the process was waited for
	// closeOnce closes in once; out is closed by the runner after the
	// process ended (see put and exitErr).
	closeOnce sync.Once
}

// command returns the command that runs gluster with args.
func (r *ShellRunner) command(args ...string) (*exec.Cmd, error) {
	if r.Command != nil {
		return r.Command(args...)
	}
	e := ExecRunner{Path: r.Path, ExtraArgs: r.ExtraArgs}
	return e.command(args...), nil
}

// Run implements Runner.
func (r *ShellRunner) Run(ctx context.Context, args ...string) ([]byte, []byte, error) {
	line, ok := shellLine(args)
	if !ok {
		return r.runOnce(ctx, args)
	}
	r.mu.Lock()
	shun := time.Now().Before(r.shun)
	r.mu.Unlock()
	if shun {
		return r.runOnce(ctx, args)
	}
	sh, err := r.get()
	if err != nil {
		return nil, nil, err
	}
	if sh == nil { // every shell is busy
		return r.runOnce(ctx, args)
	}
	stdout, stderr, err := sh.do(ctx, line)
	r.put(sh, err == nil)
	var xe *ShellExitError
	if errors.As(err, &xe) && ctx.Err() == nil {
		// The shell ended before its answer: glusterd went away (the
		// shell then exits with a bare newline, or after its timeout with
		// "Connection failed"), or the shell was killed. A process of its
		// own gives the answer a one-off call gives, and for a while the
		// next calls run that way too. Every command a shell runs is a
		// read, limit-usage or remove, which glusterd may safely get twice
		// (a remove of no limit answers "No limit set", which the backend
		// takes as done).
		r.mu.Lock()
		r.shun = time.Now().Add(shellShun)
		r.mu.Unlock()
		return r.runOnce(ctx, args)
	}
	return stdout, stderr, err
}

// runOnce runs args in a process of its own.
func (r *ShellRunner) runOnce(ctx context.Context, args []string) ([]byte, []byte, error) {
	cmd, err := r.command(args...)
	if err != nil {
		return nil, nil, err
	}
	return runChild(ctx, cmd)
}

// closeExtra closes the files a started (or failed) command was given.
func closeExtra(cmd *exec.Cmd) {
	for _, f := range cmd.ExtraFiles {
		if f != nil {
			_ = f.Close()
		}
	}
}

// get returns an idle shell, a new one if fewer than MaxShells are open, or
// nil if every shell is busy.
func (r *ShellRunner) get() (*glusterShell, error) {
	r.mu.Lock()
	if n := len(r.idle); n > 0 {
		sh := r.idle[n-1]
		r.idle = r.idle[:n-1]
		r.mu.Unlock()
		if sh.idleOK() {
			return sh, nil
		}
		// It died or spoke while idle (a shell wrote a line and exited
		// when glusterd was killed): start another.
		sh.discard()
		r.mu.Lock()
		r.open--
	}
	max := r.MaxShells
	if max <= 0 {
		max = 2
	}
	if r.open >= max {
		r.mu.Unlock()
		return nil, nil
	}
	r.open++
	epoch := r.epoch
	r.mu.Unlock()
	sh, err := r.start(epoch)
	if err != nil {
		r.mu.Lock()
		r.open--
		r.mu.Unlock()
		return nil, err
	}
	return sh, nil
}

// put returns sh to the idle shells if it is healthy and of the current
// epoch, or discards it.
func (r *ShellRunner) put(sh *glusterShell, healthy bool) {
	r.mu.Lock()
	if healthy && sh.epoch == r.epoch {
		r.idle = append(r.idle, sh)
		r.mu.Unlock()
		return
	}
	r.open--
	r.mu.Unlock()
	sh.discard()
}

// Close ends the idle shells; shells busy with a command end when it
// returns. It returns nil.
func (r *ShellRunner) Close() error {
	r.mu.Lock()
	idle := r.idle
	r.idle = nil
	r.open -= len(idle)
	r.epoch++
	r.mu.Unlock()
	for _, sh := range idle {
		sh.discard()
	}
	return nil
}

// start starts a shell: gluster with ExtraArgs, --xml and --timeout, and no
// command.
// Its standard input and output are pipes of the runner's own (not exec's,
// whose Wait would close the output before the answer to a failed command
// was read).
func (r *ShellRunner) start(epoch uint64) (*glusterShell, error) {
	timeout := r.Timeout
	if timeout <= 0 {
		timeout = defaultShellTimeout
	}
	secs := int64((timeout + time.Second - 1) / time.Second)
	cmd, err := r.command("--xml", "--timeout="+strconv.FormatInt(secs, 10))
	if err != nil {
		return nil, err
	}
	defer closeExtra(cmd)
	inR, inW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		inR.Close()
		inW.Close()
		return nil, err
	}
	sh := &glusterShell{cmd: cmd, in: inW, out: bufio.NewReader(outR), outFile: outR,
		epoch: epoch, done: make(chan struct{})}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = inR, outW, outW
	childAttrs(cmd)
	err = cmd.Start()
	inR.Close()
	outW.Close()
	if err != nil {
		inW.Close()
		outR.Close()
		return nil, err
	}
	go func() {
		_ = cmd.Wait()
		close(sh.done)
	}()
	return sh, nil
}

// do sends line and reads the answer up to the end of the XML document (or
// to the end of the output, if the shell ends first). The shell's stderr
// goes to the same pipe as its stdout, so what a command writes there
// comes before its document (which the CLI writes at once, at the end) and
// is returned as stderr. An error means the shell must be discarded: the
// context's end, or the shell's.
func (sh *glusterShell) do(ctx context.Context, line string) ([]byte, []byte, error) {
	stop := context.AfterFunc(ctx, sh.kill)
	defer stop()
	var out []byte
	split := func() ([]byte, []byte) {
		stderr, stdout := out, []byte(nil)
		if i := bytes.Index(out, []byte("<?xml")); i >= 0 {
			stderr, stdout = out[:i], out[i:]
		}
		if !sh.greeted {
			// The shell's greeting, on its stderr at start.
			if i := bytes.Index(stderr, []byte(shellGreeting)); i >= 0 {
				if j := bytes.IndexByte(stderr[i:], '\n'); j >= 0 {
					stderr = append(stderr[:i:i], stderr[i+j+1:]...)
					sh.greeted = true
				}
			}
		}
		return stdout, stderr
	}
	ended := func(cause error) ([]byte, []byte, error) {
		xerr := sh.exitErr(cause)
		stdout, stderr := split()
		if cerr := ctx.Err(); cerr != nil {
			return stdout, stderr, cerr
		}
		return stdout, stderr, xerr
	}
	if _, err := io.WriteString(sh.in, line+"\n"); err != nil {
		return ended(err)
	}
	for {
		l, err := sh.out.ReadSlice('\n')
		out = append(out, l...)
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil { // the shell ended: killed, or it failed
			return ended(err)
		}
		if bytes.HasPrefix(bytes.TrimSpace(l), []byte("</cliOutput>")) {
			break
		}
	}
	stdout, stderr := split()
	if !stop() {
		return stdout, stderr, ctx.Err()
	}
	return stdout, stderr, nil
}

// idleOK reports whether an idle shell is fit for a command: its process
// runs and its output pipe is quiet, neither closed (a dead shell) nor
// holding anything written since its last answer. A poll with no timeout
// asks; a read with a deadline in the past would not even try.
func (sh *glusterShell) idleOK() bool {
	select {
	case <-sh.done:
		return false
	default:
	}
	if sh.out.Buffered() > 0 {
		return false
	}
	rc, err := sh.outFile.SyscallConn()
	if err != nil {
		return false
	}
	quiet := false
	cerr := rc.Control(func(fd uintptr) {
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		n, err := unix.Poll(fds, 0)
		quiet = err == nil && n == 0
	})
	return cerr == nil && quiet
}

// shellGreeting begins what a gluster shell writes to stderr when it starts.
const shellGreeting = "Welcome to gluster prompt"

// exitErr waits briefly for the shell's end and returns an error that
// reports its exit code, like exec's ExitError.
func (sh *glusterShell) exitErr(cause error) *ShellExitError {
	sh.kill()
	<-sh.done
	_ = sh.outFile.Close()
	code := -1
	if ps := sh.cmd.ProcessState; ps != nil {
		code = ps.ExitCode()
	}
	return &ShellExitError{Code: code, Err: cause}
}

// kill ends the shell: it kills the shell's process group (its own, see
// childAttrs, so that a wrapper's children go too) while the process has not
// been waited for, and closes the runner's end of its input.
func (sh *glusterShell) kill() {
	select {
	case <-sh.done:
	default:
		_ = syscall.Kill(-sh.cmd.Process.Pid, syscall.SIGKILL)
	}
	sh.closeOnce.Do(func() {
		_ = sh.in.Close()
	})
}

// discard kills the shell and, once its process ended, closes its output.
func (sh *glusterShell) discard() {
	sh.kill()
	go func() {
		<-sh.done
		_ = sh.outFile.Close()
	}()
}

// ShellExitError reports a gluster shell that ended before it answered a
// command: killed, or exited (after "Connection failed", say).
type ShellExitError struct {
	Code int   // the exit code, -1 if killed
	Err  error // what the runner saw, if anything (a broken pipe, EOF)
}

// Error implements error.
func (e *ShellExitError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("gluster shell exited with code %d: %v", e.Code, e.Err)
	}
	return fmt.Sprintf("gluster shell exited with code %d", e.Code)
}

// ExitCode returns the shell's exit code, as exec.ExitError does.
func (e *ShellExitError) ExitCode() int { return e.Code }

// Unwrap returns the cause.
func (e *ShellExitError) Unwrap() error { return e.Err }

package mount

import (
	"io"
	"os"
	"regexp"
	"strings"

	"github.com/subvolkit/subvolkit"
)

var (
	// An error or critical line of a glusterfs log:
	// [2026-11-23 16:20:01.1 +0000] E [MSGID: 114044] [client-handshake.c:1170:client_setvolume_cbk] 0-v-client-0: SETVOLUME on remote-host failed [{remote-error=...}, {errno=2}]
	logErrLine  = regexp.MustCompile(`^\[[^\]]*\] [EC] (?:\[MSGID: \d+\] )?\[[^\]]*\] (.*)$`)
	remoteError = regexp.MustCompile(`remote-error=([^}]*)\}`)
)

// maxLogRead bounds how much of a client log is read for an error message.
const maxLogRead = 256 << 10

// readLogTail returns what was written to the log file name after offset (at
// most the last maxLogRead bytes of it).
func readLogTail(name string, offset int64) string {
	f, err := os.Open(name)
	if err != nil {
		return ""
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return ""
	}
	if st.Size() < offset { // truncated or rotated
		offset = 0
	}
	if st.Size()-offset > maxLogRead {
		offset = st.Size() - maxLogRead
	}
	b, err := io.ReadAll(io.NewSectionReader(f, offset, st.Size()-offset))
	if err != nil {
		return ""
	}
	return string(b)
}

// logReason extracts why a mount failed from a glusterfs client log: the
// servers' remote-error texts if any (such as `subdirectory for mount "/x" is
// not found`), else the last error lines. It also returns the error kind the
// reason implies.
func logReason(log string) (string, subvolkit.Kind) {
	var remote, other []string
	add := func(list *[]string, s string) {
		s = strings.TrimSpace(s)
		for _, x := range *list {
			if x == s {
				return
			}
		}
		*list = append(*list, s)
	}
	for line := range strings.SplitSeq(log, "\n") {
		m := logErrLine.FindStringSubmatch(strings.TrimRight(line, "\r"))
		if m == nil {
			continue
		}
		if r := remoteError.FindStringSubmatch(m[1]); r != nil {
			add(&remote, r[1])
			continue
		}
		add(&other, m[1])
	}
	var reasons []string
	switch {
	case len(remote) > 0:
		reasons = remote
	case len(other) > 3:
		reasons = other[len(other)-3:]
	default:
		reasons = other
	}
	reason := strings.Join(reasons, "; ")
	return reason, reasonKind(reason)
}

// reasonKind classifies a client log reason.
func reasonKind(reason string) subvolkit.Kind {
	r := strings.ToLower(reason)
	switch {
	case r == "":
		return subvolkit.Unknown
	case strings.Contains(r, "not found"), strings.Contains(r, "no such file or directory"):
		return subvolkit.NotFound
	case strings.Contains(r, "authentication failed"), strings.Contains(r, "permission denied"):
		return subvolkit.PermissionDenied
	case strings.Contains(r, "connection refused"), strings.Contains(r, "not connected"),
		strings.Contains(r, "failed to connect"), strings.Contains(r, "failed to fetch volume file"),
		strings.Contains(r, "no route to host"), strings.Contains(r, "timed out"):
		return subvolkit.Unavailable
	}
	return subvolkit.Unknown
}

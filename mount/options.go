package mount

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path"
	"slices"
	"sort"
	"strings"

	"github.com/subvolkit/subvolkit"
	"github.com/subvolkit/subvolkit/subvol"
)

// Option names the mounter sets itself.
const (
	optBackupServers = "backup-volfile-servers"
	optBackupServer  = "backupvolfile-server" // the old, single-server spelling
	optLogFile       = "log-file"
	optLogLevel      = "log-level"
)

// masked replaces secrets in log lines and error messages.
const masked = "<masked>"

// logLevels are the levels glusterfs accepts for log-level.
var logLevels = []string{"CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG", "TRACE", "NONE"}

// Source returns the GlusterFS mount source of sv on server:
// "server:/volume/path", or "server:/volume" for a subvolume that is a whole
// volume (Path "" or "/"). It does not validate its input.
func Source(sv *subvol.Subvol, server string) string {
	return server + ":" + volPath(sv.Volume, subdir(sv.Path))
}

// subdir normalises a Subvol.Path: "" for the whole volume, otherwise a
// cleaned path with a leading "/".
func subdir(p string) string {
	if p == "" || p == "/" {
		return ""
	}
	return path.Clean("/" + p)
}

// volPath is the path a mount of sub shows: "/vol" or "/vol/dir".
func volPath(volume, sub string) string { return "/" + volume + sub }

// plan is a validated publish request.
type plan struct {
	name     string   // subvolume name, for errors and logs
	volume   string   // Gluster volume
	subdir   string   // "" or "/dir"
	servers  []string // volfile servers in preference order, no duplicates
	readOnly bool
	// options are the pass-through FUSE options, "key=value" or "flag",
	// without ro/rw, log-file and backup-volfile-servers.
	options   []string
	sensitive []string
	logLevel  string // "" means the Mounter's default
	logFile   string // "" means the Mounter's choice
}

// want is what the plan's mount must show in the mount table.
func (p *plan) want() string { return volPath(p.volume, p.subdir) }

// newPlan validates sv and opts and merges their mount options. Errors are
// of kind InvalidArgument.
func newPlan(sv *subvol.Subvol, opts *PublishOptions) (*plan, error) {
	if sv == nil {
		return nil, subvolkit.Errorf(subvolkit.InvalidArgument, "publish", "", "nil subvolume")
	}
	if opts == nil {
		opts = &PublishOptions{}
	}
	p := &plan{name: sv.Name, volume: sv.Volume, readOnly: opts.ReadOnly}
	bad := func(format string, args ...any) error {
		return subvolkit.Errorf(subvolkit.InvalidArgument, "publish", sv.Name, format, args...)
	}
	if !validVolume(sv.Volume) {
		return nil, bad("invalid volume name %q", sv.Volume)
	}
	if sv.Path != "" {
		if !strings.HasPrefix(sv.Path, "/") || strings.ContainsAny(sv.Path, ",\x00\n") ||
			slices.Contains(strings.Split(sv.Path, "/"), "..") {
			return nil, bad("invalid path %q: want \"\" or an absolute path without \"..\"", sv.Path)
		}
	}
	p.subdir = subdir(sv.Path)
	addServer := func(s string) error {
		s = strings.TrimSpace(s)
		if s == "" || strings.ContainsAny(s, ",:/ \t\n\x00") {
			return bad("invalid volfile server %q", s)
		}
		if !slices.Contains(p.servers, s) {
			p.servers = append(p.servers, s)
		}
		return nil
	}
	for _, s := range sv.Servers {
		if err := addServer(s); err != nil {
			return nil, err
		}
	}

	// Backend recommendations first (sorted, so plans are deterministic),
	// then the caller's options; a later key replaces an earlier one.
	var raw []string
	for _, k := range sortedKeys(sv.MountOptions) {
		if v := sv.MountOptions[k]; v != "" {
			raw = append(raw, k+"="+v)
		} else {
			raw = append(raw, k)
		}
	}
	raw = append(raw, opts.MountOptions...)
	byKey := map[string]int{} // key → index in p.options
	for _, o := range raw {
		o = strings.TrimSpace(o)
		if o == "" {
			continue
		}
		k, v, _ := strings.Cut(o, "=")
		if k == optBackupServers && !strings.ContainsAny(v, "\n\x00") {
			// Colon-separated, as mount.glusterfs reads it, or
			// comma-separated, as heketi reports it.
			for _, s := range strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ':' }) {
				if err := addServer(s); err != nil {
					return nil, err
				}
			}
			continue
		}
		if strings.ContainsAny(o, ",\n\x00") {
			return nil, bad("invalid mount option %q", o)
		}
		switch k {
		case "ro":
			p.readOnly = true
			continue
		case "rw":
			continue
		case "bind", "rbind", "remount", "move":
			return nil, bad("mount option %q is not allowed", k)
		case optBackupServer:
			if err := addServer(v); err != nil {
				return nil, err
			}
			continue
		case optLogLevel:
			v = strings.ToUpper(v)
			if !slices.Contains(logLevels, v) {
				return nil, bad("invalid log-level %q: want one of %s", v, strings.Join(logLevels, ", "))
			}
			p.logLevel = v
			continue
		case optLogFile:
			if !path.IsAbs(v) {
				return nil, bad("log-file %q is not an absolute path", v)
			}
			p.logFile = path.Clean(v)
			continue
		}
		if i, ok := byKey[k]; ok {
			p.options[i] = o
			continue
		}
		byKey[k] = len(p.options)
		p.options = append(p.options, o)
	}
	for _, o := range opts.SensitiveOptions {
		if o == "" || strings.ContainsAny(o, ",\n\x00") {
			// Do not quote it: it is a secret.
			return nil, bad("invalid sensitive mount option")
		}
		p.sensitive = append(p.sensitive, o)
	}
	if len(p.servers) == 0 {
		return nil, bad("no volfile servers")
	}
	return p, nil
}

// validVolume reports whether v is a plausible Gluster volume name.
func validVolume(v string) bool {
	if v == "" || len(v) > 255 || v == "." || v == ".." {
		return false
	}
	for _, c := range v {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_', c == '-', c == '.':
		default:
			return false
		}
	}
	return true
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// fuseOptions returns the -o list for a glusterfs mount of the plan with the
// servers in the given order (the first is the mount source's host).
func fuseOptions(p *plan, ordered []string, logFile, logLevel string, readOnly bool) []string {
	o := []string{optLogFile + "=" + logFile, optLogLevel + "=" + logLevel}
	if len(ordered) > 1 {
		o = append(o, optBackupServers+"="+strings.Join(ordered[1:], ":"))
	}
	if readOnly {
		o = append(o, "ro")
	}
	return append(o, p.options...)
}

// sharedKey names the shared mount a plan uses: one per volume, set of
// servers and set of FUSE options (log-level aside). It is safe in a file
// name.
func sharedKey(p *plan) string {
	h := sha256.New()
	servers := slices.Clone(p.servers)
	slices.Sort(servers)
	opts := slices.Clone(p.options)
	slices.Sort(opts)
	sens := slices.Clone(p.sensitive)
	slices.Sort(sens)
	fmt.Fprintf(h, "%s\x00%q\x00%q\x00%q\x00%s", p.volume, servers, opts, sens, p.logFile)
	return p.volume + "-" + hex.EncodeToString(h.Sum(nil)[:8])
}

// hashName returns a short, file-name-safe digest of s.
func hashName(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:8])
}

// masker hides secrets in text.
type masker struct{ r *strings.Replacer }

// newMasker returns a masker that replaces each sensitive option, and the
// value of each key=value one (when at least 4 bytes long, so that a short
// value does not garble the message), with "<masked>".
func newMasker(sensitive []string) masker {
	var secrets []string
	for _, o := range sensitive {
		secrets = append(secrets, o)
		if _, v, ok := strings.Cut(o, "="); ok && len(v) >= 4 {
			secrets = append(secrets, v)
		}
	}
	if len(secrets) == 0 {
		return masker{}
	}
	// Longest first: the replacer tries the pairs in order at each position.
	sort.SliceStable(secrets, func(i, j int) bool { return len(secrets[i]) > len(secrets[j]) })
	pairs := make([]string, 0, 2*len(secrets))
	for _, s := range secrets {
		pairs = append(pairs, s, masked)
	}
	return masker{strings.NewReplacer(pairs...)}
}

// mask returns s with the secrets replaced.
func (m masker) mask(s string) string {
	if m.r == nil {
		return s
	}
	return m.r.Replace(s)
}

// maskErr returns an error whose text is err's with the secrets replaced.
// When there is something to mask, the original error is dropped (not
// wrapped), since its text holds the secret.
func (m masker) maskErr(err error) error {
	if err == nil || m.r == nil {
		return err
	}
	s := err.Error()
	if ms := m.mask(s); ms != s {
		return maskedError(ms)
	}
	return err
}

// maskedError is an error whose secrets have been removed.
type maskedError string

func (e maskedError) Error() string { return string(e) }

package naming

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/subvolkit/subvolkit"
)

const (
	// MaxDNSLabel is the maximum length of a DNS-1123 label, and so of a
	// Kubernetes Service or Endpoints name and of a label value.
	MaxDNSLabel = 63

	// MaxSubvolName is the maximum length of a subvolume (directory) name.
	MaxSubvolName = 128

	// MaxEndpointPrefix is the longest prefix EndpointName and FromUID
	// accept: 63 - len("-") - 36 (a UUID) = 26, so that "<prefix>-<uid>"
	// always fits in a DNS-1123 label. The in-tree Kubernetes provisioner
	// had the same limit for its customepnameprefix parameter.
	MaxEndpointPrefix = MaxDNSLabel - 1 - uidLen

	// DefaultEndpointPrefix is the prefix EndpointName uses when given "",
	// the one the in-tree Kubernetes provisioner used.
	DefaultEndpointPrefix = "glusterfs-dynamic"

	// DefaultSubvolPrefix is the prefix FromUID uses when given "", the one
	// Kubernetes uses for dynamically provisioned PV names ("pvc-<uid>").
	DefaultSubvolPrefix = "pvc"

	// MaxVolumePrefix is the longest prefix VolumeName accepts. It leaves
	// room in MaxSubvolName for a useful part of the namespace and the
	// claim name.
	MaxVolumePrefix = 32

	// hashLen is the number of hex digits of SHA-256 appended to names that
	// had to be shortened or rewritten (40 bits).
	hashLen = 10

	// minTruncate is the smallest limit Truncate accepts.
	minTruncate = 16

	// shortUIDLen is how much of the UID VolumeName keeps.
	shortUIDLen = 8
)

// EndpointName returns "<prefix>-<uid>", the name of the Kubernetes
// Endpoints and Service that point at a subvolume provisioned for the
// claim with that UID. An empty prefix means DefaultEndpointPrefix, which
// gives the in-tree provisioner's "glusterfs-dynamic-<uid>".
//
// prefix must be a DNS-1123 label of at most MaxEndpointPrefix characters
// and uid a UUID (upper case is accepted and lower-cased); otherwise the
// error is of kind InvalidArgument. The result is a DNS-1123 label of at
// most MaxDNSLabel characters, whatever the claim's name.
func EndpointName(prefix, uid string) (string, error) {
	return uidName("endpoint name", "endpoint prefix", prefix, DefaultEndpointPrefix, uid)
}

// FromUID returns "<prefix>-<uid>", a subvolume name for the claim with that
// UID, for example "pvc-a71fa382-f77d-11e8-b229-005056a5c1c4". An empty
// prefix means DefaultSubvolPrefix ("pvc"), which gives the same name as
// the PV that Kubernetes and the CSI external-provisioner create for the
// claim, so FromUID("", uid) == ForRequest("pvc-"+uid) for a lower-case uid.
//
// The rules are EndpointName's: prefix must be a DNS-1123 label of at most
// MaxEndpointPrefix characters, uid a UUID (lower-cased), and the result is
// a DNS-1123 label that is also a valid subvolume name.
func FromUID(prefix, uid string) (string, error) {
	return uidName("name from uid", "subvolume prefix", prefix, DefaultSubvolPrefix, uid)
}

func uidName(op, what, prefix, def, uid string) (string, error) {
	if prefix == "" {
		prefix = def
	}
	if err := validateLabel(op, what, prefix, MaxEndpointPrefix); err != nil {
		return "", err
	}
	u, err := normalizeUID(op, uid)
	if err != nil {
		return "", err
	}
	return prefix + "-" + u, nil
}

// VolumeName returns the name the in-tree Kubernetes provisioner gave heketi
// volumes when its volumenameprefix parameter was set:
// "<prefix>_<namespace>_<pvc>_<short uid>", where the short uid is the first
// 8 hex digits of uid. (The in-tree provisioner appended a fresh random
// UUID instead, so its names could not be computed again; this one is
// deterministic.)
//
// The result matches heketi's volume name pattern ^[a-zA-Z0-9_-]+$, is a
// valid subvolume name and is at most MaxSubvolName bytes long. If namespace
// or pvc contain other characters (a claim name may contain '.'), each run
// of them becomes '-'; if the name would be too long, the namespace and
// claim parts are shortened. In both cases "-" and 10 hex digits of the
// SHA-256 of all four inputs are appended to the claim part, so distinct
// inputs do not collide:
//
//	<prefix>_<namespace'>_<pvc'>-<hash>_<short uid>
//
// prefix must be 1 to MaxVolumePrefix letters, digits and '-', starting
// with a letter or a digit (it must not contain '_', which separates the
// parts); namespace and pvc must not be empty; uid must be a UUID (upper
// case is accepted). Otherwise the error is of kind InvalidArgument.
//
// Two claims with the same namespace and name whose UIDs share their first
// 8 hex digits get the same name unless one of them needed a hash: the
// short uid carries 32 bits.
func VolumeName(prefix, namespace, pvc, uid string) (string, error) {
	const op = "volume name"
	if err := validateVolumePrefix(op, prefix); err != nil {
		return "", err
	}
	if namespace == "" {
		return "", subvolkit.Errorf(subvolkit.InvalidArgument, op, "", "namespace is empty")
	}
	if pvc == "" {
		return "", subvolkit.Errorf(subvolkit.InvalidArgument, op, "", "claim name is empty")
	}
	u, err := normalizeUID(op, uid)
	if err != nil {
		return "", err
	}
	short := u[:shortUIDLen]
	ns, nsChanged := heketiSafe(namespace)
	pv, pvChanged := heketiSafe(pvc)
	name := prefix + "_" + ns + "_" + pv + "_" + short
	if !nsChanged && !pvChanged && len(name) <= MaxSubvolName {
		return name, nil
	}
	h := hashOf(lengthPrefixed(prefix, namespace, pvc, u))
	budget := MaxSubvolName - len(prefix) - len("___") - len(short) - len("-") - hashLen
	ns, pv = shorten(ns, pv, budget)
	return prefix + "_" + ns + "_" + pv + "-" + h + "_" + short, nil
}

func validateVolumePrefix(op, prefix string) error {
	switch {
	case prefix == "":
		return subvolkit.Errorf(subvolkit.InvalidArgument, op, "", "volume name prefix is empty")
	case len(prefix) > MaxVolumePrefix:
		return subvolkit.Errorf(subvolkit.InvalidArgument, op, "",
			"volume name prefix %s is %d characters long, more than %d", quote(prefix), len(prefix), MaxVolumePrefix)
	case strings.IndexByte(prefix, '_') >= 0:
		return subvolkit.Errorf(subvolkit.InvalidArgument, op, "",
			"volume name prefix %s must not contain '_', which separates the parts of the name", quote(prefix))
	case !isAlnum(prefix[0]):
		return subvolkit.Errorf(subvolkit.InvalidArgument, op, "",
			"volume name prefix %s must start with a letter or a digit", quote(prefix))
	}
	for i := 0; i < len(prefix); i++ {
		if c := prefix[i]; !isAlnum(c) && c != '-' {
			return subvolkit.Errorf(subvolkit.InvalidArgument, op, "",
				"volume name prefix %s contains %s; only letters, digits and '-' are allowed", quote(prefix), charAt(prefix, i))
		}
	}
	return nil
}

// heketiSafe replaces each run of bytes other than ASCII letters, digits and
// '-' with a single '-', and reports whether it changed anything.
func heketiSafe(s string) (string, bool) {
	ok := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; !isAlnum(c) && c != '-' {
			ok = false
			break
		}
	}
	if ok {
		return s, false
	}
	var b strings.Builder
	run := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		if isAlnum(c) || c == '-' {
			b.WriteByte(c)
			run = false
			continue
		}
		if !run {
			b.WriteByte('-')
		}
		run = true
	}
	return b.String(), true
}

// shorten cuts a and b so that together they are at most budget bytes,
// sharing the budget fairly: the shorter one keeps all it can.
func shorten(a, b string, budget int) (string, string) {
	if len(a)+len(b) <= budget {
		return a, b
	}
	half := budget / 2
	switch {
	case len(a) <= half:
		return a, b[:budget-len(a)]
	case len(b) <= budget-half:
		return a[:budget-len(b)], b
	default:
		return a[:half], b[:budget-half]
	}
}

// ForRequest maps an arbitrary request name, such as the name of a CSI
// CreateVolume request ("pvc-<uid>"), to a subvolume name, deterministically.
//
// A name that is already valid (see ValidateSubvolName) and at most
// MaxDNSLabel bytes long is returned unchanged. Any other name is rewritten:
// ASCII letters are lower-cased, each run of bytes other than lower-case
// letters and digits becomes one '-', leading and trailing '-' are dropped,
// the result is cut so that the whole fits in MaxDNSLabel, and "-" and 10
// hex digits of the SHA-256 of the original name are appended. A rewritten
// name is therefore a DNS-1123 label, distinct names do not collide, and
// ForRequest of a result returns it unchanged.
//
// The error, of kind InvalidArgument, is reserved for names that are empty,
// "." or "..", or contain a NUL byte or '/': those are mistakes or attacks,
// not names to rewrite.
func ForRequest(name string) (string, error) {
	const op = "name for request"
	switch {
	case name == "":
		return "", subvolkit.Errorf(subvolkit.InvalidArgument, op, "", "request name is empty")
	case name == "." || name == "..":
		return "", subvolkit.Errorf(subvolkit.InvalidArgument, op, "", "request name %s is not a directory name", quote(name))
	case strings.IndexByte(name, 0) >= 0:
		return "", subvolkit.Errorf(subvolkit.InvalidArgument, op, "", "request name %s contains a NUL byte", quote(name))
	case strings.IndexByte(name, '/') >= 0:
		return "", subvolkit.Errorf(subvolkit.InvalidArgument, op, "", "request name %s contains '/'", quote(name))
	}
	if len(name) <= MaxDNSLabel && ValidateSubvolName(name) == nil {
		return name, nil
	}
	var b strings.Builder
	run := false
	for i := 0; i < len(name); i++ {
		c := name[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if isLowerAlnum(c) {
			b.WriteByte(c)
			run = false
			continue
		}
		if !run {
			b.WriteByte('-')
		}
		run = true
	}
	base := strings.Trim(b.String(), "-")
	if limit := MaxDNSLabel - len("-") - hashLen; len(base) > limit {
		base = strings.TrimRight(base[:limit], "-")
	}
	h := hashOf(name)
	if base == "" {
		return h, nil
	}
	return base + "-" + h, nil
}

// Truncate returns s if it is at most limit bytes long. Otherwise it returns
// the first limit-11 bytes of s (cut back to the start of a UTF-8 sequence,
// with trailing '-', '_' and '.' removed) followed by "-" and 10 hex digits
// of the SHA-256 of s: at most limit bytes, and distinct for distinct s.
//
// If s is a valid subvolume name, or a DNS-1123 label, and limit is at most
// MaxSubvolName, or MaxDNSLabel, the result is one too.
//
// Truncate panics if limit is less than 16.
func Truncate(s string, limit int) string {
	if limit < minTruncate {
		panic("naming: Truncate limit " + strconv.Itoa(limit) + " is less than " + strconv.Itoa(minTruncate))
	}
	if len(s) <= limit {
		return s
	}
	cut := limit - len("-") - hashLen
	for i := 0; i < utf8.UTFMax-1 && cut > 0 && !utf8.RuneStart(s[cut]); i++ {
		cut--
	}
	return strings.TrimRight(s[:cut], "-_.") + "-" + hashOf(s)
}

// hashOf returns the first hashLen hex digits of the SHA-256 of s.
func hashOf(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:hashLen/2])
}

// lengthPrefixed encodes parts unambiguously ("3:abc1:d"), so that moving
// bytes from one part to the next changes the encoding.
func lengthPrefixed(parts ...string) string {
	var b strings.Builder
	for _, p := range parts {
		b.WriteString(strconv.Itoa(len(p)))
		b.WriteByte(':')
		b.WriteString(p)
	}
	return b.String()
}

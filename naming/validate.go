package naming

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/subvolkit/subvolkit"
)

// uidLen is the length of a UUID in its RFC 4122 string form.
const uidLen = 36

// maxQuoted is how many bytes of a rejected name an error message quotes.
const maxQuoted = 48

// ValidateSubvolName returns nil if name can be used as a subvolume
// (directory) name. A valid name is 1 to MaxSubvolName bytes of ASCII
// letters, digits, '_', '.' and '-', starts with a letter or a digit (so it
// is never ".", ".." or a hidden file) and does not contain "..". Such a name
// cannot escape the directory it is created in.
//
// The error is of kind InvalidArgument; its message says what is wrong and
// quotes the name (shortened if it is long).
func ValidateSubvolName(name string) error {
	const op = "validate name"
	switch {
	case name == "":
		return subvolkit.Errorf(subvolkit.InvalidArgument, op, "", "subvolume name is empty")
	case name == "." || name == "..":
		return subvolkit.Errorf(subvolkit.InvalidArgument, op, "", "subvolume name %s is not a directory name", quote(name))
	case len(name) > MaxSubvolName:
		return subvolkit.Errorf(subvolkit.InvalidArgument, op, "",
			"subvolume name %s is %d bytes long, more than %d", quote(name), len(name), MaxSubvolName)
	case strings.IndexByte(name, 0) >= 0:
		return subvolkit.Errorf(subvolkit.InvalidArgument, op, "", "subvolume name %s contains a NUL byte", quote(name))
	case strings.IndexByte(name, '/') >= 0:
		return subvolkit.Errorf(subvolkit.InvalidArgument, op, "", "subvolume name %s contains '/'", quote(name))
	case strings.Contains(name, ".."):
		return subvolkit.Errorf(subvolkit.InvalidArgument, op, "", "subvolume name %s contains \"..\"", quote(name))
	case !isAlnum(name[0]):
		return subvolkit.Errorf(subvolkit.InvalidArgument, op, "",
			"subvolume name %s must start with a letter or a digit", quote(name))
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; !isAlnum(c) && c != '_' && c != '.' && c != '-' {
			return subvolkit.Errorf(subvolkit.InvalidArgument, op, "",
				"subvolume name %s contains %s at byte %d; only letters, digits, '_', '.' and '-' are allowed",
				quote(name), charAt(name, i), i)
		}
	}
	return nil
}

// IsDNS1123Label reports whether s is a DNS-1123 label, as Kubernetes
// requires of the names of Services, Endpoints and namespaces: 1 to 63
// characters of lower-case letters, digits and '-', starting and ending with
// a letter or a digit.
func IsDNS1123Label(s string) bool {
	if s == "" || len(s) > MaxDNSLabel {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !isLowerAlnum(c) && c != '-' {
			return false
		}
	}
	return isLowerAlnum(s[0]) && isLowerAlnum(s[len(s)-1])
}

// ValidateDNS1123Label returns nil if s is a DNS-1123 label (see
// IsDNS1123Label), and otherwise an error of kind InvalidArgument that says
// why not.
func ValidateDNS1123Label(s string) error {
	return validateLabel("validate DNS label", "name", s, MaxDNSLabel)
}

// validateLabel checks that s is a DNS-1123 label of at most limit bytes.
// what names s in the error message.
func validateLabel(op, what, s string, limit int) error {
	if s == "" {
		return subvolkit.Errorf(subvolkit.InvalidArgument, op, "", "%s is empty", what)
	}
	if len(s) > limit {
		return subvolkit.Errorf(subvolkit.InvalidArgument, op, "",
			"%s %s is %d characters long, more than %d", what, quote(s), len(s), limit)
	}
	if !IsDNS1123Label(s) {
		return subvolkit.Errorf(subvolkit.InvalidArgument, op, "",
			"%s %s must consist of lower-case letters, digits and '-', and start and end with a letter or a digit",
			what, quote(s))
	}
	return nil
}

// normalizeUID returns uid, a UUID in its RFC 4122 string form
// ("a71fa382-f77d-11e8-b229-005056a5c1c4", as Kubernetes object UIDs are),
// in lower case. Upper-case hex digits are accepted. Any other form (braces,
// a "urn:uuid:" prefix, missing hyphens) is an error of kind
// InvalidArgument.
func normalizeUID(op, uid string) (string, error) {
	if len(uid) != uidLen {
		return "", subvolkit.Errorf(subvolkit.InvalidArgument, op, "",
			"uid %s is not a UUID: it has %d characters, want %d (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)",
			quote(uid), len(uid), uidLen)
	}
	b := []byte(uid)
	for i, c := range b {
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return "", subvolkit.Errorf(subvolkit.InvalidArgument, op, "",
					"uid %s is not a UUID: want '-' at position %d", quote(uid), i)
			}
			continue
		}
		switch {
		case '0' <= c && c <= '9', 'a' <= c && c <= 'f':
		case 'A' <= c && c <= 'F':
			b[i] = c + 'a' - 'A'
		default:
			return "", subvolkit.Errorf(subvolkit.InvalidArgument, op, "",
				"uid %s is not a UUID: %s at position %d is not a hex digit", quote(uid), charAt(uid, i), i)
		}
	}
	return string(b), nil
}

// quote returns s quoted for an error message, shortened to maxQuoted bytes.
func quote(s string) string {
	if len(s) <= maxQuoted {
		return strconv.Quote(s)
	}
	return strconv.Quote(s[:maxQuoted]) + "..."
}

// charAt describes the character that starts at byte i of s for an error
// message: quoted if it is valid UTF-8, as a hex byte otherwise.
func charAt(s string, i int) string {
	r, size := utf8.DecodeRuneInString(s[i:])
	if r == utf8.RuneError && size <= 1 {
		return fmt.Sprintf("byte %#02x", s[i])
	}
	return strconv.QuoteRune(r)
}

func isLowerAlnum(c byte) bool { return 'a' <= c && c <= 'z' || '0' <= c && c <= '9' }

func isAlnum(c byte) bool { return isLowerAlnum(c) || 'A' <= c && c <= 'Z' }

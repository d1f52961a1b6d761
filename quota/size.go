package quota

import (
	"math"
	"math/big"
	"strconv"
	"strings"

	"github.com/subvolkit/subvolkit"
)

// Binary units, in bytes. Gluster's KB, MB, GB, TB and PB are these (see
// the package documentation).
const (
	KiB int64 = 1 << (10 * (iota + 1)) // 1024 bytes
	MiB                                // 1024 KiB
	GiB                                // 1024 MiB
	TiB                                // 1024 GiB
	PiB                                // 1024 TiB
	EiB                                // 1024 PiB
)

// maxSizeLen bounds the length of the strings ParseSize accepts, and so the
// work it does. No real size is anywhere near this long.
const maxSizeLen = 100

// unit is a multiplier num/den.
type unit struct{ num, den int64 }

// k8sUnits are the suffixes of Kubernetes quantities, which are case
// sensitive, plus "KiB".."EiB" (what HumanSize prints).
var k8sUnits = map[string]unit{
	"":    {1, 1},
	"n":   {1, 1_000_000_000},
	"u":   {1, 1_000_000},
	"m":   {1, 1_000},
	"k":   {1_000, 1},
	"M":   {1_000_000, 1},
	"G":   {1_000_000_000, 1},
	"T":   {1_000_000_000_000, 1},
	"P":   {1_000_000_000_000_000, 1},
	"E":   {1_000_000_000_000_000_000, 1},
	"Ki":  {KiB, 1},
	"Mi":  {MiB, 1},
	"Gi":  {GiB, 1},
	"Ti":  {TiB, 1},
	"Pi":  {PiB, 1},
	"Ei":  {EiB, 1},
	"KiB": {KiB, 1},
	"MiB": {MiB, 1},
	"GiB": {GiB, 1},
	"TiB": {TiB, 1},
	"PiB": {PiB, 1},
	"EiB": {EiB, 1},
}

// glusterUnits are the units of the gluster CLI, 1024-based; Gluster
// compares them without regard to case, so the keys are upper case.
var glusterUnits = map[string]unit{
	"B":     {1, 1},
	"BYTES": {1, 1},
	"KB":    {KiB, 1},
	"MB":    {MiB, 1},
	"GB":    {GiB, 1},
	"TB":    {TiB, 1},
	"PB":    {PiB, 1},
}

// ParseSize parses a size and returns it in bytes. It accepts:
//
//   - Kubernetes quantities: "100", "10Gi", "500Mi", "1.5Gi", "1G"
//     (10^9), "100k" (10^5), "1e9", "1E3". The suffixes are case
//     sensitive, as in Kubernetes: k, M, G, T, P, E are powers of 1000,
//     Ki, Mi, Gi, Ti, Pi, Ei powers of 1024, and m, u, n are milli, micro
//     and nano ("500m" is half a byte, rounded up to 1, not 500 MB).
//   - Gluster units: "10GB", "10MB", "1TB", "10KB", "512Bytes", "10.0MB",
//     and B, PB. Gluster's units are powers of 1024, so "10GB" is 10 GiB,
//     10737418240 bytes, not 10^10; like Gluster, ParseSize ignores their
//     case ("10gb" == "10GB").
//   - KiB, MiB, GiB, TiB, PiB and EiB, as HumanSize prints them.
//
// Space around the number and between it and the unit is ignored. A
// fractional number of bytes is rounded up. Zero is accepted; callers that
// need a positive size check for it.
//
// The error, of kind InvalidArgument, says what is wrong: an empty string,
// a negative number, no number, an unknown unit, or a size that does not
// fit in an int64.
func ParseSize(s string) (int64, error) {
	const op = "parse size"
	in := strings.TrimSpace(s)
	switch {
	case in == "":
		return 0, subvolkit.Errorf(subvolkit.InvalidArgument, op, "", "size is empty")
	case len(in) > maxSizeLen:
		return 0, subvolkit.Errorf(subvolkit.InvalidArgument, op, "",
			"size %.20q... is %d bytes long, more than %d", in, len(in), maxSizeLen)
	case in[0] == '-':
		return 0, subvolkit.Errorf(subvolkit.InvalidArgument, op, "", "size %q is negative", in)
	}
	num := strings.TrimPrefix(in, "+")

	// The number: digits, with at most one '.'.
	i, intEnd, dot := 0, -1, false
	for ; i < len(num); i++ {
		c := num[i]
		if c == '.' && !dot {
			dot, intEnd = true, i
			continue
		}
		if c < '0' || c > '9' {
			break
		}
	}
	mant := num[:i]
	intPart, fracPart := mant, ""
	if dot {
		intPart, fracPart = mant[:intEnd], mant[intEnd+1:]
	}
	if intPart == "" && fracPart == "" {
		return 0, subvolkit.Errorf(subvolkit.InvalidArgument, op, "", "size %q does not start with a number", in)
	}

	// An exponent ("1e9", "1E-3"), or a unit; "E" alone is exa.
	rest := num[i:]
	exp := 0
	var u unit
	if len(rest) >= 2 && (rest[0] == 'e' || rest[0] == 'E') && isExponent(rest[1:]) {
		var ok bool
		if exp, ok = parseExponent(rest[1:]); !ok {
			return 0, subvolkit.Errorf(subvolkit.InvalidArgument, op, "",
				"size %q has a malformed exponent %q (a number may have an exponent or a unit, not both)", in, rest)
		}
		u = unit{1, 1}
	} else {
		var ok bool
		if u, ok = lookupUnit(strings.TrimSpace(rest)); !ok {
			return 0, subvolkit.Errorf(subvolkit.InvalidArgument, op, "",
				"size %q has an unknown unit %q: use a Kubernetes suffix (Ki, Mi, Gi, Ti, Pi, Ei; k, M, G, T, P, E) "+
					"or a Gluster unit (B, KB, MB, GB, TB, PB, which are 1024-based)", in, strings.TrimSpace(rest))
		}
	}

	n, ok := scale(intPart+fracPart, exp-len(fracPart), u)
	if !ok {
		return 0, subvolkit.Errorf(subvolkit.InvalidArgument, op, "",
			"size %q is too large: more than %d bytes", in, int64(math.MaxInt64))
	}
	return n, nil
}

// isExponent reports whether s looks like the exponent of a number
// ("9", "+3", "-3", maybe followed by junk), rather than a unit.
func isExponent(s string) bool {
	if s[0] == '+' || s[0] == '-' {
		s = s[1:]
	}
	return s != "" && '0' <= s[0] && s[0] <= '9'
}

// parseExponent parses a signed decimal exponent that must make up all of s.
// Exponents beyond ±10^6 are clamped: they overflow or round up to 1 anyway.
func parseExponent(s string) (int, bool) {
	neg := false
	switch s[0] {
	case '-':
		neg = true
		s = s[1:]
	case '+':
		s = s[1:]
	}
	if s == "" {
		return 0, false
	}
	e := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		if e < 1_000_000 {
			e = e*10 + int(c-'0')
		}
	}
	if neg {
		e = -e
	}
	return e, true
}

func lookupUnit(s string) (unit, bool) {
	if u, ok := k8sUnits[s]; ok {
		return u, true
	}
	u, ok := glusterUnits[strings.ToUpper(s)]
	return u, ok
}

// scale returns ceil(digits * 10^exp10 * u.num / u.den), where digits is a
// string of decimal digits, and false if that does not fit in an int64.
func scale(digits string, exp10 int, u unit) (int64, bool) {
	digits = strings.TrimLeft(digits, "0")
	if digits == "" {
		return 0, true
	}
	// The value is at least 10^(mag-1) * 10^-9 and less than
	// 10^mag * 2^60, where mag is the number of integer digits.
	mag := len(digits) + exp10
	switch {
	case mag > 40:
		return 0, false
	case mag < -40:
		return 1, true // more than zero, less than one byte
	}
	n, _ := new(big.Int).SetString(digits, 10)
	n.Mul(n, big.NewInt(u.num))
	d := big.NewInt(u.den)
	ten := big.NewInt(10)
	if exp10 > 0 {
		n.Mul(n, new(big.Int).Exp(ten, big.NewInt(int64(exp10)), nil))
	} else if exp10 < 0 {
		d.Mul(d, new(big.Int).Exp(ten, big.NewInt(int64(-exp10)), nil))
	}
	q, r := n.QuoRem(n, d, new(big.Int))
	if r.Sign() != 0 {
		q.Add(q, big.NewInt(1))
	}
	if !q.IsInt64() {
		return 0, false
	}
	return q.Int64(), true
}

// suffix is a unit for formatting.
type suffix struct {
	name  string
	bytes uint64
}

var (
	k8sSuffixes = []suffix{
		{"Ei", uint64(EiB)}, {"Pi", uint64(PiB)}, {"Ti", uint64(TiB)},
		{"Gi", uint64(GiB)}, {"Mi", uint64(MiB)}, {"Ki", uint64(KiB)},
	}
	glusterSuffixes = []suffix{
		{"PB", uint64(PiB)}, {"TB", uint64(TiB)}, {"GB", uint64(GiB)},
		{"MB", uint64(MiB)}, {"KB", uint64(KiB)},
	}
)

// exact renders n with the largest of suffixes that divides it exactly, or
// as a plain number. A negative n gets a '-' sign.
func exact(n int64, suffixes []suffix) string {
	if n == 0 {
		return "0"
	}
	sign, u := abs(n)
	for _, s := range suffixes {
		if u%s.bytes == 0 {
			return sign + strconv.FormatUint(u/s.bytes, 10) + s.name
		}
	}
	return sign + strconv.FormatUint(u, 10)
}

// abs returns the sign of n ("" or "-") and its magnitude; it is correct
// for math.MinInt64 too.
func abs(n int64) (string, uint64) {
	if n < 0 {
		return "-", uint64(-n)
	}
	return "", uint64(n)
}

// FormatSize renders n bytes as a Kubernetes quantity, exactly, with the
// largest binary suffix that divides it: 10737418240 is "10Gi", 1536 is
// "1536" (never "1.5Ki") and 0 is "0". ParseSize(FormatSize(n)) == n for
// every n >= 0. A negative n is rendered with a '-' sign, which ParseSize
// rejects.
func FormatSize(n int64) string { return exact(n, k8sSuffixes) }

// GlusterLimit renders n bytes for "gluster volume quota VOL limit-usage
// PATH SIZE", which takes an integer with a 1024-based KB, MB, GB, TB or PB
// suffix, or plain bytes. It uses the largest unit that divides n exactly:
// 10485760 is "10MB", 1000 is "1000". ParseSize(GlusterLimit(n)) == n for
// every n >= 0.
//
// Gluster accepts limits from 1 to math.MaxInt64 bytes; GlusterLimit does
// not check that, so callers must reject n <= 0 themselves.
func GlusterLimit(n int64) string { return exact(n, glusterSuffixes) }

// RoundUp returns the smallest multiple of unit that is at least n (for
// example to round a request up to whole GiB). unit must be positive. The
// error, of kind InvalidArgument, reports a unit <= 0 or a result that does
// not fit in an int64.
func RoundUp(n, unit int64) (int64, error) {
	const op = "round up"
	if unit <= 0 {
		return 0, subvolkit.Errorf(subvolkit.InvalidArgument, op, "", "unit %d is not positive", unit)
	}
	r := n % unit
	switch {
	case r == 0:
		return n, nil
	case r < 0: // n < 0: truncating towards zero is rounding up
		return n - r, nil
	case n > math.MaxInt64-(unit-r):
		return 0, subvolkit.Errorf(subvolkit.InvalidArgument, op, "",
			"%d bytes rounded up to a multiple of %s does not fit in an int64", n, FormatSize(unit))
	}
	return n + unit - r, nil
}

// HumanSize renders n bytes for people, with a 1024-based unit and at most
// one decimal: "512 B", "1.5 GiB", "10 GiB". It rounds, so unlike
// FormatSize its result is not exact.
func HumanSize(n int64) string {
	sign, u := abs(n)
	if u < uint64(KiB) {
		return sign + strconv.FormatUint(u, 10) + " B"
	}
	units := [...]string{"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"}
	i := 0
	for i+1 < len(units) && u >= uint64(1)<<(10*(i+2)) {
		i++
	}
	s := strconv.FormatFloat(float64(u)/float64(uint64(1)<<(10*(i+1))), 'f', 1, 64)
	if s == "1024.0" && i+1 < len(units) { // 1023.95 KiB and more is 1 MiB
		s, i = "1.0", i+1
	}
	return sign + strings.TrimSuffix(s, ".0") + " " + units[i]
}

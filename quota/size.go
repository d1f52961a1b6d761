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

// maxSizeLen bounds the length of the strings the parsers accept, and so
// the work they do. No real size is anywhere near this long.
const maxSizeLen = 100

// unit is a multiplier num/den.
type unit struct{ num, den int64 }

// quantitySuffixes are the suffixes of Kubernetes quantities, case
// sensitive, as resource.ParseQuantity reads them: binary SI (Ki..Ei) and
// decimal SI (n, u, m, none, k, M, G, T, P, E).
var quantitySuffixes = map[string]unit{
	"":   {1, 1},
	"n":  {1, 1_000_000_000},
	"u":  {1, 1_000_000},
	"m":  {1, 1_000},
	"k":  {1_000, 1},
	"M":  {1_000_000, 1},
	"G":  {1_000_000_000, 1},
	"T":  {1_000_000_000_000, 1},
	"P":  {1_000_000_000_000_000, 1},
	"E":  {1_000_000_000_000_000_000, 1},
	"Ki": {KiB, 1},
	"Mi": {MiB, 1},
	"Gi": {GiB, 1},
	"Ti": {TiB, 1},
	"Pi": {PiB, 1},
	"Ei": {EiB, 1},
}

// glusterUnits are the units of the gluster CLI, 1024-based; Gluster
// compares them without regard to case, so the keys are upper case.
// "Bytes" is how `quota list` prints a size below 1 KB.
var glusterUnits = map[string]unit{
	"":      {1, 1},
	"B":     {1, 1},
	"BYTES": {1, 1},
	"KB":    {KiB, 1},
	"MB":    {MiB, 1},
	"GB":    {GiB, 1},
	"TB":    {TiB, 1},
	"PB":    {PiB, 1},
}

// ParseQuantity parses a Kubernetes quantity as resource.ParseQuantity reads
// it and returns its value in bytes, rounded up as Quantity.Value does:
// "100", "10Gi", "500Mi", "1.5Gi", "1G" (10^9), "100k" (10^5), "1e9", "1E3".
// Suffixes are case sensitive: Ki, Mi, Gi, Ti, Pi, Ei are powers of 1024;
// k, M, G, T, P, E powers of 1000; m, u, n are milli, micro and nano ("500m"
// is half a byte, rounded up to 1, not 500 MB). "1g", "1GB" and "1 Gi" are
// invalid, as in Kubernetes. Zero is accepted; callers that need a positive
// size check for it.
//
// The error, of kind InvalidArgument, says what is wrong: an empty string, a
// negative number, no number, an unknown suffix, or a value that does not
// fit in an int64.
func ParseQuantity(s string) (int64, error) {
	const op = "parse quantity"
	intPart, fracPart, rest, err := splitNumber(op, s, true)
	if err != nil {
		return 0, err
	}
	exp := 0
	var u unit
	if len(rest) >= 2 && (rest[0] == 'e' || rest[0] == 'E') && isExponent(rest[1:]) {
		var ok bool
		if exp, ok = parseExponent(rest[1:]); !ok {
			return 0, subvolkit.Errorf(subvolkit.InvalidArgument, op, "",
				"quantity %q has a malformed exponent %q (a number may have an exponent or a suffix, not both)", s, rest)
		}
		u = unit{1, 1}
	} else {
		var ok bool
		if u, ok = quantitySuffixes[rest]; !ok {
			return 0, subvolkit.Errorf(subvolkit.InvalidArgument, op, "",
				"quantity %q has an unknown suffix %q: Kubernetes takes Ki, Mi, Gi, Ti, Pi, Ei (1024-based) "+
					"or k, M, G, T, P, E (1000-based), case sensitive", s, rest)
		}
	}
	n, ok := scale(intPart+fracPart, exp-len(fracPart), u)
	if !ok {
		return 0, subvolkit.Errorf(subvolkit.InvalidArgument, op, "",
			"quantity %q is too large: more than %d bytes", s, int64(math.MaxInt64))
	}
	return n, nil
}

// ParseGlusterSize parses a size as the gluster CLI reads and prints it:
// a number (a fraction is rounded up to whole bytes), then a 1024-based unit
// KB, MB, GB, TB or PB, or B, "Bytes" or none for bytes, in any case, as
// Gluster compares them ("10GB" == "10gb" is 10737418240 bytes, not 10^10).
// It reads what `volume quota VOL list` prints ("10.0GB", "512Bytes") and
// what `limit-usage` takes. Space around the size is ignored, not inside it.
//
// The error, of kind InvalidArgument, says what is wrong, as ParseQuantity's.
func ParseGlusterSize(s string) (int64, error) {
	const op = "parse gluster size"
	intPart, fracPart, rest, err := splitNumber(op, strings.TrimSpace(s), false)
	if err != nil {
		return 0, err
	}
	u, ok := glusterUnits[strings.ToUpper(rest)]
	if !ok {
		return 0, subvolkit.Errorf(subvolkit.InvalidArgument, op, "",
			"size %q has an unknown unit %q: gluster takes B, KB, MB, GB, TB, PB (1024-based)", s, rest)
	}
	n, ok := scale(intPart+fracPart, -len(fracPart), u)
	if !ok {
		return 0, subvolkit.Errorf(subvolkit.InvalidArgument, op, "",
			"size %q is too large: more than %d bytes", s, int64(math.MaxInt64))
	}
	return n, nil
}

// splitNumber splits s into the integer and fraction digits of its leading
// number and the rest. A leading '+' is allowed when plus is set.
func splitNumber(op, s string, plus bool) (intPart, fracPart, rest string, err error) {
	switch {
	case s == "":
		return "", "", "", subvolkit.Errorf(subvolkit.InvalidArgument, op, "", "size is empty")
	case len(s) > maxSizeLen:
		return "", "", "", subvolkit.Errorf(subvolkit.InvalidArgument, op, "",
			"size %.20q... is %d bytes long, more than %d", s, len(s), maxSizeLen)
	case s[0] == '-':
		return "", "", "", subvolkit.Errorf(subvolkit.InvalidArgument, op, "", "size %q is negative", s)
	}
	num := s
	if plus {
		num = strings.TrimPrefix(s, "+")
	}
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
	intPart = mant
	if dot {
		intPart, fracPart = mant[:intEnd], mant[intEnd+1:]
	}
	if intPart == "" && fracPart == "" {
		return "", "", "", subvolkit.Errorf(subvolkit.InvalidArgument, op, "", "size %q does not start with a number", s)
	}
	return intPart, fracPart, num[i:], nil
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

// FormatQuantity renders n bytes as a Kubernetes quantity, exactly, with the
// largest binary suffix that divides it: 10737418240 is "10Gi", 1536 is
// "1536" (never "1.5Ki") and 0 is "0". ParseQuantity(FormatQuantity(n)) == n
// for every n >= 0. A negative n is rendered with a '-' sign, which
// ParseQuantity rejects.
func FormatQuantity(n int64) string { return exact(n, k8sSuffixes) }

// FormatGlusterSize renders n bytes as the gluster CLI takes a size (for
// "gluster volume quota VOL limit-usage PATH SIZE"): an integer with a
// 1024-based KB, MB, GB, TB or PB unit, or plain bytes. It uses the largest
// unit that divides n exactly: 10485760 is "10MB", 1000 is "1000".
// ParseGlusterSize(FormatGlusterSize(n)) == n for every n >= 0.
//
// Gluster accepts limits from 1 to math.MaxInt64 bytes; FormatGlusterSize
// does not check that, so callers must reject n <= 0 themselves.
func FormatGlusterSize(n int64) string { return exact(n, glusterSuffixes) }

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
			"%d bytes rounded up to a multiple of %s does not fit in an int64", n, FormatQuantity(unit))
	}
	return n + unit - r, nil
}

// HumanSize renders n bytes for people, with a 1024-based unit and at most
// one decimal: "512 B", "1.5 GiB", "10 GiB". It rounds, so unlike
// FormatQuantity its result is not exact.
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

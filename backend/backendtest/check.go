package backendtest

import (
	"errors"
	"fmt"
	"reflect"
	"testing"
)

// The suite's assertions: plain t.Errorf (check*) and t.Fatalf (must*)
// helpers, so that the public package depends on nothing but the standard
// library. msgAndArgs is an optional format string and its arguments.

func msg(msgAndArgs []any) string {
	if len(msgAndArgs) == 0 {
		return ""
	}
	if f, ok := msgAndArgs[0].(string); ok {
		return fmt.Sprintf(f, msgAndArgs[1:]...) + ": "
	}
	return fmt.Sprint(msgAndArgs...) + ": "
}

func isEmpty(v any) bool {
	if v == nil {
		return true
	}
	r := reflect.ValueOf(v)
	switch r.Kind() {
	case reflect.Slice, reflect.Map, reflect.String, reflect.Array, reflect.Chan:
		return r.Len() == 0
	case reflect.Pointer, reflect.Interface:
		return r.IsNil()
	}
	return r.IsZero()
}

func isNil(v any) bool {
	if v == nil {
		return true
	}
	r := reflect.ValueOf(v)
	switch r.Kind() {
	case reflect.Pointer, reflect.Interface, reflect.Slice, reflect.Map, reflect.Func, reflect.Chan:
		return r.IsNil()
	}
	return false
}

func mustNoError(t *testing.T, err error, msgAndArgs ...any) {
	t.Helper()
	if err != nil {
		t.Fatalf("%sunexpected error: %v", msg(msgAndArgs), err)
	}
}

func mustError(t *testing.T, err error, msgAndArgs ...any) {
	t.Helper()
	if err == nil {
		t.Fatalf("%swant an error, got nil", msg(msgAndArgs))
	}
}

func mustEqual(t *testing.T, want, got any, msgAndArgs ...any) {
	t.Helper()
	if !reflect.DeepEqual(want, got) {
		t.Fatalf("%sgot %#v, want %#v", msg(msgAndArgs), got, want)
	}
}

func checkEqual(t *testing.T, want, got any, msgAndArgs ...any) bool {
	t.Helper()
	if !reflect.DeepEqual(want, got) {
		t.Errorf("%sgot %#v, want %#v", msg(msgAndArgs), got, want)
		return false
	}
	return true
}

func checkNotEqual(t *testing.T, notWant, got any, msgAndArgs ...any) {
	t.Helper()
	if reflect.DeepEqual(notWant, got) {
		t.Errorf("%sgot %#v, want anything else", msg(msgAndArgs), got)
	}
}

func mustNotNil(t *testing.T, v any, msgAndArgs ...any) {
	t.Helper()
	if isNil(v) {
		t.Fatalf("%sunexpected nil", msg(msgAndArgs))
	}
}

func mustNil(t *testing.T, v any, msgAndArgs ...any) {
	t.Helper()
	if !isNil(v) {
		t.Fatalf("%sgot %#v, want nil", msg(msgAndArgs), v)
	}
}

func mustTrue(t *testing.T, ok bool, msgAndArgs ...any) {
	t.Helper()
	if !ok {
		t.Fatalf("%sis false", msg(msgAndArgs))
	}
}

func checkTrue(t *testing.T, ok bool, msgAndArgs ...any) bool {
	t.Helper()
	if !ok {
		t.Errorf("%sis false", msg(msgAndArgs))
	}
	return ok
}

func checkFalse(t *testing.T, ok bool, msgAndArgs ...any) bool {
	t.Helper()
	if ok {
		t.Errorf("%sis true", msg(msgAndArgs))
	}
	return !ok
}

func checkEmpty(t *testing.T, v any, msgAndArgs ...any) {
	t.Helper()
	if !isEmpty(v) {
		t.Errorf("%sgot %#v, want empty", msg(msgAndArgs), v)
	}
}

func checkNotEmpty(t *testing.T, v any, msgAndArgs ...any) {
	t.Helper()
	if isEmpty(v) {
		t.Errorf("%sis empty", msg(msgAndArgs))
	}
}

func mustLen[S ~[]E, E any](t *testing.T, s S, n int, msgAndArgs ...any) {
	t.Helper()
	if len(s) != n {
		t.Fatalf("%shas %d elements, want %d", msg(msgAndArgs), len(s), n)
	}
}

type ordered interface {
	~int | ~int32 | ~int64 | ~uint64 | ~float64
}

func checkGreaterOrEqual[N ordered](t *testing.T, a, b N, msgAndArgs ...any) bool {
	t.Helper()
	if a < b {
		t.Errorf("%s%v is less than %v", msg(msgAndArgs), a, b)
		return false
	}
	return true
}

func mustGreaterOrEqual[N ordered](t *testing.T, a, b N, msgAndArgs ...any) {
	t.Helper()
	if a < b {
		t.Fatalf("%s%v is less than %v", msg(msgAndArgs), a, b)
	}
}

func mustLessOrEqual[N ordered](t *testing.T, a, b N, msgAndArgs ...any) {
	t.Helper()
	if a > b {
		t.Fatalf("%s%v is more than %v", msg(msgAndArgs), a, b)
	}
}

func checkLess[N ordered](t *testing.T, a, b N, msgAndArgs ...any) {
	t.Helper()
	if a >= b {
		t.Errorf("%s%v is not less than %v", msg(msgAndArgs), a, b)
	}
}

func checkErrorIs(t *testing.T, err, target error, msgAndArgs ...any) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Errorf("%serror %v is not %v", msg(msgAndArgs), err, target)
	}
}

func checkNotErrorIs(t *testing.T, err, target error, msgAndArgs ...any) {
	t.Helper()
	if errors.Is(err, target) {
		t.Errorf("%serror %v is %v", msg(msgAndArgs), err, target)
	}
}

func checkErrorAs(t *testing.T, err error, target any, msgAndArgs ...any) {
	t.Helper()
	if !errors.As(err, target) {
		t.Errorf("%serror %v is not a %T", msg(msgAndArgs), err, target)
	}
}

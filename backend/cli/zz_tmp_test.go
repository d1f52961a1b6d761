package cli_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/subvolkit/subvolkit/backend"
	"github.com/subvolkit/subvolkit/backend/cli"
	"github.com/subvolkit/subvolkit/quota"
)

func TestZZTakeTiming(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	for range 20 {
		if err := e.b.Warm(ctx, 3*quota.MiB); err != nil {
			t.Fatal(err)
		}
	}
	var marks []time.Time
	cli.SetFailpointHook(e.b, func(s string) { marks = append(marks, time.Now()) })
	for i := range 15 {
		marks = marks[:0]
		t0 := time.Now()
		_, ok, err := e.b.TakeWarm(ctx, &backend.CreateRequest{Name: fmt.Sprintf("t%d", i), SizeBytes: 3 * quota.MiB, Owner: &backend.Ownership{UID: 5, GID: 5, Mode: 0o755}})
		t1 := time.Now()
		if err != nil || !ok {
			t.Fatal(err, ok)
		}
		s := fmt.Sprintf("total %v:", t1.Sub(t0))
		prev := t0
		for _, m := range marks {
			s += fmt.Sprintf(" %v", m.Sub(prev))
			prev = m
		}
		s += fmt.Sprintf(" end %v", t1.Sub(prev))
		t.Log(s)
	}
}

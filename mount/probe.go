package mount

import (
	"context"
	"net"
	"strconv"
	"time"
)

// probeResult says which servers answered a probe.
type probeResult struct {
	// ordered lists the servers that answered, then those not heard
	// from when the order was decided, then those that failed, each group
	// in the given order.
	ordered []string
	// live is how many servers at the head of ordered answered.
	live int
}

// probeGrace is how long probe still waits for a more preferred server once
// a less preferred one has answered: a reachable glusterd answers a TCP
// connect in well under this, an unreachable one never does.
const probeGrace = 250 * time.Millisecond

// probe dials TCP port on every server in parallel, each with the given
// timeout, and orders the servers that answered first. It returns as soon as
// the order is known: when the most preferred server that has not failed
// has answered, or probeGrace after some server answered. An error is
// returned only when ctx ends.
func probe(ctx context.Context, servers []string, port int, timeout time.Duration) (probeResult, error) {
	if len(servers) == 0 {
		return probeResult{}, nil
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // stops the dials still running
	type res struct {
		i  int
		ok bool
	}
	ch := make(chan res, len(servers))
	for i, s := range servers {
		go func() {
			d := net.Dialer{Timeout: timeout}
			c, err := d.DialContext(ctx, "tcp", net.JoinHostPort(s, strconv.Itoa(port)))
			if err == nil {
				_ = c.Close()
			}
			ch <- res{i, err == nil}
		}()
	}
	state := make([]int, len(servers)) // 0 pending, 1 live, -1 dead
	var grace <-chan time.Time
wait:
	for range servers {
		var r res
		select {
		case r = <-ch:
		case <-grace:
			break wait
		case <-ctx.Done():
			return probeResult{}, ctx.Err()
		}
		state[r.i] = -1
		if r.ok {
			state[r.i] = 1
		}
		// Decided once the first server that has not failed is live.
		for _, st := range state {
			if st == -1 {
				continue
			}
			if st == 1 {
				break wait
			}
			break
		}
		if r.ok && grace == nil {
			t := time.NewTimer(min(probeGrace, timeout))
			defer t.Stop()
			grace = t.C
		}
	}
	// Live servers, then those not heard from yet, then the dead.
	var out probeResult
	for _, want := range []int{1, 0, -1} {
		for i, s := range servers {
			if state[i] == want {
				out.ordered = append(out.ordered, s)
			}
		}
		if want == 1 {
			out.live = len(out.ordered)
		}
	}
	return out, nil
}

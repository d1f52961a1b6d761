package heketi

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"

	client "github.com/heketi/heketi/client/api/go-client"

	"github.com/subvolkit/subvolkit"
)

// HTTPError is the error of a heketi request that the server answered
// with an unexpected status. The go-client keeps only the body's text; the
// backend's HTTP performer records the status beside it. Reach it with
// errors.As.
type HTTPError struct {
	// StatusCode is the HTTP status of the answer that failed the call
	// (for a job, the /queue poll's 500).
	StatusCode int
	// Message is the server's text, as heketi's client reports it.
	Message string
}

// Error returns the server's message.
func (e *HTTPError) Error() string {
	return e.Message + " (HTTP " + strconv.Itoa(e.StatusCode) + ")"
}

// performer is the go-client's HttpPerformer for one call: it binds every
// request of the call, /queue polls and the followed 303 included, to the
// call's context, bounds the requests in flight, and records the status of
// the last answer, which the go-client's errors lose.
type performer struct {
	b     *Backend
	ctx   context.Context
	check client.CheckRedirectFunc // the go-client's: re-signs the JWT

	status     int    // status of the last answer, 0 after a transport error
	retryAfter string // its Retry-After header
	requests   int
	accepted   string // the /queue URL of a job the server accepted (202)
}

func (p *performer) Do(req *http.Request) (*http.Response, error) {
	p.requests++
	p.status, p.retryAfter = 0, ""
	if err := p.ctx.Err(); err != nil {
		return nil, err
	}
	select {
	case p.b.sem <- struct{}{}:
	case <-p.ctx.Done():
		return nil, p.ctx.Err()
	}
	defer func() { <-p.b.sem }()
	hc := *p.b.hc
	hc.CheckRedirect = p.check
	rctx, cancel := p.ctx, context.CancelFunc(nil)
	if req.Method != http.MethodGet {
		// A request that starts a job is not abandoned once sent: heketi
		// answers it at once, and abandoning it would leave a job whose
		// /queue URL the backend never learns. Polls (GET) end with the
		// context.
		rctx, cancel = context.WithTimeout(context.WithoutCancel(p.ctx), jobStartTimeout)
	}
	resp, err := hc.Do(req.WithContext(rctx))
	if err != nil {
		if cancel != nil {
			cancel()
		}
		return nil, err
	}
	if cancel != nil {
		resp.Body = &cancelOnClose{ReadCloser: resp.Body, cancel: cancel}
	}
	p.status = resp.StatusCode
	p.retryAfter = resp.Header.Get("Retry-After")
	if resp.StatusCode == http.StatusAccepted {
		if u, err := resp.Location(); err == nil {
			p.accepted = u.String()
		}
	}
	return resp, nil
}

// jobStartTimeout bounds a request that starts a job (POST, DELETE), which
// outlives its caller's context; see performer.Do.
const jobStartTimeout = 10 * time.Second

// cancelOnClose releases a request's context when its body is closed.
type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (c *cancelOnClose) Close() error {
	err := c.ReadCloser.Close()
	c.cancel()
	return err
}

// newClient returns a go-client whose requests go through p.
func (b *Backend) newClient(p *performer) *client.Client {
	c := client.NewClientWithOptions(b.opts.URL, b.opts.User, b.opts.Key, b.clientOptions())
	c.SetClientFunc(func(_ *tls.Config, check client.CheckRedirectFunc) (client.HttpPerformer, error) {
		p.check = check
		return p, nil
	})
	return c
}

// clientOptions start from heketi's defaults (a literal ClientOptions
// would busy-poll), with the client's own 429 retry off: it sleeps 10–30 s
// without looking at any context. The backend retries instead.
func (b *Backend) clientOptions() client.ClientOptions {
	o := client.DefaultClientOptions()
	o.RetryEnabled = false
	o.PollDelay = int(b.opts.PollInterval / time.Millisecond)
	if o.PollDelay < 1 {
		o.PollDelay = 1
	}
	return o
}

// call runs fn with a go-client bound to ctx and turns its error into an
// *subvolkit.Error of the right kind for op on name. A 429 is retried up to
// RetryMaxAttempts times with a growing, jittered, context-aware delay: heketi
// answers 429 before it starts anything, so a retry cannot do anything
// twice.
func (b *Backend) call(ctx context.Context, op, name string, fn func(c *client.Client) error) error {
	_, err := b.callJob(ctx, op, name, fn)
	return err
}

// callJob is call for requests that start a job. When the server accepted
// the job but the call ended without its outcome (the context ended, or the
// connection failed while polling), it also returns the job's /queue URL:
// the job goes on in the server.
func (b *Backend) callJob(ctx context.Context, op, name string, fn func(c *client.Client) error) (orphan string, err error) {
	for attempt := 0; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return "", subvolkit.E(subvolkit.Canceled, "", "", err)
		}
		p := &performer{b: b, ctx: ctx}
		err := fn(b.newClient(p))
		if err == nil {
			return "", nil
		}
		if p.status == 0 {
			orphan = p.accepted
		}
		if ctx.Err() != nil && p.status == 0 {
			// The context ended the call: report that, not the
			// transport's wrapping of it.
			return orphan, subvolkit.E(subvolkit.Canceled, "", "", errors.Join(ctx.Err(), err))
		}
		if p.status == http.StatusTooManyRequests && attempt < b.opts.RetryMaxAttempts {
			d := b.backoff(attempt, p.retryAfter)
			b.log.DebugContext(ctx, "heketi busy, retrying", "op", op, "name", name, "attempt", attempt+1, "delay", d)
			t := time.NewTimer(d)
			select {
			case <-t.C:
				continue
			case <-ctx.Done():
				t.Stop()
				return "", subvolkit.E(subvolkit.Canceled, "", "", errors.Join(ctx.Err(), err))
			}
		}
		kind, cause := classify(p.status, err)
		if p.requests == 0 {
			// The client failed before sending anything.
			kind = subvolkit.Unknown
		}
		if p.status == http.StatusTooManyRequests {
			cause = fmt.Errorf("heketi still busy after %d attempts: %w", attempt+1, cause)
		}
		return orphan, subvolkit.E(kind, "", "", cause)
	}
}

// backoff is the delay before retry attempt+1: RetryMinDelay doubled per
// attempt up to RetryMaxDelay, the upper half of that at random; a
// Retry-After header (heketi sends none) raises it, up to RetryMaxDelay.
func (b *Backend) backoff(attempt int, retryAfter string) time.Duration {
	d := b.opts.RetryMaxDelay
	if attempt < 30 {
		if x := b.opts.RetryMinDelay << attempt; x > 0 && x < d {
			d = x
		}
	}
	d = d/2 + rand.N(d/2+1)
	if s, err := strconv.Atoi(strings.TrimSpace(retryAfter)); err == nil && s > 0 {
		if ra := time.Duration(s) * time.Second; ra > d {
			d = min(ra, b.opts.RetryMaxDelay)
		}
	}
	return d
}

// classify maps a failed call to a kind, from the status of the answer
// that failed it and heketi's message:
//
//	transport error (no answer)     Unavailable (Canceled/DeadlineExceeded for the context's own)
//	404 "Id not found"              NotFound; any other 404 (a wrong URL) is Unknown
//	400, 422                        InvalidArgument
//	401, 403                        PermissionDenied
//	409                             FailedPrecondition (heketi's database volume, a block-hosting volume in use)
//	429                             Unavailable (after the retries)
//	500 "… already in use"          AlreadyExists (heketi's per-cluster name check)
//	500 "… No space", "… Maximum number of bricks reached.",
//	    "… Out of space."           QuotaExceeded (heketi's allocator gave up)
//	500 "… is in use."              FailedPrecondition (an operation is pending on the volume)
//	other 5xx                       Unavailable (a failed job: the message is the server's)
//	anything else                   Unknown
func classify(status int, err error) (subvolkit.Kind, error) {
	if status == 0 {
		return subvolkit.Unavailable, err
	}
	msg := err.Error()
	herr := &HTTPError{StatusCode: status, Message: msg}
	switch {
	case status == http.StatusNotFound:
		if msg == "Id not found" {
			return subvolkit.NotFound, herr
		}
	case status == http.StatusBadRequest, status == http.StatusUnprocessableEntity:
		return subvolkit.InvalidArgument, herr
	case status == http.StatusUnauthorized, status == http.StatusForbidden:
		return subvolkit.PermissionDenied, herr
	case status == http.StatusConflict:
		return subvolkit.FailedPrecondition, herr
	case status == http.StatusTooManyRequests:
		return subvolkit.Unavailable, herr
	case status == http.StatusInternalServerError && strings.Contains(msg, "already in use"):
		return subvolkit.AlreadyExists, herr
	case status == http.StatusInternalServerError && noSpace(msg):
		return subvolkit.QuotaExceeded, herr
	case status == http.StatusInternalServerError && strings.HasSuffix(msg, "is in use."):
		return subvolkit.FailedPrecondition, herr
	case status >= 500:
		return subvolkit.Unavailable, herr
	}
	return subvolkit.Unknown, herr
}

// noSpace reports whether a 500 message is heketi's allocator giving up:
// "No space" (a create), or, for an expansion it split into ever smaller
// bricks, "Maximum number of bricks reached." or "Minimum brick size limit
// reached.  Out of space.".
func noSpace(msg string) bool {
	msg = strings.TrimSpace(msg)
	return strings.HasSuffix(msg, "No space") ||
		strings.HasSuffix(msg, "Maximum number of bricks reached.") ||
		strings.HasSuffix(msg, "Out of space.")
}

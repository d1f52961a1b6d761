package heketi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/subvolkit/subvolkit"
)

// Interrupted jobs (see the package documentation, "Cancellation and
// interrupted jobs"): a call that ends after heketi accepted its job but
// before its outcome was known records the job's /queue URL under the
// subvolume name, and the next call on the name settles it first.

// noteOrphan remembers an unfinished job on name.
func (b *Backend) noteOrphan(name, queueURL string) {
	if queueURL == "" {
		return
	}
	b.mu.Lock()
	b.orphans[name] = queueURL
	b.mu.Unlock()
	b.log.Debug("heketi: job left running", "name", name, "queue", queueURL)
}

// settle waits for the unfinished job on name, if any, to end.
func (b *Backend) settle(ctx context.Context, op, name string) error {
	b.mu.Lock()
	loc := b.orphans[name]
	b.mu.Unlock()
	if loc == "" {
		return nil
	}
	for {
		pending, err := b.pollQueue(ctx, loc)
		if err != nil {
			return subvolkit.E(subvolkit.KindOf(err), "", "",
				fmt.Errorf("waiting for an earlier, interrupted heketi job on this name: %w", err))
		}
		if !pending {
			b.mu.Lock()
			if b.orphans[name] == loc {
				delete(b.orphans, name)
			}
			b.mu.Unlock()
			return nil
		}
		t := time.NewTimer(b.opts.PollInterval)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return subvolkit.E(subvolkit.Canceled, "", "", ctx.Err())
		}
	}
}

// pollQueue asks heketi about a job once. Any final answer (a redirect to
// the result, 204, the job's 500, or 404 when the result was already read)
// means the job has ended.
func (b *Backend) pollQueue(ctx context.Context, loc string) (pending bool, err error) {
	u, err := url.Parse(loc)
	if err != nil {
		return false, subvolkit.E(subvolkit.Internal, "", "", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, loc, nil)
	if err != nil {
		return false, subvolkit.E(subvolkit.Internal, "", "", err)
	}
	tok, err := b.token(http.MethodGet, u.Path)
	if err != nil {
		return false, subvolkit.E(subvolkit.Internal, "", "", err)
	}
	req.Header.Set("Authorization", "bearer "+tok)
	select {
	case b.sem <- struct{}{}:
	case <-ctx.Done():
		return false, subvolkit.E(subvolkit.Canceled, "", "", ctx.Err())
	}
	hc := *b.hc
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := hc.Do(req)
	<-b.sem
	if err != nil {
		return false, subvolkit.E(subvolkit.Unavailable, "", "", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	switch {
	case resp.StatusCode == http.StatusOK && resp.Header.Get("X-Pending") == "true":
		return true, nil
	case resp.StatusCode == http.StatusSeeOther, resp.StatusCode == http.StatusNoContent,
		resp.StatusCode == http.StatusInternalServerError, resp.StatusCode == http.StatusNotFound:
		return false, nil
	}
	msg := strings.TrimSpace(string(body))
	if msg == "" {
		msg = http.StatusText(resp.StatusCode)
	}
	kind, cause := classify(resp.StatusCode, errors.New(msg))
	return false, subvolkit.E(kind, "", "", cause)
}

// token signs a heketi JWT for one request, as heketi's client does (see
// Token).
func (b *Backend) token(method, path string) (string, error) {
	return Token(b.opts.User, b.opts.Key, method, path, time.Now()), nil
}

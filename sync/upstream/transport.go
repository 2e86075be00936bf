package upstream

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"
)

// stallTransport aborts a round trip, or the reading of its body, when no
// response headers or no body bytes arrive for idle. Time the caller spends
// between reads (writing to disk) does not count.
type stallTransport struct {
	base http.RoundTripper
	idle time.Duration
}

func (t *stallTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx, cancel := context.WithCancelCause(req.Context())
	timer := time.AfterFunc(t.idle, func() { cancel(ErrStalled) })
	resp, err := t.base.RoundTrip(req.WithContext(ctx))
	timer.Stop()
	if err != nil {
		cancel(nil)
		if context.Cause(ctx) == ErrStalled {
			return nil, fmt.Errorf("no response within %s: %w", t.idle, ErrStalled)
		}
		return nil, err
	}
	resp.Body = &stallBody{body: resp.Body, ctx: ctx, cancel: cancel, timer: timer, idle: t.idle}
	return resp, nil
}

type stallBody struct {
	body   io.ReadCloser
	ctx    context.Context
	cancel context.CancelCauseFunc
	timer  *time.Timer
	idle   time.Duration
	once   sync.Once
}

func (b *stallBody) Read(p []byte) (int, error) {
	b.timer.Reset(b.idle)
	n, err := b.body.Read(p)
	b.timer.Stop()
	if err != nil && context.Cause(b.ctx) == ErrStalled {
		return n, fmt.Errorf("no data for %s: %w", b.idle, ErrStalled)
	}
	return n, err
}

func (b *stallBody) Close() error {
	err := b.body.Close()
	b.once.Do(func() {
		b.timer.Stop()
		b.cancel(nil)
	})
	return err
}

// bufferTransport reads each answer's body (up to limit+1 bytes) inside the
// round trip, so a body that breaks off midway is a failed attempt that the
// retry policy retries like a refused connection, rather than an error the
// caller meets after the retries are over. It serves the small answers
// only: registry API, discovery, SHA256SUMS and signatures.
type bufferTransport struct {
	base  http.RoundTripper
	limit int64
}

func (t *bufferTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, t.limit+1))
	if err != nil {
		_ = resp.Body.Close()
		return nil, fmt.Errorf("reading the answer after %d bytes: %w", len(data), err)
	}
	// Past the limit the rest stays unread, for readSmall to refuse.
	resp.Body = &bufferedBody{Reader: io.MultiReader(bytes.NewReader(data), resp.Body), body: resp.Body}
	return resp, nil
}

type bufferedBody struct {
	io.Reader
	body io.ReadCloser
}

func (b *bufferedBody) Close() error { return b.body.Close() }

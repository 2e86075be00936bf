package testupstream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
)

// Misbehavior answers one request in place of the server. honest serves
// the answer a well-behaved server would give (to any ResponseWriter the
// misbehavior chooses), so a misbehavior can pass part of it on. The
// request's context ends when the client hangs up or the server closes.
type Misbehavior func(w http.ResponseWriter, r *http.Request, honest http.Handler)

// MisbehaveNext makes the next n requests whose URL path starts with
// pathPrefix be answered by m. It shares FailNext's queue: an earlier fault
// on an overlapping prefix is used up first. Requests still count.
func (s *Server) MisbehaveNext(pathPrefix string, n int, m Misbehavior) {
	if n <= 0 || m == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, &fault{prefix: pathPrefix, remaining: n, misbehave: m})
}

// misbehave runs m with a request context that also ends when the server
// closes, so held handlers never block the test's cleanup.
func (s *Server) misbehave(m Misbehavior, w http.ResponseWriter, r *http.Request, honest http.Handler) {
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	go func() {
		select {
		case <-s.closing:
			cancel()
		case <-ctx.Done():
		}
	}()
	m(w, r.WithContext(ctx), honest)
}

// errCut stops the honest handler once a misbehavior has cut its answer.
var errCut = errors.New("testupstream: answer cut short on purpose")

// cutWriter passes the honest answer through up to limit body bytes, then
// calls cut once and refuses everything after.
type cutWriter struct {
	w       http.ResponseWriter
	limit   int64
	written int64
	cut     func()
	done    bool
}

func (c *cutWriter) Header() http.Header         { return c.w.Header() }
func (c *cutWriter) WriteHeader(status int)      { c.w.WriteHeader(status) }
func (c *cutWriter) Unwrap() http.ResponseWriter { return c.w }

func (c *cutWriter) Write(b []byte) (int, error) {
	if c.done {
		return 0, errCut
	}
	allowed := c.limit - c.written
	if int64(len(b)) <= allowed {
		n, err := c.w.Write(b)
		c.written += int64(n)
		return n, err
	}
	n := 0
	if allowed > 0 {
		var err error
		n, err = c.w.Write(b[:allowed])
		c.written += int64(n)
		if err != nil {
			return n, err
		}
	}
	c.done = true
	c.cut()
	return n, errCut
}

// passUntil serves the honest answer through a cutWriter; cut runs when
// the body reaches afterBytes (never, if the body is shorter).
func passUntil(w http.ResponseWriter, r *http.Request, honest http.Handler, afterBytes int64, cut func()) {
	honest.ServeHTTP(&cutWriter{w: w, limit: afterBytes, cut: cut}, r)
}

// DropConnection sends the honest status, headers (Content-Length
// included) and the first afterBytes bytes of the body, then resets the
// TCP connection (RST, no TLS close_notify), as a dying load balancer
// would. A negative afterBytes resets it before the status line, so the
// client sees a connection error rather than a short body. Over HTTP/2,
// where the connection carries other requests too, it resets the stream
// (RST_STREAM) instead: the client sees the same error for this request.
func DropConnection(afterBytes int64) Misbehavior {
	return func(w http.ResponseWriter, r *http.Request, honest http.Handler) {
		if afterBytes < 0 {
			reset(w, r)
			return
		}
		passUntil(w, r, honest, afterBytes, func() {
			_ = http.NewResponseController(w).Flush()
			reset(w, r)
		})
	}
}

// reset hijacks the connection and closes it with SO_LINGER 0, so the
// kernel sends RST; an HTTP/2 request cannot be hijacked, so its stream
// is aborted, which net/http answers with RST_STREAM.
func reset(w http.ResponseWriter, r *http.Request) {
	if r.ProtoMajor >= 2 {
		panic(http.ErrAbortHandler)
	}
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(fmt.Sprintf("testupstream: cannot hijack the connection to drop it: %v", err))
	}
	raw := conn
	if nc, ok := conn.(interface{ NetConn() net.Conn }); ok {
		raw = nc.NetConn()
	}
	if tcp, ok := raw.(*net.TCPConn); ok {
		_ = tcp.SetLinger(0)
	}
	_ = raw.Close()
}

// TruncateBody sends the honest status and headers, Content-Length
// included, and only the first afterBytes bytes of the body; the server
// then closes the connection in an orderly way. The client sees a body
// shorter than Content-Length.
func TruncateBody(afterBytes int64) Misbehavior {
	return func(w http.ResponseWriter, r *http.Request, honest http.Handler) {
		passUntil(w, r, honest, afterBytes, func() {})
	}
}

// Stall sends the honest status, headers and first afterBytes bytes of the
// body, then nothing more, keeping the connection open until the client
// hangs up: a response that never ends.
func Stall(afterBytes int64) Misbehavior {
	return func(w http.ResponseWriter, r *http.Request, honest http.Handler) {
		passUntil(w, r, honest, afterBytes, func() {
			_ = http.NewResponseController(w).Flush()
			<-r.Context().Done()
		})
	}
}

// Hang reads the request and never answers, until the client hangs up.
func Hang() Misbehavior {
	return func(w http.ResponseWriter, r *http.Request, honest http.Handler) {
		<-r.Context().Done()
	}
}

// Redirect answers 302 Found to location, which may name another host or a
// scheme other than http(s); it is sent verbatim.
func Redirect(location string) Misbehavior {
	return func(w http.ResponseWriter, r *http.Request, honest http.Handler) {
		// http.Redirect would clean up location; a hostile server would not.
		w.Header().Set("Location", location)
		w.WriteHeader(http.StatusFound)
	}
}

// Respond answers status with body as it is, e.g. malformed JSON.
func Respond(status int, contentType string, body []byte) Misbehavior {
	return func(w http.ResponseWriter, r *http.Request, honest http.Handler) {
		w.Header().Set("Content-Type", contentType)
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(status)
		_, _ = w.Write(body)
	}
}

// OversizedJSON answers 200 application/json with a syntactically valid
// document of exactly size bytes (at least 32) that a versions or download
// endpoint would accept but for its length: one huge warning string. It is
// streamed, never held in memory. With chunked true the body has no
// Content-Length, so a client cannot refuse it before reading.
func OversizedJSON(size int64, chunked bool) Misbehavior {
	const head, tail = `{"versions":[],"warnings":["`, `"]}`
	if size < int64(len(head)+len(tail)) {
		size = int64(len(head) + len(tail))
	}
	return func(w http.ResponseWriter, r *http.Request, honest http.Handler) {
		w.Header().Set("Content-Type", "application/json")
		if !chunked {
			w.Header().Set("Content-Length", strconv.FormatInt(size, 10))
		}
		w.WriteHeader(http.StatusOK)
		filler := size - int64(len(head)+len(tail))
		body := io.MultiReader(strings.NewReader(head), io.LimitReader(repeatReader('x'), filler), strings.NewReader(tail))
		// The client is expected to hang up early.
		_, _ = io.Copy(w, body)
	}
}

// repeatReader reads an endless run of one byte.
type repeatReader byte

func (b repeatReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(b)
	}
	return len(p), nil
}

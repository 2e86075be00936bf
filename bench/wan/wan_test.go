package wan

import (
	"bufio"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// The timing tests allow for a shared, busy machine on the slow side, but
// each lower bound is what the link must cost: a proxy that skipped the
// delay or the pacing would fail it by a wide margin.

// startTarget runs a TCP server on 127.0.0.1 that hands every connection
// to serve, and stops it at the end of the test.
func startTarget(t *testing.T, serve func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() { defer wg.Done(); defer c.Close(); serve(c) }()
		}
	}()
	return ln.Addr().String()
}

// echo answers every line with the same line.
func echo(c net.Conn) {
	r := bufio.NewReader(c)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		if _, err := io.WriteString(c, line); err != nil {
			return
		}
	}
}

// source writes n bytes and closes.
func source(n int) func(net.Conn) {
	return func(c net.Conn) {
		buf := make([]byte, 64<<10)
		for left := n; left > 0; {
			k, err := c.Write(buf[:min(left, len(buf))])
			if err != nil {
				return
			}
			left -= k
		}
	}
}

func start(t *testing.T, target string, cfg Config) *Proxy {
	t.Helper()
	p, err := Start(target, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// settled waits up to a second for the counts to reach want (a writer
// counts after its write returns, so a reader can be a moment ahead).
func settled(p *Proxy, want Stats) Stats {
	deadline := time.Now().Add(time.Second)
	for {
		s := p.Stats()
		if s == want || time.Now().After(deadline) {
			return s
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func roundTrip(t *testing.T, c net.Conn, r *bufio.Reader, msg string) time.Duration {
	t.Helper()
	begin := time.Now()
	if _, err := io.WriteString(c, msg+"\n"); err != nil {
		t.Fatal(err)
	}
	got, err := r.ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	if got != msg+"\n" {
		t.Fatalf("echo: got %q, want %q", got, msg)
	}
	return time.Since(begin)
}

// A request and its answer cost one RTT each on an open connection, and
// the first one two: the handshake's round trip comes first.
func TestRoundTripTime(t *testing.T) {
	const rtt = 100 * time.Millisecond
	p := start(t, startTarget(t, echo), Config{RTT: rtt})
	begin := time.Now()
	c := dial(t, p.Addr())
	r := bufio.NewReader(c)
	roundTrip(t, c, r, "hello")
	first := time.Since(begin)
	if first < 2*rtt || first > 2*rtt+150*time.Millisecond {
		t.Errorf("connect plus first request/answer took %v, want 2 RTT = %v (connect costs one)", first, 2*rtt)
	}
	for i := range 3 {
		d := roundTrip(t, c, r, strings.Repeat("x", i+1))
		if d < rtt || d > rtt+80*time.Millisecond {
			t.Errorf("request/answer %d took %v, want one RTT = %v", i+2, d, rtt)
		}
	}
	want := Stats{Accepted: 1, Up: int64(len("hello\nx\nxx\nxxx\n")), Down: int64(len("hello\nx\nxx\nxxx\n"))}
	if s := settled(p, want); s != want {
		t.Errorf("stats %+v, want %+v", s, want)
	}
}

// The server sees nothing before one and a half RTT after the client
// connected: SYN, SYN-ACK, then the first data's one-way trip.
func TestConnectCostsOneRTT(t *testing.T) {
	const rtt = 120 * time.Millisecond
	arrived := make(chan time.Time, 1)
	target := startTarget(t, func(c net.Conn) {
		b := make([]byte, 1)
		if _, err := c.Read(b); err == nil {
			arrived <- time.Now()
		}
	})
	p := start(t, target, Config{RTT: rtt})
	begin := time.Now()
	c := dial(t, p.Addr())
	if _, err := c.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	select {
	case at := <-arrived:
		if d := at.Sub(begin); d < rtt+rtt/2 || d > rtt+rtt/2+100*time.Millisecond {
			t.Errorf("first byte reached the server after %v, want 1.5 RTT = %v", d, rtt+rtt/2)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the first byte never reached the server")
	}
}

// receive reads everything from addr and returns the byte count and time.
func receive(t *testing.T, addr string) (int64, time.Duration) {
	t.Helper()
	begin := time.Now()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Error(err)
		return 0, 0
	}
	defer c.Close()
	n, err := io.Copy(io.Discard, c)
	if err != nil {
		t.Error(err)
	}
	return n, time.Since(begin)
}

// One connection moves N bytes in about N/rate, and the delay does not
// throttle it: with a stop-and-wait queue this 3 MB at 100 ms RTT would take
// seconds per chunk's round trip, not 0.5 s.
func TestPerConnectionBandwidth(t *testing.T) {
	const (
		n    = 3_000_000
		rate = 6_000_000
		rtt  = 100 * time.Millisecond
	)
	p := start(t, startTarget(t, source(n)), Config{RTT: rtt, PerConnBytesPerSec: rate})
	got, d := receive(t, p.Addr())
	if got != n {
		t.Fatalf("received %d bytes, want %d", got, n)
	}
	// Connect (1 RTT) plus the first byte's one-way trip, then n at rate
	// (less the burst the bucket allows).
	want := rtt + rtt/2 + time.Duration(n)*time.Second/rate
	if d < want-want/10 || d > want+want/4 {
		t.Errorf("%d bytes took %v, want about %v at %d B/s", n, d, want, rate)
	}
	if s := settled(p, Stats{Accepted: 1, Down: n}); s.Down != n || s.Accepted != 1 {
		t.Errorf("stats %+v: want %d bytes down on 1 connection", s, n)
	}

	// Unlimited, the same transfer costs little more than the delay.
	q := start(t, startTarget(t, source(n)), Config{RTT: rtt})
	_, fast := receive(t, q.Addr())
	if fast > want/2 {
		t.Errorf("unlimited: %d bytes took %v, want well under %v", n, fast, want)
	}
}

// k connections in parallel share TotalBytesPerSec: together they take
// k*N/total although each alone could go twice as fast.
func TestTotalBandwidth(t *testing.T) {
	const (
		k     = 4
		n     = 2_000_000
		conn  = 6_000_000
		total = 8_000_000
		rtt   = 20 * time.Millisecond
	)
	p := start(t, startTarget(t, source(n)), Config{RTT: rtt, PerConnBytesPerSec: conn, TotalBytesPerSec: total})
	begin := time.Now()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var sum int64
	for range k {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got, _ := receive(t, p.Addr())
			mu.Lock()
			sum += got
			mu.Unlock()
		}()
	}
	wg.Wait()
	d := time.Since(begin)
	if sum != k*n {
		t.Fatalf("received %d bytes, want %d", sum, k*n)
	}
	want := rtt + rtt/2 + time.Duration(k*n)*time.Second/total
	if d < want-want/10 || d > want+want/4 {
		t.Errorf("%d connections of %d bytes took %v, want about %v at %d B/s in all (%v if only each connection were capped)",
			k, n, d, want, total, time.Duration(n)*time.Second/conn)
	}
	if s := settled(p, Stats{Accepted: k, Down: k * n}); s.Accepted != k || s.Down != k*n {
		t.Errorf("stats %+v: want %d connections, %d bytes down", s, k, k*n)
	}
}

// The proxy closes itself and every connection at the end of its lifetime.
func TestLifetime(t *testing.T) {
	p := start(t, startTarget(t, echo), Config{RTT: time.Millisecond, Lifetime: 300 * time.Millisecond})
	c := dial(t, p.Addr())
	r := bufio.NewReader(c)
	roundTrip(t, c, r, "still here")
	begin := time.Now()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err := r.ReadString('\n')
	if err == nil {
		t.Fatal("read a line after the lifetime")
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("the connection was still open 5 s after the lifetime: %v", err)
	}
	select {
	case <-p.Done():
	case <-time.After(time.Second):
		t.Fatal("Done not closed after the lifetime")
	}
	if d := time.Since(begin); d > time.Second {
		t.Errorf("connection closed %v after the first answer, want about 0.3 s", d)
	}
	if c2, err := net.Dial("tcp", p.Addr()); err == nil {
		c2.Close()
		t.Error("the proxy still accepts connections after its lifetime")
	}
}

// Close ends every connection at once, even with data still queued.
func TestClose(t *testing.T) {
	p := start(t, startTarget(t, source(50_000_000)), Config{RTT: 10 * time.Millisecond, PerConnBytesPerSec: 1_000_000})
	c := dial(t, p.Addr())
	if _, err := io.ReadFull(c, make([]byte, 1000)); err != nil {
		t.Fatal(err)
	}
	begin := time.Now()
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err := io.Copy(io.Discard, c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatal("the connection was still open 5 s after Close")
	}
	if d := time.Since(begin); d > time.Second {
		t.Errorf("Close and the connection's end took %v", d)
	}
	select {
	case <-p.Done():
	default:
		t.Error("Done not closed after Close returned")
	}
}

// TLS passes through untouched, HTTP/2 included, and an orderly close
// travels both ways.
func TestHTTP2OverTLS(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.Proto+" "+strings.Repeat("z", 100_000))
	}))
	srv.EnableHTTP2 = true
	srv.StartTLS()
	t.Cleanup(srv.Close)
	p := start(t, strings.TrimPrefix(srv.URL, "https://"), Config{RTT: 40 * time.Millisecond, PerConnBytesPerSec: 10_000_000})
	tr := srv.Client().Transport.(*http.Transport).Clone()
	tr.TLSClientConfig.NextProtos = nil
	tr.ForceAttemptHTTP2 = true
	// The certificate is for 127.0.0.1: any port will do.
	hc := &http.Client{Transport: tr}
	for range 2 {
		resp, err := hc.Get("https://" + p.Addr() + "/")
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if resp.ProtoMajor != 2 || !strings.HasPrefix(string(body), "HTTP/2.0 ") || len(body) != len("HTTP/2.0 ")+100_000 {
			t.Fatalf("got %s, %d bytes starting %.20q; want HTTP/2 and the whole body", resp.Proto, len(body), body)
		}
		if resp.TLS == nil || resp.TLS.Version != tls.VersionTLS13 {
			t.Errorf("TLS state %+v: want TLS 1.3 end to end", resp.TLS)
		}
	}
	if s := p.Stats(); s.Accepted != 1 {
		t.Errorf("%d connections for two requests, want 1 (HTTP/2 reuses it)", s.Accepted)
	}
	tr.CloseIdleConnections()
	// Both sides closed: the link goes away.
	deadline := time.Now().Add(3 * time.Second)
	for {
		p.mu.Lock()
		n := len(p.conns)
		p.mu.Unlock()
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d links still open 3 s after the client closed", n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A reset from the server reaches the client as an error, not as a clean
// end of stream that would pass a cut answer off as complete.
func TestResetPropagates(t *testing.T) {
	target := startTarget(t, func(c net.Conn) {
		_, _ = c.Write([]byte("partial"))
		time.Sleep(50 * time.Millisecond)
		_ = c.(*net.TCPConn).SetLinger(0)
	})
	p := start(t, target, Config{RTT: 10 * time.Millisecond})
	c := dial(t, p.Addr())
	// Keep the client's side open so the server's close is the only end.
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	got, err := io.ReadAll(c)
	if string(got) != "partial" {
		t.Errorf("got %q before the end, want %q", got, "partial")
	}
	if err == nil {
		t.Error("the server's reset reached the client as a clean EOF")
	}
}

func TestStartRejectsNegative(t *testing.T) {
	if _, err := Start("127.0.0.1:1", Config{RTT: -time.Second}); err == nil {
		t.Error("Start accepted a negative RTT")
	}
}

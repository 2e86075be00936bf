// Package wan is a shaping TCP proxy for benchmarks: it stands between a
// client and a server on 127.0.0.1 and makes the loopback link look like a
// wide-area one, with a round-trip time, a bandwidth per connection and a
// bandwidth shared by all connections. It forwards raw TCP, so TLS (and
// HTTP/2 inside it) passes through untouched.
//
// The model, per connection and per direction:
//
//   - a reader goroutine reads what the sender wrote in chunks of at most
//     ChunkSize bytes and stamps each with its delivery time: when it was
//     read plus RTT/2 (one-way delay), and never earlier than one RTT after
//     the connection was accepted plus RTT/2, so a new connection costs one
//     round trip before any data moves, as SYN and SYN-ACK do;
//   - a writer goroutine waits for each chunk's delivery time, then paces it
//     through two token buckets, the connection's (PerConnBytesPerSec) and
//     one shared by every connection in that direction (TotalBytesPerSec),
//     and writes it to the receiver.
//
// The queue between them holds about one bandwidth-delay product, so the
// delay does not throttle throughput (a sender can have a window's worth
// in flight) while a saturated link still has a bounded queue.
//
// What it does not model: packet loss and retransmission, TCP slow start
// and congestion control (a connection runs at its full rate from the
// first byte after the handshake), jitter, and the kernel's own socket
// buffers on both sides of the proxy (loopback, so they add no delay but do
// add queueing before the pacing point).
package wan

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Config describes the emulated link. Zero bandwidths mean unlimited.
type Config struct {
	// RTT is the round-trip time: each direction delays every byte by RTT/2.
	RTT time.Duration
	// PerConnBytesPerSec caps each connection's rate in each direction.
	PerConnBytesPerSec int64
	// TotalBytesPerSec caps the sum over all connections, per direction.
	TotalBytesPerSec int64
	// Lifetime bounds the proxy: it closes itself and every connection this
	// long after Start. Zero means DefaultLifetime.
	Lifetime time.Duration
	// ChunkSize is the most bytes read, stamped and paced at once; zero
	// means DefaultChunkSize. Smaller chunks pace more smoothly.
	ChunkSize int
}

const (
	// DefaultLifetime is the Lifetime of a Config that sets none.
	DefaultLifetime = 15 * time.Minute
	// DefaultChunkSize is the ChunkSize of a Config that sets none.
	DefaultChunkSize = 16 << 10
)

// WANDefaults is issue 15's wide-area link: release assets fetched from a
// data centre, 80 ms round trip, 12 MB/s per connection, 100 MB/s in all.
func WANDefaults() Config {
	return Config{RTT: 80 * time.Millisecond, PerConnBytesPerSec: 12_000_000, TotalBytesPerSec: 100_000_000}
}

// LANDefaults is a registry on the local network: 1 ms round trip,
// bandwidth unlimited (the loopback's).
func LANDefaults() Config { return Config{RTT: time.Millisecond} }

// String describes the link, e.g. "RTT 80ms, 12.0 MB/s per connection,
// 100.0 MB/s total".
func (c Config) String() string {
	rate := func(n int64) string {
		if n <= 0 {
			return "unlimited"
		}
		return fmt.Sprintf("%.1f MB/s", float64(n)/1e6)
	}
	return fmt.Sprintf("RTT %v, %s per connection, %s total", c.RTT, rate(c.PerConnBytesPerSec), rate(c.TotalBytesPerSec))
}

// Stats counts what a Proxy carried.
type Stats struct {
	// Accepted is the number of TCP connections accepted.
	Accepted int64
	// Up is the bytes delivered from clients to the target, Down from the
	// target to clients.
	Up, Down int64
}

// Sub is the difference s - o, for the counts over an interval.
func (s Stats) Sub(o Stats) Stats {
	return Stats{Accepted: s.Accepted - o.Accepted, Up: s.Up - o.Up, Down: s.Down - o.Down}
}

// Proxy is a running shaping proxy. Clients connect to Addr; every
// connection is forwarded to the target.
type Proxy struct {
	cfg    Config
	target string
	ln     net.Listener
	addr   string

	upTotal, downTotal *bucket // nil: unlimited

	accepted, up, down atomic.Int64

	mu     sync.Mutex
	conns  map[*link]struct{}
	closed bool

	done      chan struct{} // closed when the proxy stops
	closeOnce sync.Once
	wg        sync.WaitGroup // the accept loop and every link's goroutines
	timer     *time.Timer
}

// Start listens on 127.0.0.1 (a free port) and forwards every connection to
// target ("host:port"), shaped as cfg says, until Close or cfg.Lifetime.
func Start(target string, cfg Config) (*Proxy, error) {
	if cfg.RTT < 0 || cfg.PerConnBytesPerSec < 0 || cfg.TotalBytesPerSec < 0 || cfg.Lifetime < 0 || cfg.ChunkSize < 0 {
		return nil, fmt.Errorf("wan: negative setting in %+v", cfg)
	}
	if cfg.Lifetime == 0 {
		cfg.Lifetime = DefaultLifetime
	}
	if cfg.ChunkSize == 0 {
		cfg.ChunkSize = DefaultChunkSize
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("wan: listening for a proxy to %s: %w", target, err)
	}
	p := &Proxy{
		cfg:    cfg,
		target: target,
		ln:     ln,
		addr:   ln.Addr().String(),
		conns:  map[*link]struct{}{},
		done:   make(chan struct{}),
	}
	if cfg.TotalBytesPerSec > 0 {
		p.upTotal = newBucket(cfg.TotalBytesPerSec, cfg.ChunkSize)
		p.downTotal = newBucket(cfg.TotalBytesPerSec, cfg.ChunkSize)
	}
	p.timer = time.AfterFunc(cfg.Lifetime, func() { _ = p.Close() })
	p.wg.Add(1)
	go p.acceptLoop()
	return p, nil
}

// Addr is the proxy's "127.0.0.1:PORT".
func (p *Proxy) Addr() string { return p.addr }

// Target is the "host:port" the proxy forwards to.
func (p *Proxy) Target() string { return p.target }

// Config is the link the proxy emulates, defaults filled in.
func (p *Proxy) Config() Config { return p.cfg }

// Done is closed once the proxy has stopped, by Close or at the end of its
// lifetime.
func (p *Proxy) Done() <-chan struct{} { return p.done }

// Stats returns the counts so far.
func (p *Proxy) Stats() Stats {
	return Stats{Accepted: p.accepted.Load(), Up: p.up.Load(), Down: p.down.Load()}
}

// Close stops listening, closes every connection and waits for the
// proxy's goroutines to end. It is safe to call more than once.
func (p *Proxy) Close() error {
	p.closeOnce.Do(func() {
		p.timer.Stop()
		p.mu.Lock()
		p.closed = true
		conns := make([]*link, 0, len(p.conns))
		for l := range p.conns {
			conns = append(conns, l)
		}
		p.mu.Unlock()
		_ = p.ln.Close()
		for _, l := range conns {
			l.teardown(false)
		}
		p.wg.Wait()
		close(p.done)
	})
	return nil
}

func (p *Proxy) acceptLoop() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return // closed
		}
		accepted := time.Now()
		p.accepted.Add(1)
		s, err := net.DialTimeout("tcp", p.target, 10*time.Second)
		if err != nil {
			_ = c.Close()
			continue
		}
		l := &link{p: p, client: c, server: s, done: make(chan struct{})}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			_ = c.Close()
			_ = s.Close()
			return
		}
		p.conns[l] = struct{}{}
		p.wg.Add(1)
		p.mu.Unlock()
		l.start(accepted)
	}
}

// link is one proxied connection: client <-> proxy <-> server.
type link struct {
	p              *Proxy
	client, server net.Conn
	done           chan struct{} // closed by teardown
	once           sync.Once
}

func (l *link) start(accepted time.Time) {
	p := l.p
	notBefore := accepted.Add(p.cfg.RTT) // the handshake's round trip
	var perConn int64 = p.cfg.PerConnBytesPerSec
	window := p.cfg.queueBytes()
	up := &pipe{l: l, src: l.client, dst: l.server, notBefore: notBefore, total: p.upTotal, count: &p.up}
	down := &pipe{l: l, src: l.server, dst: l.client, notBefore: notBefore, total: p.downTotal, count: &p.down}
	var wg sync.WaitGroup
	for _, d := range []*pipe{up, down} {
		if perConn > 0 {
			d.conn = newBucket(perConn, p.cfg.ChunkSize)
		}
		d.queue = make(chan chunk, max(8, window/p.cfg.ChunkSize))
		wg.Add(2)
		go func() { defer wg.Done(); d.read() }()
		go func() { defer wg.Done(); d.write() }()
	}
	// The writers end the link when both directions have delivered their
	// EOF; this goroutine tidies up after all four.
	go func() {
		wg.Wait()
		l.teardown(false)
		p.mu.Lock()
		delete(p.conns, l)
		p.mu.Unlock()
		p.wg.Done()
	}()
}

// queueBytes is how much a direction may hold between reading and
// delivering: one bandwidth-delay product of the connection's rate (at
// least 256 KiB), or 4 MiB when the rate is unlimited.
func (c Config) queueBytes() int {
	rate := c.PerConnBytesPerSec
	if c.TotalBytesPerSec > 0 && (rate == 0 || c.TotalBytesPerSec < rate) {
		rate = c.TotalBytesPerSec
	}
	if rate == 0 {
		return 4 << 20
	}
	bdp := int(float64(rate) * c.RTT.Seconds())
	return max(bdp, 256<<10)
}

// teardown closes both sides once. With reset, the far sides see a TCP
// reset rather than an orderly close, as the sender's own reset would be.
func (l *link) teardown(reset bool) {
	l.once.Do(func() {
		close(l.done)
		for _, c := range []net.Conn{l.client, l.server} {
			if tc, ok := c.(*net.TCPConn); ok && reset {
				_ = tc.SetLinger(0)
			}
			_ = c.Close()
		}
	})
}

// chunk is one read, to be delivered at a time.
type chunk struct {
	data []byte
	at   time.Time
	eof  bool // the sender closed its side in an orderly way
	err  bool // the read failed (e.g. reset): end the link with a reset
}

var chunkPool sync.Pool

func getBuf(n int) []byte {
	if b, ok := chunkPool.Get().(*[]byte); ok && cap(*b) >= n {
		return (*b)[:n]
	}
	return make([]byte, n)
}

func putBuf(b []byte) { chunkPool.Put(&b) }

// pipe is one direction of a link.
type pipe struct {
	l         *link
	src, dst  net.Conn
	notBefore time.Time // no delivery before this plus RTT/2
	conn      *bucket   // this connection's rate; nil: unlimited
	total     *bucket   // shared by every connection; nil: unlimited
	queue     chan chunk
	count     *atomic.Int64
}

func (d *pipe) read() {
	half := d.l.p.cfg.RTT / 2
	size := d.l.p.cfg.ChunkSize
	for {
		buf := getBuf(size)
		n, err := d.src.Read(buf)
		now := time.Now()
		if now.Before(d.notBefore) {
			now = d.notBefore
		}
		c := chunk{at: now.Add(half)}
		if n > 0 {
			c.data = buf[:n]
			if !d.send(c) {
				return
			}
		} else {
			putBuf(buf)
		}
		if err != nil {
			c = chunk{at: c.at, eof: errors.Is(err, io.EOF), err: !errors.Is(err, io.EOF)}
			d.send(c)
			return
		}
	}
}

// send queues c unless the link has ended.
func (d *pipe) send(c chunk) bool {
	select {
	case d.queue <- c:
		return true
	case <-d.l.done:
		return false
	}
}

func (d *pipe) write() {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		var c chunk
		select {
		case c = <-d.queue:
		case <-d.l.done:
			return
		}
		if !d.l.sleepUntil(timer, c.at) {
			return
		}
		switch {
		case c.err:
			d.l.teardown(true)
			return
		case c.eof:
			if tc, ok := d.dst.(interface{ CloseWrite() error }); ok {
				_ = tc.CloseWrite()
			} else {
				d.l.teardown(false)
			}
			return
		}
		if d.conn != nil && !d.l.sleepUntil(timer, d.conn.reserve(time.Now(), len(c.data))) {
			return
		}
		if d.total != nil && !d.l.sleepUntil(timer, d.total.reserve(time.Now(), len(c.data))) {
			return
		}
		n, err := d.dst.Write(c.data)
		d.count.Add(int64(n))
		putBuf(c.data)
		if err != nil {
			d.l.teardown(true)
			return
		}
	}
}

// sleepUntil waits for t; false if the link ended meanwhile.
func (l *link) sleepUntil(timer *time.Timer, t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		select {
		case <-l.done:
			return false
		default:
			return true
		}
	}
	timer.Reset(d)
	select {
	case <-timer.C:
		return true
	case <-l.done:
		timer.Stop()
		return false
	}
}

// bucket is a token bucket in its virtual-time form (GCRA): tat is when
// the link would be idle again had every reserved byte gone at the rate;
// bytes may go early by at most burst, so timer lateness is made up.
type bucket struct {
	mu    sync.Mutex
	perB  float64 // seconds per byte
	burst time.Duration
	tat   time.Time
}

// newBucket paces at rate bytes per second, allowing bursts of four
// chunks or 5 ms at the rate, whichever is more, so that a wake-up late by
// a few milliseconds (a busy machine) does not lose throughput; over any
// interval of a second or more the rate holds to within 1%.
func newBucket(rate int64, chunk int) *bucket {
	perB := 1 / float64(rate)
	burst := max(time.Duration(float64(4*chunk)*perB*float64(time.Second)), 5*time.Millisecond)
	return &bucket{perB: perB, burst: burst}
}

// reserve books n bytes ready at now and returns when they may be sent.
func (b *bucket) reserve(now time.Time, n int) time.Time {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.tat.Before(now) {
		b.tat = now
	}
	b.tat = b.tat.Add(time.Duration(float64(n) * b.perB * float64(time.Second)))
	at := b.tat.Add(-b.burst)
	if at.Before(now) {
		return now
	}
	return at
}

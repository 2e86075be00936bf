package testupstream_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/internal/testupstream"
)

const zipPath = "/files/acme/thing/1.0.0/terraform-provider-thing_1.0.0_linux_amd64.zip"

// rawGet issues one GET with a fresh connection and returns the response
// (nil on a transport error), the body bytes read and the read error.
func rawGet(t *testing.T, s *testupstream.Server, ctx context.Context, path string) (*http.Response, []byte, error) {
	t.Helper()
	hc := s.Client()
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp, body, err
}

func TestMisbehaviors(t *testing.T) {
	s := testupstream.New(t, testupstream.WithPackageSize(64<<10))
	s.AddProvider("acme", "thing", "1.0.0")
	zipSize := int64(len(s.Zip("acme", "thing", "1.0.0", "linux_amd64")))

	t.Run("truncated body", func(t *testing.T) {
		s.MisbehaveNext(zipPath, 1, testupstream.TruncateBody(1000))
		resp, body, err := rawGet(t, s, t.Context(), zipPath)
		if resp == nil || resp.ContentLength != zipSize {
			t.Fatalf("want the honest Content-Length %d, got %+v", zipSize, resp)
		}
		if !errors.Is(err, io.ErrUnexpectedEOF) || len(body) != 1000 {
			t.Fatalf("read %d bytes, err %v; want 1000 and unexpected EOF", len(body), err)
		}
	})
	t.Run("dropped mid-body", func(t *testing.T) {
		s.MisbehaveNext(zipPath, 1, testupstream.DropConnection(1000))
		resp, body, err := rawGet(t, s, t.Context(), zipPath)
		if resp == nil || resp.StatusCode != http.StatusOK || resp.ContentLength != zipSize {
			t.Fatalf("want the honest status and Content-Length, got %+v", resp)
		}
		if err == nil || int64(len(body)) > 1000 {
			t.Fatalf("read %d bytes, err %v; want at most 1000 and an error", len(body), err)
		}
	})
	t.Run("dropped before the status line", func(t *testing.T) {
		s.MisbehaveNext(zipPath, 1, testupstream.DropConnection(-1))
		if resp, _, err := rawGet(t, s, t.Context(), zipPath); err == nil {
			t.Fatalf("want a connection error, got status %d", resp.StatusCode)
		}
	})
	t.Run("stalled body", func(t *testing.T) {
		s.MisbehaveNext(zipPath, 1, testupstream.Stall(10))
		ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, body, err := rawGet(t, s, ctx, zipPath)
		if !errors.Is(err, context.DeadlineExceeded) || len(body) != 10 {
			t.Fatalf("read %d bytes, err %v; want 10 and the deadline", len(body), err)
		}
		if d := time.Since(start); d < 250*time.Millisecond {
			t.Fatalf("stall ended after %s", d)
		}
	})
	t.Run("stalled JSON does not block the server", func(t *testing.T) {
		s.MisbehaveNext("/v1/providers/acme/thing/versions", 1, testupstream.Stall(5))
		ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
		defer cancel()
		done := make(chan error, 1)
		go func() { _, _, err := rawGet(t, s, ctx, "/v1/providers/acme/thing/versions"); done <- err }()
		time.Sleep(50 * time.Millisecond)
		// While that answer hangs, the server still serves others.
		if resp, _, err := rawGet(t, s, t.Context(), "/v1/providers/acme/thing/versions"); err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("second request during a stall: %v", err)
		}
		if err := <-done; !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("stalled request: %v", err)
		}
	})
	t.Run("hang", func(t *testing.T) {
		s.MisbehaveNext(zipPath, 1, testupstream.Hang())
		ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
		defer cancel()
		if _, _, err := rawGet(t, s, ctx, zipPath); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err %v, want the deadline", err)
		}
	})
	t.Run("redirect verbatim", func(t *testing.T) {
		s.MisbehaveNext(zipPath, 1, testupstream.Redirect("file:///etc/passwd"))
		resp, _, err := rawGet(t, s, t.Context(), zipPath)
		if err != nil || resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "file:///etc/passwd" {
			t.Fatalf("got %v %+v", err, resp)
		}
	})
	t.Run("respond", func(t *testing.T) {
		s.MisbehaveNext("/v1/", 1, testupstream.Respond(http.StatusOK, "application/json", []byte(`{"versions":[`)))
		_, body, err := rawGet(t, s, t.Context(), "/v1/providers/acme/thing/versions")
		if err != nil || string(body) != `{"versions":[` {
			t.Fatalf("got %q, %v", body, err)
		}
	})
	for _, chunked := range []bool{false, true} {
		t.Run("oversized JSON chunked="+strconv.FormatBool(chunked), func(t *testing.T) {
			const size = 100_000
			s.MisbehaveNext("/v1/", 1, testupstream.OversizedJSON(size, chunked))
			resp, body, err := rawGet(t, s, t.Context(), "/v1/providers/acme/thing/versions")
			if err != nil || len(body) != size {
				t.Fatalf("read %d bytes, %v", len(body), err)
			}
			if want := int64(size); chunked && resp.ContentLength != -1 || !chunked && resp.ContentLength != want {
				t.Fatalf("Content-Length %d with chunked=%v", resp.ContentLength, chunked)
			}
			var doc struct {
				Warnings []string `json:"warnings"`
			}
			if err := json.Unmarshal(body, &doc); err != nil || len(doc.Warnings) != 1 {
				t.Fatalf("not the promised JSON document: %v", err)
			}
		})
	}
	t.Run("queue and counts", func(t *testing.T) {
		s.ResetCounts()
		s.FailNext(zipPath, 1, http.StatusBadGateway, "")
		s.MisbehaveNext(zipPath, 1, testupstream.TruncateBody(1))
		statuses := []string{}
		for range 3 {
			resp, body, err := rawGet(t, s, t.Context(), zipPath)
			switch {
			case resp == nil:
				t.Fatal(err)
			case err != nil:
				statuses = append(statuses, "short")
			case int64(len(body)) == zipSize:
				statuses = append(statuses, "whole")
			default:
				statuses = append(statuses, resp.Status[:3])
			}
		}
		if got := strings.Join(statuses, ","); got != "502,short,whole" {
			t.Fatalf("answers %s, want 502,short,whole", got)
		}
		if c := s.Counts(); c.Zip != 3 {
			t.Fatalf("Zip = %d, want 3 (faults count)", c.Zip)
		}
	})
}

// Over HTTP/2 a cut answer still reaches the client as an error, never as
// a complete body, and the connection survives for other requests.
func TestMisbehaviorsOverHTTP2(t *testing.T) {
	s := testupstream.New(t, testupstream.WithPackageSize(64<<10))
	s.AddProvider("acme", "thing", "1.0.0")
	zipSize := int64(len(s.Zip("acme", "thing", "1.0.0", "linux_amd64")))
	hc := h2Client(s)
	get := func(t *testing.T) (*http.Response, []byte, error) {
		t.Helper()
		resp, err := hc.Get(s.URL + zipPath)
		if err != nil {
			return nil, nil, err
		}
		defer resp.Body.Close()
		if resp.ProtoMajor != 2 {
			t.Fatalf("got %s, want HTTP/2", resp.Proto)
		}
		body, err := io.ReadAll(resp.Body)
		return resp, body, err
	}
	for _, tc := range []struct {
		name string
		m    testupstream.Misbehavior
	}{
		{"dropped mid-body", testupstream.DropConnection(1000)},
		{"truncated body", testupstream.TruncateBody(1000)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s.MisbehaveNext(zipPath, 1, tc.m)
			resp, body, err := get(t)
			if resp == nil || resp.StatusCode != http.StatusOK || resp.ContentLength != zipSize {
				t.Fatalf("want the honest status and Content-Length, got %+v (%v)", resp, err)
			}
			if err == nil || int64(len(body)) > 1000 {
				t.Fatalf("read %d bytes, err %v; want at most 1000 and an error", len(body), err)
			}
			if _, body, err := get(t); err != nil || int64(len(body)) != zipSize {
				t.Fatalf("the next request: %d bytes, %v; want the whole zip", len(body), err)
			}
		})
	}
	t.Run("dropped before the status line", func(t *testing.T) {
		s.MisbehaveNext(zipPath, 1, testupstream.DropConnection(-1))
		if resp, _, err := get(t); err == nil {
			t.Fatalf("want a stream error, got status %d", resp.StatusCode)
		}
	})
}

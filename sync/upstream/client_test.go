package upstream

import (
	"net/url"
	"testing"
	"time"
)

func TestNewRejectsBadOptions(t *testing.T) {
	for name, opt := range map[string]Option{
		"negative retries":  WithRetry(-1, 0, 0),
		"inverted waits":    WithRetry(1, time.Second, time.Millisecond),
		"zero timeout":      WithTimeout(0),
		"zero stall":        WithStallTimeout(0),
		"zero package size": WithMaxPackageSize(0),
		"missing CA file":   WithCAFile("/nonexistent/ca.pem"),
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := New(opt); err == nil {
				t.Error("New accepted it")
			}
		})
	}
}

func TestRedactURL(t *testing.T) {
	tests := map[string]string{
		"https://user:pw@example.com/a?ref=v1":                                   "https://example.com/a?ref=v1",
		"https://objects.example.com/b?X-Amz-Signature=abc&X-Amz-Credential=def": "https://objects.example.com/b?X-Amz-Credential=REDACTED&X-Amz-Signature=REDACTED",
		"https://example.com/c?token=t&archive=zip":                              "https://example.com/c?archive=zip&token=REDACTED",
	}
	for in, want := range tests {
		u, err := url.Parse(in)
		if err != nil {
			t.Fatal(err)
		}
		if got := redactURL(u); got != want {
			t.Errorf("redactURL(%s) = %s, want %s", in, got, want)
		}
	}
}

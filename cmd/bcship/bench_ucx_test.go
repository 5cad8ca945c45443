package main

import (
	"testing"
	"time"
)

func TestParseUCXFinal(t *testing.T) {
	out := []byte(`+--------------+--------------+------------------------------+
|    Stage     | # iterations | 50.0%ile | average | overall |  average |
Final:                 20000      6.081    18.923    18.923        3.23       3.23       52847       52847
`)
	got, err := parseUCXFinal(out)
	if err != nil || got != 6081*time.Nanosecond {
		t.Fatalf("got %v, %v; want 6.081µs", got, err)
	}
	if _, err := parseUCXFinal([]byte("no table")); err == nil {
		t.Fatal("parsed output without a Final row")
	}
}

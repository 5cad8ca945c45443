package main

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"
)

// healthServer answers GET /healthz and GET /metrics over HTTP/1.x. It
// speaks just enough HTTP for probes and Prometheus (one request per
// connection, Connection: close): net/http would add ≈2.0 MiB (+43%) to the
// stripped arm64 binary, a fifth of its budget, for two fixed pages.
type healthServer struct {
	ln  net.Listener
	d   *daemon
	sem chan struct{} // bounds concurrent connections
	wg  sync.WaitGroup
}

func startHealth(addr string, d *daemon) (*healthServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	s := &healthServer{ln: ln, d: d, sem: make(chan struct{}, 8)}
	s.wg.Add(1)
	go s.serve()
	return s, nil
}

func (s *healthServer) Addr() net.Addr { return s.ln.Addr() }

// Close stops the listener and waits for connections being answered.
func (s *healthServer) Close() error {
	err := s.ln.Close()
	s.wg.Wait()
	return err
}

func (s *healthServer) serve() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				continue
			}
			return // closed
		}
		s.sem <- struct{}{}
		s.wg.Add(1)
		go func() {
			defer func() { <-s.sem; s.wg.Done() }()
			s.handle(c)
		}()
	}
}

func (s *healthServer) handle(c net.Conn) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	r := bufio.NewReaderSize(c, 1024)
	line, err := r.ReadString('\n')
	if err != nil {
		return
	}
	// Drain the headers; bodies are not expected on GET.
	for i := 0; i < 64; i++ {
		h, err := r.ReadString('\n')
		if err != nil || strings.TrimSpace(h) == "" {
			break
		}
	}
	method, rest, _ := strings.Cut(strings.TrimSpace(line), " ")
	path, _, _ := strings.Cut(rest, " ")
	path, _, _ = strings.Cut(path, "?")
	code, ctype, body := s.route(method, path)
	fmt.Fprintf(c, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %d\r\nConnection: close\r\n\r\n",
		code, statusText(code), ctype, len(body))
	if method != "HEAD" {
		c.Write(body)
	}
}

func (s *healthServer) route(method, path string) (int, string, []byte) {
	const text = "text/plain; charset=utf-8"
	if method != "GET" && method != "HEAD" {
		return 405, text, []byte("method not allowed\n")
	}
	switch path {
	case "/healthz":
		st := s.d.getState()
		if st != stateReady {
			return 503, text, []byte(st.String() + "\n")
		}
		return 200, text, []byte("ok\n")
	case "/metrics":
		return 200, "text/plain; version=0.0.4; charset=utf-8", s.metrics()
	}
	return 404, text, []byte("not found\n")
}

func statusText(code int) string {
	switch code {
	case 200:
		return "OK"
	case 404:
		return "Not Found"
	case 405:
		return "Method Not Allowed"
	case 503:
		return "Service Unavailable"
	}
	return "Status"
}

// metrics renders Node.Stats in the Prometheus text format.
func (s *healthServer) metrics() []byte {
	st := s.d.node.Stats()
	var b bytes.Buffer
	m := func(name, typ, help string, v any) {
		fmt.Fprintf(&b, "# HELP bcship_%s %s\n# TYPE bcship_%s %s\nbcship_%s %v\n", name, help, name, typ, name, v)
	}
	m("up", "gauge", "1 when ready, 0 while starting or draining.", map[bool]int{true: 1}[s.d.getState() == stateReady])
	m("ships_sent_total", "counter", "SHIP messages sent.", st.Ships)
	m("ship_bytes_sent_total", "counter", "Bundle bytes in SHIP messages sent.", st.ShipBytes)
	m("ships_received_total", "counter", "SHIP messages received.", st.ShipsRecv)
	m("need_code_sent_total", "counter", "NEED_CODE messages sent.", st.NeedCode)
	m("invocations_total", "counter", "Kernel runs on this node.", st.Invocations)
	m("running", "gauge", "Kernel runs in progress.", st.Running)
	m("faults_total", "counter", "Kernel runs that faulted.", st.Faults)
	m("deadlines_total", "counter", "Kernel runs aborted at their deadline.", st.Deadlines)
	m("cache_hits_total", "counter", "Invocations whose code was cached.", st.CacheHits)
	m("cache_misses_total", "counter", "Invocations that waited for code.", st.CacheMisses)
	m("cache_bytes", "gauge", "Bytes of loaded images in the code cache.", st.CacheBytes)
	m("cache_entries", "gauge", "Images in the code cache.", st.CacheEntries)
	m("cache_evictions_total", "counter", "Images evicted from the code cache.", st.Evictions)
	t := st.Transport
	m("transport_bytes_sent_total", "counter", "Bytes sent to peers.", t.BytesSent)
	m("transport_bytes_received_total", "counter", "Bytes received from peers.", t.BytesRecv)
	m("transport_frames_sent_total", "counter", "Frames sent to peers.", t.FramesSent)
	m("transport_frames_received_total", "counter", "Frames received from peers.", t.FramesRecv)
	m("transport_dials_total", "counter", "Connections dialed.", t.Dials)
	m("transport_dial_failures_total", "counter", "Dials that failed.", t.DialFailures)
	m("transport_bad_frames_total", "counter", "Frames that did not decode.", t.BadFrames)
	return b.Bytes()
}

// Command replay is the unary load generator of Roster's side-by-side benchmarks
// (`npm run bench -- --compare etcd|eureka`): it replays requests that the TypeScript harness
// encoded beforehand, so every system is driven by the same client code, and that client costs
// a fraction of what a grpc-js or node:http caller does on the same core.
//
// It reads one job per line (JSON) on stdin and answers one result per line on stdout:
//
//	{"id":1,"kind":"grpc","target":"127.0.0.1:2379","method":"/etcdserverpb.KV/Put",
//	 "file":"/tmp/x","concurrency":64,"durationMs":1200}
//	{"id":2,"kind":"http","target":"http://127.0.0.1:8761","file":"/tmp/y","concurrency":64,"durationMs":1200}
//
// A gRPC file holds length-prefixed request messages (uint32 big-endian length, then the bytes);
// an HTTP file holds length-prefixed JSON requests {method, path, headers, body}, the path
// appended to the target's. Requests are taken in order, each once; running out before the
// duration ends is an error, so a write benchmark never turns into re-writes of the same record.
// gRPC connections are kept per target for the life of the process, as a client application
// keeps its channel. HTTP/1.1 requests are written out in full when loaded, and each caller
// sends them on a keep-alive connection of its own, opened when its job starts (as a pooled
// client with one socket per caller would): net/http's pooled client took ~40% more CPU per
// call here (~42 µs against ~30 µs for a 1.2 KB register; goroutine hand-offs, per-request
// allocations).
//
// A gRPC job with a "watch" object times writes to their events instead (see runWatch): the
// requests are written open loop at watch.perSecond, request k carrying instance id "w-<k>",
// and each is timed from its send to the arrival of its change on one watch stream.
//
// A job with "load":true only reads and prepares its file (answering "loaded", the request
// count) and keeps the requests for the next job naming that file, so a harness can load before
// it starts timing and remove the file at once: the timed job then neither reads nor parses.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
)

type job struct {
	ID          int    `json:"id"`
	Kind        string `json:"kind"`
	Target      string `json:"target"`
	Method      string `json:"method"`
	File        string `json:"file"`
	Concurrency int    `json:"concurrency"`
	DurationMs  int    `json:"durationMs"`
	DeadlineMs  int    `json:"deadlineMs"`
	Load        bool   `json:"load"`
	Watch       *watch `json:"watch"`
}

// watch describes a write → event job: the stream to watch and how to read its messages.
type watch struct {
	Target string `json:"target"`
	Method string `json:"method"`
	// Request opens the watch (base64 in JSON). A bidirectional stream (ClientStreams) is kept
	// open for writing, as etcd ends a watch whose client half-closes; a server stream is half-closed.
	Request       []byte `json:"request"`
	ClientStreams bool   `json:"clientStreams"`
	// ReadyField: a message with this bool field set says the watch is established (etcd's
	// created); 0 means the first message does (Roster's progress message).
	ReadyField protowire.Number `json:"readyField"`
	// IDPath: the field numbers from a stream message down to an instance id, through embedded
	// (and repeated) messages, e.g. changes → instance → instance_id.
	IDPath    []protowire.Number `json:"idPath"`
	PerSecond int                `json:"perSecond"`
}

type result struct {
	ID         int       `json:"id"`
	Ok         int64     `json:"ok"`
	Failed     int64     `json:"failed"`
	Seconds    float64   `json:"seconds"`
	CPUSeconds float64   `json:"cpuSeconds"`
	Latencies  []float64 `json:"latencies"`
	// Watch jobs: writes issued, due writes skipped (too many outstanding), events seen, and
	// writes answered OK within the paced window per second of it.
	Issued     int64   `json:"issued,omitempty"`
	Skipped    int64   `json:"skipped,omitempty"`
	Events     int64   `json:"events,omitempty"`
	Sustained  float64 `json:"sustainedPerSecond,omitempty"`
	Loaded     int     `json:"loaded,omitempty"`
	FirstError string  `json:"firstError,omitempty"`
	Error      string  `json:"error,omitempty"`
}

type httpRequest struct {
	Method  string            `json:"method"`
	Path    string            `json:"path"`
	Headers map[string]string `json:"headers"`
	Body    string            `json:"body"`
}

// rawCodec passes the harness's encoded bytes through: requests are []byte, responses are read into *[]byte.
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error) { return v.([]byte), nil }
func (rawCodec) Unmarshal(data []byte, v any) error {
	*(v.(*[]byte)) = append((*(v.(*[]byte)))[:0], data...)
	return nil
}
func (rawCodec) Name() string { return "proto" }

// requests are one file's, ready to send: gRPC messages, or whole HTTP/1.1 requests for target.
type requests struct {
	kind   string
	target string
	frames [][]byte
}

var (
	// loaded holds requests of "load" jobs until the job that replays them, by file name.
	loaded = map[string]*requests{}
	conns  = map[string]*grpc.ClientConn{}
)

func main() {
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 1<<20)
	out := json.NewEncoder(os.Stdout)
	for in.Scan() {
		var j job
		var r result
		if err := json.Unmarshal(in.Bytes(), &j); err != nil {
			r.Error = fmt.Sprintf("bad job: %v", err)
		} else if j.Load {
			r = preload(j)
		} else {
			r = run(j)
		}
		r.ID = j.ID
		if err := out.Encode(r); err != nil {
			os.Exit(1)
		}
	}
}

func preload(j job) result {
	reqs, err := load(j)
	if err != nil {
		return result{Error: err.Error()}
	}
	loaded[j.File] = reqs
	return result{Loaded: len(reqs.frames), Latencies: []float64{}}
}

func load(j job) (*requests, error) {
	frames, err := readFrames(j.File)
	if err != nil {
		return nil, err
	}
	switch j.Kind {
	case "grpc":
		return &requests{kind: j.Kind, target: j.Target, frames: frames}, nil
	case "http":
		base, err := url.Parse(j.Target)
		if err != nil || base.Scheme != "http" || base.Host == "" {
			return nil, fmt.Errorf("target %q: want http://host:port[/path]", j.Target)
		}
		for i, f := range frames {
			var r httpRequest
			if err := json.Unmarshal(f, &r); err != nil {
				return nil, fmt.Errorf("request %d: %v", i, err)
			}
			if frames[i], err = encodeHTTP(base, r); err != nil {
				return nil, fmt.Errorf("request %d: %v", i, err)
			}
		}
		return &requests{kind: j.Kind, target: j.Target, frames: frames}, nil
	default:
		return nil, fmt.Errorf("unknown kind %q", j.Kind)
	}
}

func run(j job) result {
	reqs, found := loaded[j.File]
	if found {
		delete(loaded, j.File)
		if reqs.kind != j.Kind || reqs.target != j.Target {
			return result{Error: fmt.Sprintf("%s was loaded as %s for %s, replayed as %s for %s", j.File, reqs.kind, reqs.target, j.Kind, j.Target)}
		}
	} else {
		var err error
		if reqs, err = load(j); err != nil {
			return result{Error: err.Error()}
		}
	}
	if (j.Watch == nil && j.Concurrency < 1) || j.DurationMs < 1 {
		return result{Error: "concurrency (but for a watch job) and durationMs must be positive"}
	}
	deadline := time.Duration(j.DeadlineMs) * time.Millisecond
	if deadline <= 0 {
		deadline = 30 * time.Second
	}
	if j.Watch != nil {
		if reqs.kind != "grpc" {
			return result{Error: "a watch job writes with gRPC"}
		}
		return runWatch(j, reqs.frames, deadline)
	}
	var caller func() (call func(i int) error, done func())
	if reqs.kind == "grpc" {
		conn, err := connFor(j.Target)
		if err != nil {
			return result{Error: err.Error()}
		}
		call := func(i int) error {
			ctx, cancel := context.WithTimeout(context.Background(), deadline)
			defer cancel()
			var reply []byte
			return conn.Invoke(ctx, j.Method, reqs.frames[i], &reply, grpc.ForceCodec(rawCodec{}))
		}
		caller = func() (func(i int) error, func()) { return call, func() {} }
	} else {
		address := hostPort(j.Target)
		caller = func() (func(i int) error, func()) {
			c := &httpConn{address: address, deadline: deadline}
			return func(i int) error { return c.do(reqs.frames[i]) }, c.close
		}
	}
	return drive(len(reqs.frames), j, caller)
}

// drive runs `concurrency` callers until the duration ends, each taking the next request.
func drive(count int, j job, caller func() (call func(i int) error, done func())) result {
	var next, ok, failed atomic.Int64
	var firstError atomic.Value
	latencies := make([][]float64, j.Concurrency)
	cpuBefore := cpuSeconds()
	start := time.Now()
	stop := start.Add(time.Duration(j.DurationMs) * time.Millisecond)
	var wg sync.WaitGroup
	for c := 0; c < j.Concurrency; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			call, done := caller()
			defer done()
			for time.Now().Before(stop) {
				i := int(next.Add(1) - 1)
				if i >= count {
					firstError.CompareAndSwap(nil, fmt.Sprintf("ran out of requests after %d: the harness must encode more", count))
					failed.Add(1)
					return
				}
				began := time.Now()
				if err := call(i); err != nil {
					failed.Add(1)
					firstError.CompareAndSwap(nil, describe(err))
					continue
				}
				ok.Add(1)
				latencies[c] = append(latencies[c], float64(time.Since(began).Microseconds())/1000)
			}
		}(c)
	}
	wg.Wait()
	r := result{Ok: ok.Load(), Failed: failed.Load(), Seconds: time.Since(start).Seconds(), CPUSeconds: cpuSeconds() - cpuBefore}
	for _, l := range latencies {
		r.Latencies = append(r.Latencies, l...)
	}
	if r.Latencies == nil {
		r.Latencies = []float64{}
	}
	if e, isSet := firstError.Load().(string); isSet {
		r.FirstError = e
	}
	return r
}

func connFor(target string) (*grpc.ClientConn, error) {
	if conn, found := conns[target]; found {
		return conn, nil
	}
	conn, err := grpc.NewClient(target, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20)))
	if err != nil {
		return nil, err
	}
	conns[target] = conn
	return conn, nil
}

// encodeHTTP writes r out as an HTTP/1.1 request to base (its path prefixed to r's).
func encodeHTTP(base *url.URL, r httpRequest) ([]byte, error) {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s %s%s HTTP/1.1\r\nHost: %s\r\n", r.Method, base.Path, r.Path, base.Host)
	for k, v := range r.Headers {
		if strings.EqualFold(k, "content-length") || strings.ContainsAny(k+v, "\r\n") {
			return nil, fmt.Errorf("header %q: replay sets content-length itself, and no header may hold a line break", k)
		}
		fmt.Fprintf(&b, "%s: %s\r\n", k, v)
	}
	fmt.Fprintf(&b, "Content-Length: %d\r\n\r\n%s", len(r.Body), r.Body)
	return b.Bytes(), nil
}

func hostPort(target string) string {
	base, _ := url.Parse(target) // checked when loaded
	return base.Host
}

// httpConn is one caller's keep-alive connection, opened at its first request and again
// whenever the server closed it (Connection: close) or a call failed on it.
type httpConn struct {
	address  string
	deadline time.Duration
	conn     net.Conn
	in       *bufio.Reader
}

func (c *httpConn) do(request []byte) error {
	if c.conn == nil {
		conn, err := net.DialTimeout("tcp", c.address, c.deadline)
		if err != nil {
			return err
		}
		c.conn, c.in = conn, bufio.NewReader(conn)
	}
	if err := c.conn.SetDeadline(time.Now().Add(c.deadline)); err != nil {
		c.close()
		return err
	}
	if _, err := c.conn.Write(request); err != nil {
		c.close()
		return err
	}
	resp, err := http.ReadResponse(c.in, nil)
	if err != nil {
		c.close()
		return err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil || resp.Close {
		c.close()
	}
	if err != nil {
		return err
	}
	if resp.StatusCode >= 300 {
		line, _, _ := bytes.Cut(request, []byte(" HTTP/1.1\r\n"))
		return fmt.Errorf("HTTP %d from %s", resp.StatusCode, line)
	}
	return nil
}

func (c *httpConn) close() {
	if c.conn != nil {
		c.conn.Close()
		c.conn, c.in = nil, nil
	}
}

func readFrames(path string) ([][]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var frames [][]byte
	for len(data) > 0 {
		if len(data) < 4 {
			return nil, errors.New("truncated frame header")
		}
		n := binary.BigEndian.Uint32(data)
		if uint32(len(data)-4) < n {
			return nil, errors.New("truncated frame")
		}
		frames = append(frames, data[4:4+n])
		data = data[4+n:]
	}
	return frames, nil
}

func describe(err error) string {
	if s, isStatus := status.FromError(err); isStatus {
		return fmt.Sprintf("%s: %s", s.Code(), s.Message())
	}
	return err.Error()
}

// cpuSeconds is this process's user + system CPU time.
func cpuSeconds() float64 {
	var u syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &u); err != nil {
		return 0
	}
	return time.Duration(u.Utime.Nano() + u.Stime.Nano()).Seconds()
}

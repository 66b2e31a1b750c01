// Command xds-example shows a proxyless gRPC (xDS) client in Go that finds its servers through
// Roster, with no Roster library: grpc-go's xds resolver reads the bootstrap file
// (GRPC_XDS_BOOTSTRAP, printed by `roster xds bootstrap`) and follows Roster's
// Listener → RouteConfiguration → Cluster → ClusterLoadAssignment for xds:///echo.
//
//	xds-example serve e1 e2 e3           # three echo servers on free ports ("serving NAME PORT")
//	xds-example call --expect e1,e2,e3   # calls xds:///echo, exits 1 unless calls spread over exactly those
package main

//go:generate npx --no-install buf generate proto --template buf.gen.yaml

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	_ "google.golang.org/grpc/xds" // registers the xds:/// resolver and its balancers

	echov1 "roster.example/xds-go/gen/echo/v1"
)

type echoServer struct {
	echov1.UnimplementedEchoServiceServer
	name string
}

func (s *echoServer) Who(context.Context, *echov1.WhoRequest) (*echov1.WhoResponse, error) {
	return &echov1.WhoResponse{Server: s.name}, nil
}

// serve runs one echo server per name on 127.0.0.1 until SIGINT or SIGTERM.
func serve(names []string) error {
	if len(names) == 0 {
		return fmt.Errorf("serve: name at least one server")
	}
	var servers []*grpc.Server
	for _, name := range names {
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		s := grpc.NewServer()
		echov1.RegisterEchoServiceServer(s, &echoServer{name: name})
		go s.Serve(lis) //nolint:errcheck // ends with Stop below
		servers = append(servers, s)
		fmt.Printf("serving %s %d\n", name, lis.Addr().(*net.TCPAddr).Port)
	}
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM)
	<-signals
	for _, s := range servers {
		s.Stop()
	}
	return nil
}

// call makes `calls` calls to target and checks that they reached exactly the servers in
// expect, each at least a sixth of its fair share (round robin gives each an equal part).
func call(target string, calls int, expect []string, timeout time.Duration) error {
	conn, err := grpc.NewClient(target, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	client := echov1.NewEchoServiceClient(conn)
	counts := map[string]int{}
	for i := 0; i < calls; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		reply, err := client.Who(ctx, &echov1.WhoRequest{})
		cancel()
		if err != nil {
			return fmt.Errorf("call %d: %w", i+1, err)
		}
		counts[reply.GetServer()]++
	}
	var seen []string
	for name := range counts {
		seen = append(seen, name)
	}
	sort.Strings(seen)
	var report []string
	for _, name := range seen {
		report = append(report, fmt.Sprintf("%s=%d", name, counts[name]))
	}
	fmt.Printf("calls %s\n", strings.Join(report, " "))
	want := append([]string(nil), expect...)
	sort.Strings(want)
	if strings.Join(seen, ",") != strings.Join(want, ",") {
		return fmt.Errorf("calls reached %v, expected %v", seen, want)
	}
	for _, name := range want {
		if counts[name]*len(want)*6 < calls {
			return fmt.Errorf("calls are not spread: %v", report)
		}
	}
	return nil
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: xds-example serve NAME... | call [--target xds:///echo] [--calls N] --expect A,B,C")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "serve":
		err = serve(os.Args[2:])
	case "call":
		flags := flag.NewFlagSet("call", flag.ExitOnError)
		target := flags.String("target", "xds:///echo", "gRPC target")
		calls := flags.Int("calls", 60, "number of calls")
		expect := flags.String("expect", "", "comma-separated server names the calls must reach")
		timeout := flags.Duration("timeout", 10*time.Second, "deadline of each call (the first waits for xDS)")
		flags.Parse(os.Args[2:]) //nolint:errcheck // ExitOnError
		if *expect == "" {
			fmt.Fprintln(os.Stderr, "call: --expect is required")
			os.Exit(2)
		}
		err = call(*target, *calls, strings.Split(*expect, ","), *timeout)
	default:
		fmt.Fprintf(os.Stderr, "unknown command %q\n", os.Args[1])
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "xds-example:", err)
		os.Exit(1)
	}
}

// Command roster-example keeps one instance registered with a Roster node and prints the
// changes to its application, the way a service's own registry client would:
//
//  1. ListApplications gives a snapshot (the application's instances in it are printed) and
//     its revision;
//  2. Watch follows the application from that revision, so no change slips in between;
//  3. Register announces the instance, with last_dirty_timestamp as its version;
//  4. the Heartbeats stream renews the lease every renewal interval, and registers again
//     when the node answers NOT_FOUND (expired, or its status was cleared);
//  5. on SIGINT or SIGTERM, Cancel removes the instance before the program exits.
//
// Every step prints one line, `event key=value ...`, on stdout; errors go to stderr and exit 1.
// The stubs come from the repository's proto/: run `go generate` first (see buf.gen.yaml).
package main

//go:generate npx --no-install buf generate ../.. --template buf.gen.yaml

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"
	rpccode "google.golang.org/genproto/googleapis/rpc/code"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/encoding/gzip"
	"google.golang.org/grpc/status"

	rosterv1 "roster.example/go/gen/roster/v1"
)

// rpcTimeout bounds every unary call, so a node that stops answering fails the program
// instead of hanging it.
const rpcTimeout = 5 * time.Second

type config struct {
	server    string
	app       string
	id        string
	port      uint
	renewSecs uint
}

func main() {
	var cfg config
	flag.StringVar(&cfg.server, "server", "127.0.0.1:8761", "Roster node, host:port")
	flag.StringVar(&cfg.app, "app", "billing", "application to register and watch")
	flag.StringVar(&cfg.id, "id", "go-1", "this instance's id")
	flag.UintVar(&cfg.port, "port", 8080, "the port the instance serves on")
	flag.UintVar(&cfg.renewSecs, "renew-secs", 10, "heartbeat interval (1..300); the lease lasts three intervals")
	flag.Parse()
	if flag.NArg() > 0 || cfg.renewSecs < 1 || cfg.renewSecs > 300 || cfg.port > 65535 {
		flag.Usage()
		os.Exit(2)
	}

	// The context ends on the first SIGINT or SIGTERM. Then the signals get their default action
	// back, so a second one kills the program at once if cancelling hangs.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		stop()
	}()
	if err := run(ctx, cfg, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "roster-example:", err)
		os.Exit(1)
	}
}

// run registers, watches and heartbeats until ctx ends (a signal) or a call fails, then
// cancels the instance. It returns nil only when it stopped because ctx ended.
func run(ctx context.Context, cfg config, out io.Writer) error {
	conn, err := grpc.NewClient(cfg.server, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	client := rosterv1.NewRegistryServiceClient(conn)

	// A signal before the instance is registered just ends the program (nothing to cancel).
	revision, err := snapshot(ctx, client, cfg.app, out)
	if err != nil {
		return ignoreCancel(ctx, fmt.Errorf("list applications: %w", err))
	}

	me := &rosterv1.Instance{
		App:        cfg.app,
		InstanceId: cfg.id,
		HostName:   "localhost",
		IpAddr:     "127.0.0.1",
		Port:       &rosterv1.Port{Number: uint32(cfg.port), Enabled: true},
		VipAddress: cfg.app + ".vip",
		Metadata:   map[string]string{"lang": "go", "grpc-go": grpc.Version},
		Lease:      &rosterv1.LeaseInfo{RenewalIntervalSecs: uint32(cfg.renewSecs), DurationSecs: uint32(3 * cfg.renewSecs)},
	}
	if err := register(ctx, client, me, "registered", out); err != nil {
		return ignoreCancel(ctx, fmt.Errorf("register: %w", err))
	}

	// Both loops end with nil when ctx ends; the first failure ends the other one too.
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return watch(gctx, client, cfg.app, revision, out) })
	g.Go(func() error { return heartbeat(gctx, client, me, time.Duration(cfg.renewSecs)*time.Second, out) })
	loopErr := g.Wait()

	// The signal's context is over: cancel on a fresh one, still bounded.
	cancelCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), rpcTimeout)
	defer cancel()
	res, err := client.Cancel(cancelCtx, &rosterv1.CancelRequest{App: me.App, InstanceId: me.InstanceId})
	if err != nil {
		return errors.Join(loopErr, fmt.Errorf("cancel: %w", err))
	}
	fmt.Fprintf(out, "cancelled app=%s id=%s revision=%d\n", me.App, me.InstanceId, res.Revision)
	return loopErr
}

// snapshot reads the whole registry, prints the application's instances in it, and returns
// its revision: the cursor Watch starts from. It asks for a gzip-compressed answer: a request
// sent with grpc-encoding gzip is answered in gzip, about a tenth of the bytes.
func snapshot(ctx context.Context, client rosterv1.RegistryServiceClient, app string, out io.Writer) (uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, rpcTimeout)
	defer cancel()
	stream, err := client.ListApplications(ctx, &rosterv1.ListApplicationsRequest{}, grpc.UseCompressor(gzip.Name))
	if err != nil {
		return 0, err
	}
	var revision uint64
	var instances int
	node := ""
	for {
		chunk, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return 0, err
		}
		// Every chunk of one snapshot carries the same revision.
		revision, node = chunk.Revision, chunk.NodeId
		instances += len(chunk.Instances)
		for _, in := range chunk.Instances {
			// The node stores application names in lower case.
			if strings.EqualFold(in.App, app) {
				fmt.Fprintf(out, "listed instance=%s/%s status=%s\n", in.App, in.InstanceId, statusName(in.Status))
			}
		}
	}
	fmt.Fprintf(out, "snapshot revision=%d instances=%d node=%s\n", revision, instances, node)
	return revision, nil
}

// register stores the instance with a fresh last_dirty_timestamp (its version: a newer one
// wins on every node).
func register(ctx context.Context, client rosterv1.RegistryServiceClient, me *rosterv1.Instance, event string, out io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, rpcTimeout)
	defer cancel()
	me.LastDirtyTimestamp = time.Now().UnixMilli()
	res, err := client.Register(ctx, &rosterv1.RegisterRequest{Instance: me})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "%s app=%s id=%s status=%s revision=%d\n", event, res.Instance.App, res.Instance.InstanceId,
		statusName(res.Instance.Status), res.Revision)
	return nil
}

// watch prints the application's changes after revision until ctx ends. When the node
// answers resync_required (the cursor fell out of its change log), it lists again and
// watches from the new snapshot.
func watch(ctx context.Context, client rosterv1.RegistryServiceClient, app string, revision uint64, out io.Writer) error {
	for {
		stream, err := client.Watch(ctx, &rosterv1.WatchRequest{SinceRevision: &revision, App: app})
		if err != nil {
			return ignoreCancel(ctx, fmt.Errorf("watch: %w", err))
		}
		fmt.Fprintf(out, "watching app=%s since=%d\n", app, revision)
		for {
			msg, err := stream.Recv()
			if err != nil {
				// The node never ends a Watch on its own but at shutdown (UNAVAILABLE).
				return ignoreCancel(ctx, fmt.Errorf("watch: %w", err))
			}
			for _, c := range msg.Changes {
				fmt.Fprintf(out, "change revision=%d type=%s instance=%s/%s status=%s\n", c.Revision,
					strings.TrimPrefix(c.Type.String(), "CHANGE_TYPE_"), c.Instance.App, c.Instance.InstanceId,
					statusName(c.Instance.Status))
			}
			revision = msg.Revision
			if msg.ResyncRequired {
				break
			}
		}
		fmt.Fprintln(out, "resync")
		if revision, err = snapshot(ctx, client, app, out); err != nil {
			return ignoreCancel(ctx, fmt.Errorf("list applications: %w", err))
		}
	}
}

// heartbeat renews the lease on one Heartbeats stream, one batch every interval, and
// registers again when the node answers NOT_FOUND for it.
func heartbeat(ctx context.Context, client rosterv1.RegistryServiceClient, me *rosterv1.Instance, interval time.Duration, out io.Writer) error {
	stream, err := client.Heartbeats(ctx)
	if err != nil {
		return ignoreCancel(ctx, fmt.Errorf("heartbeats: %w", err))
	}
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for batch := uint64(1); ; batch++ {
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
		}
		err := stream.Send(&rosterv1.HeartbeatsRequest{BatchId: batch, Heartbeats: []*rosterv1.HeartbeatRequest{
			{App: me.App, InstanceId: me.InstanceId, LastDirtyTimestamp: me.LastDirtyTimestamp},
		}})
		if err != nil {
			return ignoreCancel(ctx, fmt.Errorf("heartbeats: send: %w", err))
		}
		res, err := stream.Recv()
		if err != nil {
			return ignoreCancel(ctx, fmt.Errorf("heartbeats: %w", err))
		}
		if len(res.Results) != 1 || res.BatchId != batch {
			return fmt.Errorf("heartbeats: batch %d answered as batch %d with %d results", batch, res.BatchId, len(res.Results))
		}
		// Each result carries a google.rpc.Code (the same numbers as gRPC's status codes).
		code := rpccode.Code(res.Results[0].Code)
		fmt.Fprintf(out, "heartbeat batch=%d code=%s\n", batch, code)
		switch code {
		case rpccode.Code_OK:
		case rpccode.Code_NOT_FOUND:
			if err := register(ctx, client, me, "re-registered", out); err != nil {
				return ignoreCancel(ctx, fmt.Errorf("register again: %w", err))
			}
		default:
			return fmt.Errorf("heartbeat: %s: %s", code, res.Results[0].Message)
		}
	}
}

// ignoreCancel turns the error of a call that ctx ended into nil: stopping is not a failure.
func ignoreCancel(ctx context.Context, err error) error {
	if ctx.Err() != nil && status.Code(err) == codes.Canceled {
		return nil
	}
	return err
}

// statusName is the status without its enum prefix: UP, DOWN, OUT_OF_SERVICE...
func statusName(s rosterv1.InstanceStatus) string {
	return strings.TrimPrefix(s.String(), "INSTANCE_STATUS_")
}

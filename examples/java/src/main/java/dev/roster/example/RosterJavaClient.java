package dev.roster.example;

import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.StatusException;
import io.grpc.StatusRuntimeException;
import io.grpc.stub.ClientCallStreamObserver;
import io.grpc.stub.ClientResponseObserver;
import io.grpc.stub.StreamObserver;
import java.io.PrintStream;
import java.util.Iterator;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Executors;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import roster.v1.InstanceOuterClass.Change;
import roster.v1.InstanceOuterClass.Instance;
import roster.v1.InstanceOuterClass.InstanceStatus;
import roster.v1.InstanceOuterClass.LeaseInfo;
import roster.v1.InstanceOuterClass.Port;
import roster.v1.RegistryServiceGrpc;
import roster.v1.RegistryServiceOuterClass.CancelRequest;
import roster.v1.RegistryServiceOuterClass.CancelResponse;
import roster.v1.RegistryServiceOuterClass.HeartbeatRequest;
import roster.v1.RegistryServiceOuterClass.HeartbeatResult;
import roster.v1.RegistryServiceOuterClass.HeartbeatsRequest;
import roster.v1.RegistryServiceOuterClass.HeartbeatsResponse;
import roster.v1.RegistryServiceOuterClass.ListApplicationsRequest;
import roster.v1.RegistryServiceOuterClass.ListApplicationsResponse;
import roster.v1.RegistryServiceOuterClass.RegisterRequest;
import roster.v1.RegistryServiceOuterClass.RegisterResponse;
import roster.v1.RegistryServiceOuterClass.WatchRequest;
import roster.v1.RegistryServiceOuterClass.WatchResponse;
import sun.misc.Signal;

/**
 * Keeps one instance registered with a Roster node and prints the changes to its application,
 * the way a service's own registry client would:
 *
 * <ol>
 *   <li>{@code ListApplications} gives a snapshot and its revision;
 *   <li>{@code Register} announces the instance, with {@code last_dirty_timestamp} as its version;
 *   <li>{@code Watch} follows the application from the snapshot's revision, so no change slips
 *       in between (the instance's own registration included);
 *   <li>the {@code Heartbeats} stream renews the lease every renewal interval, and the client
 *       registers again when the node answers NOT_FOUND (expired, or its status was cleared);
 *   <li>on SIGINT or SIGTERM, {@code Cancel} removes the instance and the program exits 0.
 * </ol>
 *
 * <p>Every step prints one line, {@code event key=value ...}, on stdout, the same lines as the Go
 * and Python examples print. A failed call (the node went away) is printed on stderr, the
 * instance is cancelled if the node still answers, and the program exits 1.
 */
public final class RosterJavaClient {

  /** Bound on every unary call, so a node that stops answering fails the program, not hangs it. */
  private static final long CALL_DEADLINE_SECONDS = 5;

  private final Options options;
  private final PrintStream out;
  private final ManagedChannel channel;
  private final RegistryServiceGrpc.RegistryServiceBlockingStub blocking;
  private final RegistryServiceGrpc.RegistryServiceStub async;
  /** One thread owns the record and the heartbeat stream: a StreamObserver is not thread-safe. */
  private final ScheduledExecutorService scheduler = Executors.newSingleThreadScheduledExecutor();
  /** Completes on SIGINT/SIGTERM (normally) or on the first failed call (exceptionally). */
  private final CompletableFuture<Void> stopped = new CompletableFuture<>();

  /** Written by the main thread, then only by the scheduler; read by close() after it ended. */
  private Instance me;
  private StreamObserver<HeartbeatsRequest> heartbeats;
  private long nextBatchId = 1;
  private volatile ClientCallStreamObserver<WatchRequest> watchCall;

  RosterJavaClient(Options options, PrintStream out) {
    this.options = options;
    this.out = out;
    this.channel = Grpc.newChannelBuilder(options.server(), InsecureChannelCredentials.create()).build();
    this.blocking = RegistryServiceGrpc.newBlockingStub(channel);
    this.async = RegistryServiceGrpc.newStub(channel);
  }

  public static void main(String[] args) {
    Options options;
    try {
      options = Options.parse(args);
    } catch (IllegalArgumentException e) {
      System.err.println("roster-java-client: " + e.getMessage());
      System.err.println(Options.USAGE);
      System.exit(2);
      return;
    }
    if (options == null) {
      System.out.println(Options.USAGE);
      return;
    }
    System.exit(new RosterJavaClient(options, System.out).run());
  }

  /** Runs until a signal or a failure; returns the exit code (0 after a signal, 1 on failure). */
  int run() {
    // Handled here rather than in a shutdown hook, so a stop on request exits 0, not 128 + n.
    // A second signal stops at once.
    for (String name : new String[] {"INT", "TERM"}) {
      Signal.handle(new Signal(name), signal -> {
        if (!stopped.complete(null)) {
          Runtime.getRuntime().halt(128 + signal.getNumber());
        }
      });
    }
    Throwable failure = null;
    try {
      long revision = snapshot();
      register("registered"); // before the scheduler runs anything: no other thread yet
      watch(revision);
      scheduler.scheduleWithFixedDelay(
          this::heartbeat, options.renewSecs(), options.renewSecs(), TimeUnit.SECONDS);
      stopped.get();
    } catch (ExecutionException e) {
      failure = e.getCause();
    } catch (StatusRuntimeException | InterruptedException e) {
      failure = e;
    }
    try {
      close();
    } catch (StatusRuntimeException e) {
      failure = failure == null ? e : failure;
      System.err.println("roster-java-client: cancel: " + describe(e));
    }
    if (failure == null) {
      return 0;
    }
    System.err.println("roster-java-client: " + describe(failure));
    return 1;
  }

  /**
   * Reads the whole registry, prints the application's instances in it, returns its revision.
   * It asks for a gzip-compressed answer: a request sent compressed is answered compressed,
   * about a tenth of the bytes.
   */
  private long snapshot() {
    Iterator<ListApplicationsResponse> chunks =
        blocking.withDeadlineAfter(CALL_DEADLINE_SECONDS, TimeUnit.SECONDS)
            .withCompression("gzip")
            .listApplications(ListApplicationsRequest.getDefaultInstance());
    long revision = 0;
    int instances = 0;
    String node = "";
    while (chunks.hasNext()) {
      ListApplicationsResponse chunk = chunks.next();
      // Every chunk of one snapshot carries the same revision.
      revision = chunk.getRevision();
      node = chunk.getNodeId();
      instances += chunk.getInstancesCount();
      for (Instance instance : chunk.getInstancesList()) {
        // The node stores application names in lower case.
        if (instance.getApp().equalsIgnoreCase(options.app())) {
          out.printf("listed instance=%s/%s status=%s%n",
              instance.getApp(), instance.getInstanceId(), statusName(instance.getStatus()));
        }
      }
    }
    out.printf("snapshot revision=%d instances=%d node=%s%n", revision, instances, node);
    return revision;
  }

  /** Registers with a fresh last_dirty_timestamp: each registration is a newer version. */
  private void register(String event) {
    me = Instance.newBuilder()
        .setApp(options.app())
        .setInstanceId(options.id())
        .setHostName("localhost")
        .setIpAddr("127.0.0.1")
        .setPort(Port.newBuilder().setNumber(options.port()).setEnabled(true))
        .setVipAddress(options.app() + ".vip")
        .putMetadata("lang", "java")
        .setLease(LeaseInfo.newBuilder()
            .setRenewalIntervalSecs(options.renewSecs())
            .setDurationSecs(3 * options.renewSecs()))
        .setLastDirtyTimestamp(System.currentTimeMillis())
        .build();
    RegisterResponse response = blocking.withDeadlineAfter(CALL_DEADLINE_SECONDS, TimeUnit.SECONDS)
        .register(RegisterRequest.newBuilder().setInstance(me).build());
    Instance stored = response.getInstance();
    out.printf("%s app=%s id=%s status=%s revision=%d%n", event, stored.getApp(),
        stored.getInstanceId(), statusName(stored.getStatus()), response.getRevision());
  }

  /**
   * Prints the application's changes after {@code revision}. When the node answers
   * resync_required (the cursor fell out of its change log), lists again and watches from there.
   */
  private void watch(long revision) {
    WatchRequest request =
        WatchRequest.newBuilder().setSinceRevision(revision).setApp(options.app()).build();
    async.watch(request, new ClientResponseObserver<WatchRequest, WatchResponse>() {
      @Override
      public void beforeStart(ClientCallStreamObserver<WatchRequest> call) {
        watchCall = call;
      }

      @Override
      public void onNext(WatchResponse msg) {
        for (Change change : msg.getChangesList()) {
          Instance instance = change.getInstance();
          out.printf("change revision=%d type=%s instance=%s/%s status=%s%n", change.getRevision(),
              change.getType().name().replace("CHANGE_TYPE_", ""), instance.getApp(),
              instance.getInstanceId(), statusName(instance.getStatus()));
        }
        if (msg.getResyncRequired()) {
          out.println("resync");
          onScheduler(() -> watch(snapshot()));
        }
      }

      @Override
      public void onError(Throwable t) {
        // The node never ends a Watch on its own but at shutdown (UNAVAILABLE).
        stopped.completeExceptionally(new IllegalStateException("watch: " + describe(t), t));
      }

      @Override
      public void onCompleted() {
        // Only after resync_required, handled in onNext.
      }
    });
    out.printf("watching app=%s since=%d%n", options.app(), revision);
  }

  /** Sends one renewal on the Heartbeats stream, opening the stream first. Scheduler thread only. */
  private void heartbeat() {
    if (stopped.isDone()) {
      return;
    }
    if (heartbeats == null) {
      heartbeats = async.heartbeats(new StreamObserver<HeartbeatsResponse>() {
        @Override
        public void onNext(HeartbeatsResponse response) {
          // Each result carries a google.rpc.Code: the same numbers as gRPC's status codes.
          HeartbeatResult result = response.getResults(0);
          Status.Code code = Status.fromCodeValue(result.getCode()).getCode();
          out.printf("heartbeat batch=%d code=%s%n", response.getBatchId(), code);
          switch (code) {
            case OK -> { }
            case NOT_FOUND -> onScheduler(() -> register("re-registered"));
            default -> stopped.completeExceptionally(
                new IllegalStateException("heartbeat: " + code + ": " + result.getMessage()));
          }
        }

        @Override
        public void onError(Throwable t) {
          stopped.completeExceptionally(new IllegalStateException("heartbeats: " + describe(t), t));
        }

        @Override
        public void onCompleted() {
          stopped.completeExceptionally(new IllegalStateException("heartbeats: the node ended the stream"));
        }
      });
    }
    heartbeats.onNext(HeartbeatsRequest.newBuilder()
        .setBatchId(nextBatchId++)
        .addHeartbeats(HeartbeatRequest.newBuilder()
            .setApp(me.getApp())
            .setInstanceId(me.getInstanceId())
            .setLastDirtyTimestamp(me.getLastDirtyTimestamp()))
        .build());
  }

  /** Runs a task on the scheduler thread; a failure stops the client. */
  private void onScheduler(Runnable task) {
    try {
      scheduler.submit(() -> {
        try {
          task.run();
        } catch (RuntimeException e) {
          stopped.completeExceptionally(e);
        }
      });
    } catch (RejectedExecutionException e) {
      // Stopping: the scheduler no longer takes work.
    }
  }

  /**
   * Ends the heartbeat stream and the Watch, cancels the registration (bounded by the call
   * deadline) and closes the channel.
   */
  private void close() throws StatusRuntimeException {
    scheduler.shutdownNow();
    try {
      scheduler.awaitTermination(CALL_DEADLINE_SECONDS, TimeUnit.SECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    ClientCallStreamObserver<WatchRequest> call = watchCall;
    if (call != null) {
      call.cancel("client stopping", null);
    }
    try {
      if (heartbeats != null) {
        try {
          heartbeats.onCompleted();
        } catch (IllegalStateException e) {
          // The stream had already failed: nothing to end.
        }
      }
      if (me != null) {
        CancelResponse response = blocking.withDeadlineAfter(CALL_DEADLINE_SECONDS, TimeUnit.SECONDS)
            .cancel(CancelRequest.newBuilder().setApp(me.getApp()).setInstanceId(me.getInstanceId()).build());
        out.printf("cancelled app=%s id=%s revision=%d%n", me.getApp(), me.getInstanceId(), response.getRevision());
      }
    } finally {
      channel.shutdownNow();
    }
  }

  /** "UNAVAILABLE: io exception", without the cause's stack trace that Status.toString adds. */
  private static String describe(Throwable t) {
    if (t instanceof StatusRuntimeException || t instanceof StatusException) {
      Status status = Status.fromThrowable(t);
      return status.getDescription() == null
          ? status.getCode().toString()
          : status.getCode() + ": " + status.getDescription();
    }
    return t.getMessage();
  }

  private static String statusName(InstanceStatus status) {
    return status.name().replace("INSTANCE_STATUS_", "");
  }
}

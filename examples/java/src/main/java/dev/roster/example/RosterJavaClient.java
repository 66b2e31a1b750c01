package dev.roster.example;

import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.stub.ClientCallStreamObserver;
import io.grpc.stub.ClientResponseObserver;
import io.grpc.stub.StreamObserver;
import java.util.Iterator;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Executors;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import roster.v1.InstanceOuterClass.Change;
import roster.v1.InstanceOuterClass.Instance;
import roster.v1.InstanceOuterClass.InstanceStatus;
import roster.v1.InstanceOuterClass.LeaseInfo;
import roster.v1.InstanceOuterClass.Port;
import roster.v1.RegistryServiceGrpc;
import roster.v1.RegistryServiceOuterClass.CancelRequest;
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

/**
 * A Roster client the way a service would embed one: it registers an instance, renews its
 * lease on the {@code Heartbeats} stream (registering again when a heartbeat answers
 * NOT_FOUND), watches changes from a snapshot's revision, and cancels its registration when
 * the JVM shuts down (Ctrl-C, SIGTERM, or the end of {@code main}).
 *
 * <p>Every event is one line on stdout ({@code registered ...}, {@code heartbeat ...},
 * {@code watch ...}, {@code cancelled ...}), so scripts can follow it.
 */
public final class RosterJavaClient {

  /** gRPC's code for NOT_FOUND, as carried in a {@link HeartbeatResult}. */
  private static final int CODE_NOT_FOUND = Status.Code.NOT_FOUND.value();

  /** Bound on every unary call, so a dead node cannot hang start-up or shutdown. */
  private static final long CALL_DEADLINE_SECONDS = 5;

  private final Options options;
  private final ManagedChannel channel;
  private final RegistryServiceGrpc.RegistryServiceBlockingStub blocking;
  private final RegistryServiceGrpc.RegistryServiceStub async;
  /** One thread owns the heartbeat stream and the record: gRPC's StreamObserver is not thread-safe. */
  private final ScheduledExecutorService scheduler = Executors.newSingleThreadScheduledExecutor();
  private final AtomicBoolean closed = new AtomicBoolean();

  private volatile Instance me;
  private StreamObserver<HeartbeatsRequest> heartbeats;
  private long nextBatchId = 1;
  private volatile ClientCallStreamObserver<WatchRequest> watchCall;
  /** Where a broken Watch resumes: the revision and history of the last message received. */
  private volatile long watchRevision;
  private volatile String watchNodeId = "";

  RosterJavaClient(Options options) {
    this.options = options;
    this.channel = Grpc.newChannelBuilder(options.server(), InsecureChannelCredentials.create()).build();
    this.blocking = RegistryServiceGrpc.newBlockingStub(channel);
    this.async = RegistryServiceGrpc.newStub(channel);
  }

  public static void main(String[] args) throws InterruptedException {
    Options options;
    try {
      options = Options.parse(args);
    } catch (IllegalArgumentException e) {
      System.err.println("error: " + e.getMessage());
      System.err.println(Options.USAGE);
      System.exit(2);
      return;
    }
    if (options == null) {
      System.out.println(Options.USAGE);
      return;
    }
    RosterJavaClient client = new RosterJavaClient(options);
    // Runs on Ctrl-C (SIGINT), SIGTERM and normal exit alike.
    Runtime.getRuntime().addShutdownHook(new Thread(client::close, "roster-shutdown"));
    try {
      client.start();
    } catch (StatusRuntimeException e) {
      System.err.println("error: " + e.getStatus());
      System.exit(1); // the shutdown hook still closes the channel
    }
    new CountDownLatch(1).await(); // until a signal ends the JVM
  }

  /** Snapshot, then watch from its revision, then register: the Watch sees our own ADDED. */
  void start() throws InterruptedException {
    watchFromSnapshot();
    try {
      scheduler.submit(this::register).get();
    } catch (ExecutionException e) {
      throw e.getCause() instanceof StatusRuntimeException s ? s : new IllegalStateException(e.getCause());
    }
    scheduler.scheduleWithFixedDelay(
        this::heartbeat, options.renewSecs(), options.renewSecs(), TimeUnit.SECONDS);
  }

  private void watchFromSnapshot() {
    Iterator<ListApplicationsResponse> chunks =
        blocking.withDeadlineAfter(CALL_DEADLINE_SECONDS, TimeUnit.SECONDS)
            .listApplications(ListApplicationsRequest.getDefaultInstance());
    ListApplicationsResponse first = chunks.next();
    chunks.forEachRemaining(chunk -> { }); // the instances themselves are not needed here
    System.out.printf("snapshot revision=%d instances=%d node=%s%n",
        first.getRevision(), first.getTotalInstances(), first.getNodeId());
    watch(first.getRevision(), first.getNodeId());
  }

  /** Starts over from a fresh snapshot, retrying every second while the node is unreachable. */
  private void resync() {
    try {
      watchFromSnapshot();
    } catch (StatusRuntimeException e) {
      System.out.println("listing failed (" + e.getStatus() + "): retrying in 1 s");
      later(this::resync, 1);
    }
  }

  /**
   * Follows changes after {@code revision}. Passing the snapshot's node id makes a restarted
   * or different node answer resync_required instead of replaying another history.
   */
  private void watch(long revision, String nodeId) {
    watchRevision = revision;
    watchNodeId = nodeId;
    WatchRequest request = WatchRequest.newBuilder()
        .setSinceRevision(revision).setNodeId(nodeId).setApp(options.watchApp()).build();
    async.watch(request, new ClientResponseObserver<WatchRequest, WatchResponse>() {
      @Override
      public void beforeStart(ClientCallStreamObserver<WatchRequest> call) {
        watchCall = call;
      }

      @Override
      public void onNext(WatchResponse msg) {
        for (Change change : msg.getChangesList()) {
          Instance instance = change.getInstance();
          System.out.printf("watch %s %s/%s status=%s revision=%d%n",
              change.getType().name().replace("CHANGE_TYPE_", ""), instance.getApp(),
              instance.getInstanceId(), statusName(instance.getStatus()), change.getRevision());
        }
        watchRevision = msg.getRevision();
        watchNodeId = msg.getNodeId();
        if (msg.getResyncRequired()) {
          System.out.println("watch resync required: listing again");
          later(RosterJavaClient.this::resync, 0);
        }
      }

      @Override
      public void onError(Throwable t) {
        if (closed.get()) {
          return; // our own cancellation
        }
        System.out.println("watch broke (" + Status.fromThrowable(t) + "): resuming in 1 s");
        later(() -> watch(watchRevision, watchNodeId), 1);
      }

      @Override
      public void onCompleted() {
        // The server ends a stream only after resync_required, handled in onNext.
      }
    });
  }

  /** Registers (again) with a fresh last_dirty_timestamp: a newer version of our record. */
  private void register() {
    Instance.Builder record = Instance.newBuilder()
        .setApp(options.app())
        .setInstanceId(options.id())
        .setHostName(options.id() + ".local")
        .setIpAddr(options.ip())
        .setPort(Port.newBuilder().setNumber(options.port()).setEnabled(true))
        .setVipAddress(options.app())
        .setStatus(InstanceStatus.INSTANCE_STATUS_UP)
        .putMetadata("language", "java")
        .setLease(LeaseInfo.newBuilder()
            .setRenewalIntervalSecs(options.renewSecs())
            .setDurationSecs(options.durationSecs()))
        .setLastDirtyTimestamp(System.currentTimeMillis());
    RegisterResponse response = blocking.withDeadlineAfter(CALL_DEADLINE_SECONDS, TimeUnit.SECONDS)
        .register(RegisterRequest.newBuilder().setInstance(record).build());
    me = record.build();
    System.out.printf("registered %s/%s status=%s revision=%d%n", me.getApp(), me.getInstanceId(),
        statusName(response.getInstance().getStatus()), response.getRevision());
  }

  /**
   * One renewal on the Heartbeats stream, opening the stream first if needed. It never throws:
   * an exception would silently end the scheduled renewals.
   */
  private void heartbeat() {
    if (closed.get()) {
      return;
    }
    try {
      sendHeartbeat();
    } catch (RuntimeException e) {
      System.out.println("heartbeat failed (" + e + "): reopening the stream");
      heartbeats = null;
    }
  }

  private void sendHeartbeat() {
    if (heartbeats == null) {
      heartbeats = async.heartbeats(new StreamObserver<HeartbeatsResponse>() {
        @Override
        public void onNext(HeartbeatsResponse response) {
          HeartbeatResult result = response.getResults(0);
          if (result.getCode() == 0) {
            System.out.printf("heartbeat batch=%d OK status=%s%n",
                response.getBatchId(), statusName(result.getStatus()));
          } else if (result.getCode() == CODE_NOT_FOUND) {
            System.out.printf("heartbeat batch=%d NOT_FOUND: registering again%n", response.getBatchId());
            later(RosterJavaClient.this::registerQuietly, 0);
          } else {
            System.out.printf("heartbeat batch=%d code=%d %s%n",
                response.getBatchId(), result.getCode(), result.getMessage());
          }
        }

        @Override
        public void onError(Throwable t) {
          if (!closed.get()) {
            System.out.println("heartbeat stream broke (" + Status.fromThrowable(t) + "): reopening");
          }
          later(() -> heartbeats = null, 0); // the next tick opens a new stream
        }

        @Override
        public void onCompleted() {
          later(() -> heartbeats = null, 0);
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

  /** Runs a task on the scheduler thread unless the client is closing. */
  private void later(Runnable task, long delaySeconds) {
    if (closed.get()) {
      return;
    }
    try {
      scheduler.schedule(task, delaySeconds, TimeUnit.SECONDS);
    } catch (RejectedExecutionException e) {
      // close() shut the scheduler down between the check and the call: nothing left to do.
    }
  }

  private void registerQuietly() {
    try {
      register();
    } catch (StatusRuntimeException e) {
      System.out.println("register failed (" + e.getStatus() + "): retrying at the next heartbeat");
    }
  }

  /** Stops renewing, ends the Watch, cancels the registration and closes the channel. Idempotent. */
  void close() {
    if (!closed.compareAndSet(false, true)) {
      return;
    }
    try {
      scheduler.submit(() -> {
        if (heartbeats != null) {
          heartbeats.onCompleted();
        }
      }).get(CALL_DEADLINE_SECONDS, TimeUnit.SECONDS);
    } catch (Exception e) {
      System.out.println("closing the heartbeat stream failed: " + e);
    }
    scheduler.shutdownNow();
    ClientCallStreamObserver<WatchRequest> call = watchCall;
    if (call != null) {
      call.cancel("client shutting down", null);
    }
    if (me != null) {
      try {
        blocking.withDeadlineAfter(CALL_DEADLINE_SECONDS, TimeUnit.SECONDS)
            .cancel(CancelRequest.newBuilder().setApp(me.getApp()).setInstanceId(me.getInstanceId()).build());
        System.out.printf("cancelled %s/%s%n", me.getApp(), me.getInstanceId());
      } catch (StatusRuntimeException e) {
        System.out.println("cancel failed: " + e.getStatus());
      }
    }
    channel.shutdown();
    try {
      channel.awaitTermination(CALL_DEADLINE_SECONDS, TimeUnit.SECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }

  private static String statusName(InstanceStatus status) {
    return status.name().replace("INSTANCE_STATUS_", "");
  }
}

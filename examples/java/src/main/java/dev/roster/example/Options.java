package dev.roster.example;

import java.util.HashMap;
import java.util.HashSet;
import java.util.Map;
import java.util.Set;

/** Command-line options of {@link RosterJavaClient}, with their defaults. */
record Options(String server, String app, String id, String ip, int port, String watchApp,
    int renewSecs, int durationSecs) {

  static final String USAGE = """
      usage: java -jar roster-java-client.jar [--server HOST:PORT] [--app APP] [--id ID]
             [--ip IP] [--port PORT] [--watch-app APP] [--renew-secs N] [--duration-secs N]
        --server         Roster node (default: $ROSTER_SERVER or 127.0.0.1:8761)
        --app            application to register (default: billing)
        --id             instance id (default: java-1)
        --ip, --port     where the instance serves (default: 127.0.0.1, 8080)
        --watch-app      only watch this app; empty for all (default: the --app)
        --renew-secs     heartbeat interval (default: 10)
        --duration-secs  lease duration: expiry after this long without a heartbeat (default: 30)
      Runs until Ctrl-C or SIGTERM, then cancels its registration.""";

  /** Parses {@code --name value} pairs; returns null for --help. */
  static Options parse(String[] args) {
    Map<String, String> values = new HashMap<>(Map.of(
        "--server", System.getenv().getOrDefault("ROSTER_SERVER", "127.0.0.1:8761"),
        "--app", "billing", "--id", "java-1", "--ip", "127.0.0.1", "--port", "8080",
        "--renew-secs", "10", "--duration-secs", "30"));
    Set<String> known = new HashSet<>(values.keySet());
    known.add("--watch-app"); // defaults to the --app given
    for (int i = 0; i < args.length; i++) {
      String name = args[i];
      if (name.equals("--help") || name.equals("-h")) {
        return null;
      }
      if (!known.contains(name)) {
        throw new IllegalArgumentException("unknown option " + name);
      }
      if (i + 1 >= args.length) {
        throw new IllegalArgumentException(name + " needs a value");
      }
      values.put(name, args[++i]);
    }
    String app = values.get("--app");
    int renew = number(values, "--renew-secs", 1, 3600);
    int duration = number(values, "--duration-secs", 1, 3600);
    if (duration <= renew) {
      throw new IllegalArgumentException("--duration-secs must be longer than --renew-secs");
    }
    return new Options(values.get("--server"), app, values.get("--id"), values.get("--ip"),
        number(values, "--port", 1, 65535), values.getOrDefault("--watch-app", app), renew, duration);
  }

  private static int number(Map<String, String> values, String name, int min, int max) {
    try {
      int n = Integer.parseInt(values.get(name));
      if (n >= min && n <= max) {
        return n;
      }
    } catch (NumberFormatException e) {
      // reported below
    }
    throw new IllegalArgumentException(name + " must be a whole number in " + min + ".." + max);
  }
}

package dev.roster.example;

import java.util.HashMap;
import java.util.Map;

/** Command-line options of {@link RosterJavaClient}, with their defaults. */
record Options(String server, String app, String id, int port, int renewSecs) {

  static final String USAGE = """
      usage: java -jar roster-java-client.jar [--server HOST:PORT] [--app APP] [--id ID]
             [--port PORT] [--renew-secs N]
        --server      Roster node (default: 127.0.0.1:8761)
        --app         application to register and watch (default: billing)
        --id          this instance's id (default: java-1)
        --port        the port the instance serves on (default: 8080)
        --renew-secs  heartbeat interval, 1..300; the lease lasts three intervals (default: 10)
      Runs until Ctrl-C or SIGTERM, then cancels the instance and exits 0; exits 1 when a call
      fails (the node went away), 2 on bad usage.""";

  /** Parses {@code --name value} pairs; returns null for --help. */
  static Options parse(String[] args) {
    Map<String, String> values = new HashMap<>(Map.of(
        "--server", "127.0.0.1:8761", "--app", "billing", "--id", "java-1", "--port", "8080",
        "--renew-secs", "10"));
    for (int i = 0; i < args.length; i++) {
      String name = args[i];
      if (name.equals("--help") || name.equals("-h")) {
        return null;
      }
      if (!values.containsKey(name)) {
        throw new IllegalArgumentException("unknown option " + name);
      }
      if (i + 1 >= args.length) {
        throw new IllegalArgumentException(name + " needs a value");
      }
      values.put(name, args[++i]);
    }
    return new Options(values.get("--server"), values.get("--app"), values.get("--id"),
        number(values, "--port", 1, 65535), number(values, "--renew-secs", 1, 300));
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

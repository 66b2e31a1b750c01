package dev.roster.example.eureka;

import java.util.List;
import java.util.Map;

import org.springframework.boot.SpringApplication;
import org.springframework.boot.autoconfigure.SpringBootApplication;
import org.springframework.cloud.client.ServiceInstance;
import org.springframework.cloud.client.discovery.DiscoveryClient;
import org.springframework.web.bind.annotation.GetMapping;
import org.springframework.web.bind.annotation.PathVariable;
import org.springframework.web.bind.annotation.RestController;

/**
 * An ordinary Spring Cloud Netflix Eureka client. Nothing in it knows about Roster: pointing
 * {@code eureka.client.serviceUrl.defaultZone} at Roster's {@code /eureka/} path is the whole
 * migration. It registers itself, renews its lease, fetches the registry, and on shutdown
 * marks itself DOWN and deregisters, all through the Eureka client.
 */
@SpringBootApplication
@RestController
public class DiscoveryDemoApplication {

  private final DiscoveryClient discovery;

  public DiscoveryDemoApplication(DiscoveryClient discovery) {
    this.discovery = discovery;
  }

  public static void main(String[] args) {
    SpringApplication.run(DiscoveryDemoApplication.class, args);
  }

  /** The service ids (VIP addresses) in the client's local copy of the registry. */
  @GetMapping("/services")
  public List<String> services() {
    return discovery.getServices();
  }

  /**
   * The instances of one service as {@link DiscoveryClient} sees them: what a load-balanced
   * RestClient or Feign client would call. Spring looks the id up by VIP address.
   */
  @GetMapping("/instances/{serviceId}")
  public List<Map<String, Object>> instances(@PathVariable String serviceId) {
    return discovery.getInstances(serviceId).stream().map(DiscoveryDemoApplication::describe).toList();
  }

  private static Map<String, Object> describe(ServiceInstance instance) {
    return Map.of(
        "instanceId", String.valueOf(instance.getInstanceId()),
        "serviceId", instance.getServiceId(),
        "host", instance.getHost(),
        "port", instance.getPort(),
        "uri", String.valueOf(instance.getUri()),
        "metadata", instance.getMetadata());
  }
}

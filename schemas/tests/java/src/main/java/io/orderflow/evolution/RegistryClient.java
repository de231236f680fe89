package io.orderflow.evolution;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.net.URI;
import java.net.URLEncoder;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;

/** The one call a producer makes: register (or find) a schema under a subject, through the
 *  Confluent-compatible REST API. */
final class RegistryClient {
    /** A refusal by the registry (an incompatible schema, say): the row's outcome, not a crash. */
    static final class Refused extends Exception {
        Refused(String message) {
            super(message);
        }
    }

    private static final ObjectMapper JSON = new ObjectMapper();
    private final String url;
    private final HttpClient http =
            HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(10)).build();

    RegistryClient(String url) {
        this.url = url.replaceAll("/+$", "");
    }

    /** The id of {@code schema} under {@code subject}, registering it when new. */
    int register(String subject, String schema) throws IOException, InterruptedException, Refused {
        String body = JSON.writeValueAsString(JSON.createObjectNode().put("schema", schema));
        HttpRequest request = HttpRequest.newBuilder(
                        URI.create(url + "/subjects/" + URLEncoder.encode(subject, StandardCharsets.UTF_8)
                                + "/versions"))
                .timeout(Duration.ofSeconds(10))
                .header("Content-Type", "application/vnd.schemaregistry.v1+json")
                .POST(HttpRequest.BodyPublishers.ofString(body))
                .build();
        HttpResponse<String> answer = http.send(request, HttpResponse.BodyHandlers.ofString());
        if (answer.statusCode() / 100 == 2) {
            return JSON.readTree(answer.body()).get("id").asInt();
        }
        if (answer.statusCode() / 100 == 4) {
            JsonNode error = JSON.readTree(answer.body());
            throw new Refused("HTTP " + answer.statusCode() + ": " + error.path("message").asText(answer.body()));
        }
        throw new IOException("registry answered HTTP " + answer.statusCode() + ": " + answer.body());
    }
}

package io.orderflow.evolution;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.Iterator;
import java.util.Properties;
import org.apache.avro.Schema;
import org.apache.avro.generic.GenericRecord;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.errors.SerializationException;
import org.apache.kafka.common.serialization.StringSerializer;

/**
 * Another team's Java producer, for the evolution matrix. Usage:
 * {@code EvolutionWriter REGISTRY_URL BOOTSTRAP_SERVERS < cases.json}.
 *
 * <p>Reads the JSON array of cases the Python writer reads ({"case", "topic", "schemas":
 * [first, ..., writer], "record"}): registers every schema but the last under
 * {@code <topic>-value} (what the subject held before), then produces "record", built with the
 * last schema, to {@code topic} (keyed by its order_id) through a KafkaProducer whose value
 * serializer registers the writer schema, as a producer of that schema would. Prints a JSON
 * array of {"case", "partition", "offset"} or {"case", "refused": registry message}.
 */
public final class EvolutionWriter {
    private EvolutionWriter() {}

    public static void main(String[] args) throws Exception {
        ObjectMapper json = new ObjectMapper();
        RegistryClient registry = new RegistryClient(args[0]);
        Properties config = new Properties();
        config.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, args[1]);
        config.put(ProducerConfig.ACKS_CONFIG, "all");
        config.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, "true");
        ArrayNode out = json.createArrayNode();
        JsonNode cases = json.readTree(System.in);
        try (KafkaProducer<String, GenericRecord> producer = new KafkaProducer<>(
                config, new StringSerializer(), new ConfluentAvroSerializer(registry))) {
            for (JsonNode testCase : cases) {
                out.add(write(registry, producer, testCase));
            }
        }
        System.out.println(json.writeValueAsString(out));
    }

    private static ObjectNode write(RegistryClient registry, KafkaProducer<String, GenericRecord> producer,
            JsonNode testCase) throws Exception {
        ObjectNode answer = new ObjectMapper().createObjectNode().put("case", testCase.get("case").asText());
        String topic = testCase.get("topic").asText();
        Schema writer = null;
        for (Iterator<JsonNode> schemas = testCase.get("schemas").elements(); schemas.hasNext(); ) {
            String text = schemas.next().asText();
            if (schemas.hasNext()) {
                registry.register(topic + "-value", text);
            } else {
                writer = new Schema.Parser().parse(text);
            }
        }
        GenericRecord record = (GenericRecord) JsonToAvro.datum(writer, testCase.get("record"));
        try {
            RecordMetadata sent = producer.send(
                    new ProducerRecord<>(topic, record.get("order_id").toString(), record)).get();
            return answer.put("partition", sent.partition()).put("offset", sent.offset());
        } catch (SerializationException refused) {
            return answer.put("refused", refused.getMessage());
        }
    }
}

package io.orderflow.evolution;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.HashMap;
import java.util.Map;
import org.apache.avro.Schema;
import org.apache.avro.generic.GenericDatumWriter;
import org.apache.avro.generic.GenericRecord;
import org.apache.avro.io.BinaryEncoder;
import org.apache.avro.io.EncoderFactory;
import org.apache.kafka.common.errors.SerializationException;
import org.apache.kafka.common.serialization.Serializer;

/** What Confluent's KafkaAvroSerializer does with auto.register.schemas=true and the topic
 *  name strategy: register the record's schema under {@code <topic>-value} (as
 *  {@code Schema.toString()} prints it), then write magic byte 0, the 4-byte id and the
 *  Avro binary body. */
final class ConfluentAvroSerializer implements Serializer<GenericRecord> {
    private final RegistryClient registry;
    private final Map<String, Integer> ids = new HashMap<>();

    ConfluentAvroSerializer(RegistryClient registry) {
        this.registry = registry;
    }

    @Override
    public byte[] serialize(String topic, GenericRecord record) {
        Schema schema = record.getSchema();
        String subject = topic + "-value";
        try {
            Integer id = ids.get(subject + "\n" + schema);
            if (id == null) {
                id = registry.register(subject, schema.toString());
                ids.put(subject + "\n" + schema, id);
            }
            ByteArrayOutputStream out = new ByteArrayOutputStream();
            out.write(0);
            out.write(ByteBuffer.allocate(4).putInt(id).array());
            BinaryEncoder encoder = EncoderFactory.get().binaryEncoder(out, null);
            new GenericDatumWriter<GenericRecord>(schema).write(record, encoder);
            encoder.flush();
            return out.toByteArray();
        } catch (RegistryClient.Refused refused) {
            throw new SerializationException("registry refused the schema: " + refused.getMessage(), refused);
        } catch (IOException error) {
            throw new SerializationException(error);
        } catch (InterruptedException interrupted) {
            Thread.currentThread().interrupt();
            throw new SerializationException(interrupted);
        }
    }
}

// Prints Kafka default-partitioner test vectors (see murmur2-vectors.txt) using
// the real kafka-clients code. Run through deploy/kafka/murmur2-vectors.sh.
// With a bootstrap address as argument it also creates topics with 3/6/12
// partitions on that broker and checks that a real KafkaProducer (default
// partitioner) puts each key on the computed partition; exits 1 on a mismatch.
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.kafka.common.utils.Utils;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.UUID;

public class Murmur2Vectors {
  static final String[] KEYS = {"21", "foobar", "a-little-bit-long-string", "a-little-bit-longer-string",
      "lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", "abc", "", "order-42", "customer-7",
      "\u00e9t\u00e9"};
  static final int[] NS = {3, 6, 12};

  public static void main(String[] args) throws Exception {
    int[][] expect = new int[KEYS.length][NS.length];
    StringBuilder out = new StringBuilder();
    for (int i = 0; i < KEYS.length; i++) {
      int h = Utils.murmur2(KEYS[i].getBytes(StandardCharsets.UTF_8));
      out.append(KEYS[i]).append('\t').append(h);
      for (int j = 0; j < NS.length; j++) {
        expect[i][j] = Utils.toPositive(h) % NS[j];
        out.append('\t').append(expect[i][j]);
      }
      out.append('\n');
    }
    System.out.print(out);
    if (args.length == 0) return;

    String bootstrap = args[0];
    String prefix = "murmur2-check-" + UUID.randomUUID().toString().substring(0, 8) + "-";
    try (Admin admin = Admin.create(Map.of("bootstrap.servers", bootstrap))) {
      List<NewTopic> topics = new ArrayList<>();
      for (int n : NS) topics.add(new NewTopic(prefix + n, n, (short) 1));
      admin.createTopics(topics).all().get();
    }
    int bad = 0;
    try (KafkaProducer<byte[], byte[]> p = new KafkaProducer<>(Map.of("bootstrap.servers", bootstrap,
        "key.serializer", ByteArraySerializer.class.getName(),
        "value.serializer", ByteArraySerializer.class.getName()))) {
      for (int i = 0; i < KEYS.length; i++) {
        for (int j = 0; j < NS.length; j++) {
          int got = p.send(new ProducerRecord<>(prefix + NS[j],
              KEYS[i].getBytes(StandardCharsets.UTF_8), new byte[] {1})).get().partition();
          if (got != expect[i][j]) {
            bad++;
            System.err.println("MISMATCH key=" + KEYS[i] + " n=" + NS[j] + " producer=" + got
                + " computed=" + expect[i][j]);
          }
        }
      }
    }
    System.err.println("producer cross-check: " + (KEYS.length * NS.length - bad) + " agree, " + bad + " differ");
    if (bad > 0) System.exit(1);
  }
}

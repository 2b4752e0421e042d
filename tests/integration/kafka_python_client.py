#!/usr/bin/python3
"""A second Kafka client for the Kafka tests: kafka-python (Debian's python3-kafka), an
implementation of the Kafka protocol independent of librdkafka, which the bridge uses.

  consume BOOTSTRAPS TOPIC COUNT TIMEOUT_S
      Reads every partition of TOPIC from the beginning until COUNT records arrived or none came
      for TIMEOUT_S seconds, and prints a line per record, fields separated by spaces:
      partition offset key value timestamp_ms ringbus.offset ringbus.sequence
      (key and value in hex, '-' for a null key or a missing header).
  produce BOOTSTRAPS TOPIC FROM TO
      Produces records FROM..TO-1 with key "k<i % 7>", value "rec-<i>" and timestamp
      1,600,000,000,000 + i ms, acks=all, and prints "produced N" once all are acknowledged.
"""
import sys

from kafka import KafkaConsumer, KafkaProducer, TopicPartition


def header(headers, name):
    for key, value in headers or []:
        if key == name:
            return value.decode()
    return "-"


def consume(bootstraps, topic, count, timeout_s):
    consumer = KafkaConsumer(bootstrap_servers=bootstraps.split(","), group_id=None,
                             enable_auto_commit=False, consumer_timeout_ms=int(timeout_s * 1000))
    partitions = None
    for _ in range(100):  # the topic's metadata may take a moment
        partitions = consumer.partitions_for_topic(topic)
        if partitions:
            break
        consumer.poll(timeout_ms=100)
    if not partitions:
        sys.exit("kafka_python_client: no partitions for topic " + topic)
    assigned = [TopicPartition(topic, p) for p in sorted(partitions)]
    consumer.assign(assigned)
    consumer.seek_to_beginning(*assigned)
    seen = 0
    out = sys.stdout
    for m in consumer:  # ends after consumer_timeout_ms without a record
        key = "-" if m.key is None else m.key.hex()
        out.write("%d %d %s %s %d %s %s\n" % (
            m.partition, m.offset, key, (m.value or b"").hex(), m.timestamp,
            header(m.headers, "ringbus.offset"), header(m.headers, "ringbus.sequence")))
        seen += 1
        if seen >= count:
            break
    out.flush()
    consumer.close()


def produce(bootstraps, topic, first, end):
    producer = KafkaProducer(bootstrap_servers=bootstraps.split(","), acks="all")
    futures = [producer.send(topic, key=b"k%d" % (i % 7), value=b"rec-%d" % i,
                             timestamp_ms=1600000000000 + i) for i in range(first, end)]
    producer.flush(timeout=60)
    for f in futures:
        f.get(timeout=60)  # raises if a record was not acknowledged
    producer.close()
    print("produced %d" % (end - first), flush=True)


def main():
    if len(sys.argv) == 6 and sys.argv[1] == "consume":
        consume(sys.argv[2], sys.argv[3], int(sys.argv[4]), float(sys.argv[5]))
    elif len(sys.argv) == 6 and sys.argv[1] == "produce":
        produce(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()

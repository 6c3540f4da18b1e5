"""The Kafka consumer a team would hand-write instead of Switchyard's dispatcher (the
dispatcher benchmark's Python baseline): confluent-kafka + requests, at-least-once — for each
`payment_successful` event, PATCH the order service, and store the offset only after a 2xx.

    python bench/baseline_consumer.py <brokers> <topic> <group> <order service url>
"""
import json
import sys

import requests
from confluent_kafka import Consumer


def main():
    brokers, topic, group, base = sys.argv[1:5]
    consumer = Consumer({"bootstrap.servers": brokers, "group.id": group, "auto.offset.reset": "earliest",
                         "enable.auto.offset.store": False, "session.timeout.ms": 6000})
    consumer.subscribe([topic])
    session = requests.Session()
    while True:
        msg = consumer.poll(1.0)
        if msg is None or msg.error():
            continue
        event = json.loads(msg.value())
        if event.get("event_type") != "payment_successful":
            consumer.store_offsets(msg)
            continue
        headers = dict((k, v.decode()) for k, v in (msg.headers() or []))
        body = {"order_status": "processing", "transaction_id": event["transaction_id"],
                "payment_amount": event["payment_amount"], "currency": event["currency"],
                "payment_method": event["payment_method"], "paid_at": event["event_timestamp"]}
        while True:
            try:
                r = session.patch(f"{base}/orders/{requests.utils.quote(event['order_id'], safe='')}", json=body,
                                  headers={"Idempotency-Key": headers.get("event_id", "")}, timeout=10)
                if r.status_code < 500:
                    break
            except requests.RequestException:
                pass
        consumer.store_offsets(msg)


if __name__ == "__main__":
    main()

"""The webhook service a team would hand-write instead of Switchyard (the benchmark's Python
baseline): aiohttp + confluent-kafka + jsonschema, doing the same work on the same payloads —
check the Stripe signature, parse, validate against the same schemas, map a paid checkout to
`payment_successful`, validate that, publish it, and answer 200 once Kafka acknowledged it.

    python bench/baseline_webhook.py <port> <brokers> <topic>     (secret in BENCH_SECRET)
"""
import asyncio
import datetime
import hashlib
import hmac
import json
import os
import pathlib
import sys
import threading
import time

from aiohttp import web
from confluent_kafka import Producer
from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry, Resource

SCHEMAS = pathlib.Path(__file__).resolve().parent.parent / "schemas"
SECRET = os.environ["BENCH_SECRET"].encode()
TOLERANCE = 300
METHODS = {"card": "Credit Card", "link": "Link", "paypal": "PayPal"}
EXPONENT = {"jpy": 0, "krw": 0, "kwd": 3, "bhd": 3}


def retrieve(uri):
    return Resource.from_contents(json.loads((SCHEMAS / "stripe" / uri).read_text()))


def validator(path):
    schema = json.loads((SCHEMAS / path).read_text())
    return Draft202012Validator(schema, registry=Registry(retrieve=retrieve), format_checker=FormatChecker())


INBOUND = validator("stripe/event.schema.json")
CANONICAL = validator("payment_successful.schema.json")


def verify(header, body):
    items = dict(i.split("=", 1) for i in header.split(",") if "=" in i)
    t = items.get("t", "")
    sigs = [v.split("=", 1)[1] for v in header.split(",") if v.startswith("v1=")]
    if not t.isdigit() or abs(time.time() - int(t)) > TOLERANCE:
        return False
    expected = hmac.new(SECRET, t.encode() + b"." + body, hashlib.sha256).hexdigest()
    return any(hmac.compare_digest(expected, s) for s in sigs)


def to_canonical(event):
    obj = event["data"]["object"]
    currency = obj["currency"]
    order_id = (obj.get("metadata") or {}).get("order_id") or obj.get("client_reference_id")
    if not order_id:
        raise ValueError("no order id")
    return {
        "event_type": "payment_successful",
        "event_timestamp": datetime.datetime.fromtimestamp(event["created"], datetime.timezone.utc)
        .strftime("%Y-%m-%dT%H:%M:%SZ"),
        "order_id": order_id,
        "customer_id": obj.get("customer"),
        "payment_amount": obj["amount_total"] / 10 ** EXPONENT.get(currency, 2),
        "payment_method": METHODS.get(obj["payment_method_types"][0], "Other"),
        "transaction_id": obj.get("payment_intent") or obj["id"],
        "currency": currency.upper(),
        "payment_status": "Success",
    }


def main():
    port, brokers, topic = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    producer = Producer({"bootstrap.servers": brokers, "enable.idempotence": True, "acks": "all",
                         "linger.ms": float(os.environ.get("LINGER_MS", "0.2")), "compression.type": "lz4", "message.timeout.ms": 10000})
    def poll():
        while True:
            producer.poll(0.05)

    threading.Thread(target=poll, daemon=True).start()

    async def webhook(request):
        body = await request.read()
        if not verify(request.headers.get("Stripe-Signature", ""), body):
            return web.json_response({"status": "rejected", "reason": "signature"}, status=401)
        try:
            event = json.loads(body)
        except ValueError:
            return web.json_response({"status": "rejected", "reason": "json"}, status=400)
        errors = [e.message for e in INBOUND.iter_errors(event)]
        if errors:
            return web.json_response({"status": "rejected", "reason": "schema", "errors": errors}, status=422)
        if event["type"] != "checkout.session.completed" or event["data"]["object"]["payment_status"] != "paid":
            return web.json_response({"status": "ignored"})
        try:
            canonical = to_canonical(event)
        except (KeyError, ValueError, IndexError) as e:
            return web.json_response({"status": "rejected", "reason": "mapping", "message": str(e)}, status=422)
        if list(CANONICAL.iter_errors(canonical)):
            return web.json_response({"status": "rejected", "reason": "canonical"}, status=500)
        loop = asyncio.get_running_loop()
        done = loop.create_future()

        def delivered(err, msg):
            loop.call_soon_threadsafe(done.set_result, (err, msg))

        producer.produce(topic, key=canonical["order_id"], value=json.dumps(canonical).encode(),
                         headers={"event_id": event["id"], "event_type": "payment_successful"}, on_delivery=delivered)
        err, msg = await done
        if err is not None:
            return web.json_response({"status": "rejected", "reason": "broker"}, status=503)
        return web.json_response({"status": "accepted", "event_id": event["id"],
                                  "partition": msg.partition(), "offset": msg.offset()})

    app = web.Application()
    app.router.add_post("/webhooks/stripe", webhook)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


if __name__ == "__main__":
    main()

"""A local fake of the Stripe API for the tests: the real SDK talks to it over HTTP.

``FakeStripe`` is a small HTTP server (127.0.0.1, a free port, in a thread) that understands
the requests ``donations.stripe_api`` makes — form-encoded as the SDK sends them — keeps the
objects it created, and answers with JSON shaped like Stripe's (API ``2026-10-28.endive``):
invoices carry ``parent.subscription_details`` and no ``subscription``/``payment_intent``,
payments are listed at ``/v1/invoice_payments``, a charge's refunds come only when expanded.

It checks what we send and refuses (an error answer, also noted in ``refusals``) what Stripe
would refuse or what would be a bug on our side: ``payment_method_types`` (gone), an amount that is
not a whole number of yen, metadata missing from the session or from what it creates,
``payment_intent_data`` in subscription mode, a POST without an idempotency key. Every request
is recorded (method, path, parameters, headers) for the tests to inspect, and a repeated
idempotency key gets the first answer again, as at Stripe.

What the donor, the store, the bank or the card network would do is played by methods
(``pay``, ``store_paid``, ``next_invoice``, ``refund_in_dashboard``, ``dispute`` …), each
returning the events Stripe would send; ``deliver`` signs one exactly as Stripe does and posts
it to our webhook.

Test modules import the fixtures ``fake_stripe`` and ``eager_tasks`` with
``from tests.donations.fake_stripe import eager_tasks_fixture, fake_stripe_fixture``.
"""

from __future__ import annotations

import copy
import hmac
import itertools
import json
import re
import secrets
import threading
import time
from dataclasses import dataclass
from hashlib import sha256
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

API_VERSION = "2026-10-28.endive"
SECRET_KEY = "sk_test_fake"
WEBHOOK_SECRET = "whsec_test_fake_secret"
WEBHOOK_PATH = "/stripe/webhook/"
KONBINI_RANGE = (120, 300_000)  # yen a konbini voucher can be for
EXPANDED_LIST_PAGE = 10  # an expanded list (charge.refunds) holds this many, then has_more
# Stripe's fee on each charge in the fake: 3.6%, rounded down (JPY has no minor unit).
FEE_PER_MILLE = 36


def fee_of(amount: int) -> int:
    return amount * FEE_PER_MILLE // 1000


class StripeRefusal(Exception):
    def __init__(self, status: int, message: str, *, kind: str = "invalid_request_error", **kw):
        super().__init__(message)
        self.status, self.message, self.kind, self.extra = status, message, kind, kw

    def body(self) -> dict[str, Any]:
        return {"error": {"type": self.kind, "message": self.message, **self.extra}}


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    params: dict[str, Any]
    headers: dict[str, str]

    @property
    def idempotency_key(self) -> str | None:
        return self.headers.get("Idempotency-Key")


def decode_form(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """Stripe's bracket encoding (``a[b][0][c]=v``, ``expand[]=x``) back into dicts and lists."""
    root: dict[str, Any] = {}
    for key, value in pairs:
        parts = [key.split("[", 1)[0], *re.findall(r"\[([^\]]*)\]", key)]
        node = root
        for depth, part in enumerate(parts):
            if part == "":
                part = str(len(node))
            if depth == len(parts) - 1:
                node[part] = value
            else:
                node = node.setdefault(part, {})

    def listify(value: Any) -> Any:
        if isinstance(value, dict):
            value = {k: listify(v) for k, v in value.items()}
            if value and all(k.isdigit() for k in value):
                return [value[k] for k in sorted(value, key=int)]
        return value

    return listify(root)


def sign(body: bytes, *, secret: str = WEBHOOK_SECRET, timestamp: int | None = None) -> str:
    """The ``Stripe-Signature`` header Stripe sends: HMAC-SHA256 of ``"{t}.{body}"``."""
    t = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{t}.".encode() + body, sha256).hexdigest()
    return f"t={t},v1={mac}"


def deliver(client, event: dict[str, Any], **sign_options: Any):
    """Post an event to our webhook as Stripe would (raw JSON body, signed)."""
    body = json.dumps(event).encode()
    return client.post(
        WEBHOOK_PATH,
        data=body,
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE=sign(body, **sign_options),
    )


def _whole_yen(value: Any, param: str) -> int:
    if not isinstance(value, str) or not re.fullmatch(r"[1-9][0-9]*", value):
        raise StripeRefusal(400, f"Invalid integer: {value}", param=param)
    amount = int(value)
    if amount > 99_999_999:
        raise StripeRefusal(400, "Amount must be no more than ¥99,999,999", param=param)
    return amount


class FakeStripe:
    def __init__(self, *, latency: float = 0) -> None:
        # Seconds each answer takes (Stripe's own take 100–500 ms); the benchmark sets it.
        self.latency = latency
        self.lock = threading.RLock()
        self.objects: dict[str, dict[str, Any]] = {}
        self.requests: list[Request] = []
        self.events: list[dict[str, Any]] = []
        self.refusals: list[str] = []
        self._answers: dict[str, tuple[Any, dict[str, Any]]] = {}
        self._session_params: dict[str, dict[str, Any]] = {}
        self._counter = itertools.count(1)
        self._server: ThreadingHTTPServer | None = None

    # --- Server ------------------------------------------------------------------------------

    def start(self) -> FakeStripe:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as the SDK's requests session expects
            # Headers and body go out as two writes: without this, Nagle's algorithm and the
            # client's delayed ACK hold every answer back ~40 ms.
            disable_nagle_algorithm = True

            def _serve(self) -> None:
                url = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode() if length else ""
                pairs = parse_qsl(url.query, keep_blank_values=True)
                pairs += parse_qsl(body, keep_blank_values=True)
                status, answer = fake.handle(
                    self.command, url.path, decode_form(pairs), dict(self.headers.items())
                )
                if fake.latency:
                    time.sleep(fake.latency)
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Request-Id", f"req_{secrets.token_hex(7)}")
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_DELETE = _serve

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    # --- Requests ----------------------------------------------------------------------------

    ROUTES = [
        ("POST", r"/v1/checkout/sessions", "_create_session"),
        ("GET", r"/v1/checkout/sessions/(?P<id>[^/]+)", "_retrieve"),
        ("GET", r"/v1/payment_intents/(?P<id>[^/]+)", "_retrieve"),
        ("GET", r"/v1/invoices/(?P<id>[^/]+)", "_retrieve"),
        ("GET", r"/v1/invoice_payments", "_list_invoice_payments"),
        ("GET", r"/v1/subscriptions/(?P<id>[^/]+)", "_retrieve"),
        ("DELETE", r"/v1/subscriptions/(?P<id>[^/]+)", "_cancel_subscription"),
        ("POST", r"/v1/refunds", "_create_refund"),
        ("GET", r"/v1/refunds", "_list_refunds"),
        ("GET", r"/v1/charges/(?P<id>[^/]+)", "_retrieve"),
        ("GET", r"/v1/disputes/(?P<id>[^/]+)", "_retrieve"),
        ("GET", r"/v1/payouts", "_list_payouts"),
        ("GET", r"/v1/payouts/(?P<id>[^/]+)", "_retrieve"),
        ("GET", r"/v1/balance_transactions", "_list_balance_transactions"),
        ("GET", r"/v1/balance", "_balance"),
    ]
    OBJECT_PATHS = {
        "checkout/sessions": "checkout.session",
        "payment_intents": "payment_intent",
        "invoices": "invoice",
        "subscriptions": "subscription",
        "charges": "charge",
        "disputes": "dispute",
    }

    def handle(
        self, method: str, path: str, params: dict[str, Any], headers: dict[str, str]
    ) -> tuple[int, dict[str, Any]]:
        kept = {
            name: value
            for name, value in headers.items()
            if name.lower() in ("idempotency-key", "stripe-version", "authorization")
        }
        kept = {"-".join(w.capitalize() for w in k.split("-")): v for k, v in kept.items()}
        request = Request(method, path, params, kept)
        with self.lock:
            self.requests.append(request)
            try:
                return 200, self._answer(request)
            except StripeRefusal as refusal:
                self.refusals.append(f"{method} {path}: {refusal.message}")
                return refusal.status, refusal.body()

    def _answer(self, request: Request) -> dict[str, Any]:
        if request.headers.get("Authorization") != f"Bearer {SECRET_KEY}":
            raise StripeRefusal(401, "Invalid API Key provided", kind="invalid_request_error")
        if request.headers.get("Stripe-Version") != API_VERSION:
            raise StripeRefusal(400, "Unexpected Stripe-Version", param="Stripe-Version")
        key = request.idempotency_key
        if request.method == "POST":
            if not key:
                raise StripeRefusal(400, "POST without an Idempotency-Key")
            if key in self._answers:
                first_params, answer = self._answers[key]
                if first_params != (request.path, request.params):
                    raise StripeRefusal(
                        400,
                        "Keys for idempotent requests can only be used with the same parameters",
                        kind="idempotency_error",
                    )
                return copy.deepcopy(answer)
        for method, pattern, handler in self.ROUTES:
            match = re.fullmatch(pattern, request.path)
            if method == request.method and match:
                answer = getattr(self, handler)(request.params, **match.groupdict())
                if request.method == "POST":
                    self._answers[key] = ((request.path, request.params), answer)
                return copy.deepcopy(answer)
        raise StripeRefusal(404, f"Unrecognized request URL ({request.method}: {request.path})")

    def _retrieve(self, params: dict[str, Any], id: str) -> dict[str, Any]:
        obj = self.objects.get(id)
        if obj is None:
            raise StripeRefusal(404, f"No such object: '{id}'", code="resource_missing")
        return self._render(obj, params.get("expand") or [])

    # --- Rendering (expand, lists) -------------------------------------------------------------

    def _list(self, items: list[dict[str, Any]], url: str, params: dict[str, Any]) -> dict:
        """A page of a list, newest first, as Stripe pages (limit, starting_after)."""
        items = sorted(items, key=lambda o: (o["created"], o["_seq"]), reverse=True)
        if params.get("starting_after"):
            ids = [o["id"] for o in items]
            items = items[ids.index(params["starting_after"]) + 1 :]
        limit = int(params.get("limit") or 10)
        return {
            "object": "list",
            "url": url,
            "has_more": len(items) > limit,
            "data": [self._render(o, []) for o in items[:limit]],
        }

    def _includable(self, obj: dict[str, Any], field: str) -> dict[str, Any] | None:
        """Fields Stripe leaves out unless expanded: a charge's refunds, an invoice's payments."""
        if obj["object"] == "charge" and field == "refunds":
            refunds = [o for o in self.objects.values() if o.get("charge") == obj["id"]]
            url = f"/v1/charges/{obj['id']}/refunds"
            refunds = [o for o in refunds if o["object"] == "refund"]
            return self._list(refunds, url, {"limit": EXPANDED_LIST_PAGE})
        if obj["object"] == "invoice" and field == "payments":
            payments = self._of_type("invoice_payment", invoice=obj["id"])
            return self._list(payments, "/v1/invoice_payments", {"limit": EXPANDED_LIST_PAGE})
        return None

    def _render(self, obj: dict[str, Any], expand: list[str]) -> dict[str, Any]:
        data = {k: copy.deepcopy(v) for k, v in obj.items() if not k.startswith("_")}
        tree: dict[str, list[str]] = {}
        for path in expand:
            first, _, rest = path.partition(".")
            tree.setdefault(first, [])
            if rest:
                tree[first].append(rest)
        for field, deeper in tree.items():
            if data.get("object") == "list" and field == "data":
                data["data"] = [self._render(self.objects[o["id"]], deeper) for o in data["data"]]
                continue
            included = self._includable(obj, field)
            if included is not None:
                data[field] = self._render(included, deeper)
                continue
            value = data.get(field, "missing")
            if value is None:
                continue
            if not isinstance(value, str) or value not in self.objects:
                raise StripeRefusal(400, f"This property cannot be expanded ({field}).")
            data[field] = self._render(self.objects[value], deeper)
        return data

    def _of_type(self, kind: str, **fields: Any) -> list[dict[str, Any]]:
        return [
            o
            for o in self.objects.values()
            if o["object"] == kind and all(o.get(k) == v for k, v in fields.items())
        ]

    # --- Objects -------------------------------------------------------------------------------

    def _new(self, prefix: str, kind: str, **fields: Any) -> dict[str, Any]:
        seq = next(self._counter)
        obj = {
            "id": f"{prefix}_test_{seq:06d}{secrets.token_hex(4)}",
            "object": kind,
            "created": int(time.time()),
            "livemode": False,
            "_seq": seq,
            **fields,
        }
        self.objects[obj["id"]] = obj
        return obj

    def _create_session(self, params: dict[str, Any]) -> dict[str, Any]:
        if "payment_method_types" in params:
            raise StripeRefusal(
                400,
                "payment_method_types is no longer supported: use allowed_payment_method_types",
                param="payment_method_types",
            )
        mode = params.get("mode")
        if mode not in ("payment", "subscription"):
            raise StripeRefusal(400, f"Invalid mode: {mode}", param="mode")
        for url_param in ("success_url", "cancel_url"):
            if not re.match(r"https?://[^/]+", params.get(url_param) or ""):
                raise StripeRefusal(400, "Not a valid URL", param=url_param)
        items = params.get("line_items") or []
        if len(items) != 1 or items[0].get("quantity") != "1":
            raise StripeRefusal(400, "Expected one line item of quantity 1", param="line_items")
        price = items[0].get("price_data") or {}
        if price.get("currency") != "jpy":
            raise StripeRefusal(400, "Expected currency jpy", param="line_items[0][currency]")
        amount = _whole_yen(price.get("unit_amount"), "line_items[0][price_data][unit_amount]")
        if not (price.get("product_data") or {}).get("name"):
            raise StripeRefusal(400, "Missing required param: product_data[name]")
        recurring = price.get("recurring")
        metadata = params.get("metadata") or {}
        if not metadata.get("donation_id"):
            raise StripeRefusal(400, "Our session metadata has no donation_id", param="metadata")
        if mode == "subscription":
            if (recurring or {}).get("interval") != "month":
                raise StripeRefusal(400, "Subscription mode needs a monthly recurring price")
            if "payment_intent_data" in params:
                raise StripeRefusal(400, "You can not pass `payment_intent_data` in subscription")
            copied = (params.get("subscription_data") or {}).get("metadata")
        else:
            if recurring:
                raise StripeRefusal(400, "A recurring price in payment mode")
            if "subscription_data" in params:
                raise StripeRefusal(400, "You can not pass `subscription_data` in payment mode")
            copied = (params.get("payment_intent_data") or {}).get("metadata")
        if copied != metadata:
            raise StripeRefusal(400, f"Metadata not copied to what the {mode} session creates")
        allowed = params.get("allowed_payment_method_types") or ["card"]
        # Stripe drops what does not apply: konbini only for one-time JPY within its limits.
        offered = [
            m
            for m in allowed
            if m != "konbini"
            or (mode == "payment" and KONBINI_RANGE[0] <= amount <= KONBINI_RANGE[1])
        ]
        session = self._new(
            "cs",
            "checkout.session",
            mode=mode,
            status="open",
            payment_status="unpaid",
            amount_subtotal=amount,
            amount_total=amount,
            currency="jpy",
            customer=None,
            customer_email=params.get("customer_email"),
            client_reference_id=params.get("client_reference_id"),
            metadata=metadata,
            payment_intent=None,
            subscription=None,
            invoice=None,
            submit_type=params.get("submit_type"),
            success_url=params["success_url"],
            cancel_url=params["cancel_url"],
            expires_at=int(time.time()) + 24 * 3600,
            allowed_payment_method_types=allowed,
            payment_method_types=offered,
        )
        session["url"] = f"https://checkout.stripe.com/c/pay/{session['id']}"
        self._session_params[session["id"]] = params
        return self._render(session, [])

    def _intent(self, amount: int, metadata: dict, method: str, status: str) -> dict[str, Any]:
        return self._new(
            "pi",
            "payment_intent",
            amount=amount,
            amount_received=amount if status == "succeeded" else 0,
            currency="jpy",
            status=status,
            latest_charge=None,
            metadata=dict(metadata),
            payment_method_types=[method],
        )

    def _charge(self, intent: dict[str, Any]) -> dict[str, Any]:
        charge = self._new(
            "ch",
            "charge",
            amount=intent["amount"],
            amount_refunded=0,
            currency="jpy",
            paid=True,
            refunded=False,
            disputed=False,
            status="succeeded",
            payment_intent=intent["id"],
        )
        intent["status"], intent["amount_received"] = "succeeded", intent["amount"]
        intent["latest_charge"] = charge["id"]
        self._balance_transaction("charge", charge["amount"], fee_of(charge["amount"]), charge)
        return charge

    def _balance_transaction(
        self, kind: str, amount: int, fee: int, source: dict[str, Any], payout: str | None = None
    ) -> dict[str, Any]:
        """A movement of the balance; ``_payout`` is the payout that carries it (None: not yet)."""
        return self._new(
            "txn",
            "balance_transaction",
            amount=amount,
            fee=fee,
            net=amount - fee,
            currency="jpy",
            type=kind,
            source=source["id"],
            status="available",
            _payout=payout,
        )

    def _invoice(self, subscription: dict[str, Any], *, paid: bool, reason: str) -> dict[str, Any]:
        amount = subscription["_amount"]
        invoice = self._new(
            "in",
            "invoice",
            status="open",
            amount_due=amount,
            amount_paid=0,
            amount_remaining=amount,
            currency="jpy",
            customer=subscription["customer"],
            billing_reason=reason,
            metadata={},
            parent={
                "type": "subscription_details",
                "quote_details": None,
                "subscription_details": {
                    "subscription": subscription["id"],
                    "metadata": dict(subscription["metadata"]),
                },
            },
            status_transitions={"finalized_at": int(time.time()), "paid_at": None},
        )
        intent = self._intent(amount, {}, "card", "requires_payment_method")
        payment = self._new(
            "inpay",
            "invoice_payment",
            invoice=invoice["id"],
            amount_requested=amount,
            amount_paid=None,
            currency="jpy",
            is_default=True,
            status="open",
            payment={"type": "payment_intent", "payment_intent": intent["id"]},
            status_transitions={"paid_at": None, "canceled_at": None},
        )
        if paid:
            self._charge(intent)
            now = int(time.time())
            invoice.update(status="paid", amount_paid=amount, amount_remaining=0)
            invoice["status_transitions"]["paid_at"] = now
            payment.update(status="paid", amount_paid=amount)
            payment["status_transitions"]["paid_at"] = now
        subscription["latest_invoice"] = invoice["id"]
        return invoice

    def _list_invoice_payments(self, params: dict[str, Any]) -> dict[str, Any]:
        if not params.get("invoice"):
            raise StripeRefusal(400, "Expected an invoice filter", param="invoice")
        filters = {"invoice": params["invoice"]}
        if params.get("status"):
            filters["status"] = params["status"]
        return self._list(
            self._of_type("invoice_payment", **filters), "/v1/invoice_payments", params
        )

    def _cancel_subscription(self, params: dict[str, Any], id: str) -> dict[str, Any]:
        subscription = self.objects.get(id)
        if subscription is None or subscription["object"] != "subscription":
            raise StripeRefusal(404, f"No such subscription: '{id}'", code="resource_missing")
        if subscription["status"] == "canceled":
            raise StripeRefusal(
                400,
                "A canceled subscription can only update its cancellation_details and metadata.",
                code="subscription_canceled",
            )
        subscription.update(status="canceled", canceled_at=int(time.time()))
        return self._render(subscription, [])

    def _create_refund(self, params: dict[str, Any]) -> dict[str, Any]:
        intent = self.objects.get(params.get("payment_intent") or "")
        if intent is None or intent["object"] != "payment_intent":
            raise StripeRefusal(400, "No such payment_intent", param="payment_intent")
        amount = _whole_yen(params.get("amount"), "amount")
        return self._render(self._refund(intent, amount), [])

    def _refund(self, intent: dict[str, Any], amount: int) -> dict[str, Any]:
        charge = self.objects.get(intent.get("latest_charge") or "")
        if charge is None:
            raise StripeRefusal(400, "This PaymentIntent has no successful charge to refund")
        if amount > charge["amount"] - charge["amount_refunded"]:
            raise StripeRefusal(
                400,
                f"Refund amount (¥{amount}) is greater than unrefunded amount on charge",
                code="amount_too_large",
            )
        refund = self._new(
            "re",
            "refund",
            amount=amount,
            currency="jpy",
            charge=charge["id"],
            payment_intent=intent["id"],
            status="succeeded",
            metadata={},
        )
        charge["amount_refunded"] += amount
        charge["refunded"] = charge["amount_refunded"] >= charge["amount"]
        self._balance_transaction("refund", -amount, 0, refund)
        return refund

    def _list_refunds(self, params: dict[str, Any]) -> dict[str, Any]:
        refunds = self._of_type("refund", charge=params.get("charge"))
        return self._list(refunds, "/v1/refunds", params)

    # --- Payouts and the balance ---------------------------------------------------------------

    @staticmethod
    def _in_range(value: int | None, spec: Any) -> bool:
        """Stripe's range filters: ``created[gte]=…`` (or a plain value: equal)."""
        if spec is None:
            return True
        if value is None:
            return False
        if not isinstance(spec, dict):
            return value == int(spec)
        tests = {
            "gt": lambda b: value > b,
            "gte": lambda b: value >= b,
            "lt": lambda b: value < b,
            "lte": lambda b: value <= b,
        }
        for op, bound in spec.items():
            if op not in tests:
                raise StripeRefusal(400, f"Invalid range filter: {op}")
            if not tests[op](int(bound)):
                return False
        return True

    def _list_payouts(self, params: dict[str, Any]) -> dict[str, Any]:
        payouts = [
            o
            for o in self._of_type("payout")
            if self._in_range(o["arrival_date"], params.get("arrival_date"))
            and self._in_range(o["created"], params.get("created"))
            and (not params.get("status") or o["status"] == params["status"])
        ]
        return self._list(payouts, "/v1/payouts", params)

    def _list_balance_transactions(self, params: dict[str, Any]) -> dict[str, Any]:
        items = [
            o
            for o in self._of_type("balance_transaction")
            if self._in_range(o["created"], params.get("created"))
            and (not params.get("type") or o["type"] == params["type"])
        ]
        if params.get("payout"):
            payout = self.objects.get(params["payout"])
            if payout is None or payout["object"] != "payout":
                raise StripeRefusal(400, f"No such payout: '{params['payout']}'", param="payout")
            items = [o for o in items if o["_payout"] == payout["id"]]
        return self._list(items, "/v1/balance_transactions", params)

    def _balance(self, params: dict[str, Any]) -> dict[str, Any]:
        held = sum(o["net"] for o in self._of_type("balance_transaction"))
        return {
            "object": "balance",
            "livemode": False,
            "available": [{"amount": held, "currency": "jpy", "source_types": {"card": held}}],
            "pending": [{"amount": 0, "currency": "jpy", "source_types": {"card": 0}}],
        }

    # --- What happens outside our site (each returns the events Stripe would send) -------------

    def event(self, event_type: str, obj: dict[str, Any]) -> dict[str, Any]:
        event = {
            "id": f"evt_test_{next(self._counter):06d}{secrets.token_hex(6)}",
            "object": "event",
            "api_version": API_VERSION,
            "created": int(time.time()),
            "livemode": False,
            "pending_webhooks": 1,
            "request": {"id": None, "idempotency_key": None},
            "type": event_type,
            "data": {"object": self._render(obj, [])},
        }
        self.events.append(event)
        return event

    def session(self, session_id: str) -> dict[str, Any]:
        return self.objects[session_id]

    def intent_of(self, session_id: str) -> dict[str, Any]:
        return self.objects[self.objects[session_id]["payment_intent"]]

    def pay(self, session_id: str, *, method: str = "card") -> list[dict[str, Any]]:
        """The donor pays at the checkout page: card (or konbini: a voucher, paid later)."""
        with self.lock:
            session = self.objects[session_id]
            assert session["status"] == "open", session["status"]
            assert method in session["payment_method_types"], session["payment_method_types"]
            params = self._session_params[session_id]
            amount = session["amount_total"]
            if session["mode"] == "subscription":
                return self._subscribe(session, params, amount)
            metadata = params["payment_intent_data"]["metadata"]
            intent = self._intent(amount, metadata, method, "requires_action")
            session.update(status="complete", payment_intent=intent["id"])
            if method == "konbini":
                return [
                    self.event("payment_intent.requires_action", intent),
                    self.event("checkout.session.completed", session),
                ]
            charge = self._charge(intent)
            session["payment_status"] = "paid"
            return [
                self.event("charge.succeeded", charge),
                self.event("payment_intent.succeeded", intent),
                self.event("checkout.session.completed", session),
            ]

    def _subscribe(self, session: dict, params: dict, amount: int) -> list[dict[str, Any]]:
        customer = self._new("cus", "customer", email=session["customer_email"])
        subscription = self._new(
            "sub",
            "subscription",
            status="active",
            customer=customer["id"],
            currency="jpy",
            metadata=dict(params["subscription_data"]["metadata"]),
            latest_invoice=None,
            canceled_at=None,
            _amount=amount,
        )
        invoice = self._invoice(subscription, paid=True, reason="subscription_create")
        session.update(
            status="complete",
            payment_status="paid",
            customer=customer["id"],
            subscription=subscription["id"],
            invoice=invoice["id"],
        )
        return [
            self.event("customer.subscription.created", subscription),
            self.event("invoice.paid", invoice),
            self.event("checkout.session.completed", session),
        ]

    def subscription_of(self, session_id: str) -> str:
        return self.objects[session_id]["subscription"]

    def store_paid(self, session_id: str) -> list[dict[str, Any]]:
        """The donor pays the konbini voucher at the store."""
        with self.lock:
            session = self.objects[session_id]
            intent = self.objects[session["payment_intent"]]
            assert intent["status"] == "requires_action"
            charge = self._charge(intent)
            session["payment_status"] = "paid"
            return [
                self.event("charge.succeeded", charge),
                self.event("payment_intent.succeeded", intent),
                self.event("checkout.session.async_payment_succeeded", session),
            ]

    def store_expired(
        self, session_id: str, *, intent_status: str = "requires_payment_method"
    ) -> list[dict[str, Any]]:
        """The konbini voucher expires unpaid."""
        with self.lock:
            session = self.objects[session_id]
            intent = self.objects[session["payment_intent"]]
            assert intent["status"] == "requires_action"
            intent["status"] = intent_status
            return [
                self.event("payment_intent.payment_failed", intent),
                self.event("checkout.session.async_payment_failed", session),
            ]

    def expire(self, session_id: str) -> list[dict[str, Any]]:
        """The donor leaves the checkout page; the session expires."""
        with self.lock:
            session = self.objects[session_id]
            session["status"] = "expired"
            return [self.event("checkout.session.expired", session)]

    def next_invoice(self, subscription_id: str, *, paid: bool = True) -> list[dict[str, Any]]:
        """A month passes: the subscription's next invoice is paid (or its payment fails)."""
        with self.lock:
            subscription = self.objects[subscription_id]
            invoice = self._invoice(subscription, paid=paid, reason="subscription_cycle")
            if paid:
                subscription["status"] = "active"
                return [self.event("invoice.paid", invoice)]
            subscription["status"] = "past_due"
            return [
                self.event("invoice.payment_failed", invoice),
                self.event("customer.subscription.updated", subscription),
            ]

    def end_subscription(self, subscription_id: str) -> list[dict[str, Any]]:
        """The subscription ends at Stripe (the donor's bank, the dashboard, dunning)."""
        with self.lock:
            subscription = self.objects[subscription_id]
            subscription.update(status="canceled", canceled_at=int(time.time()))
            return [self.event("customer.subscription.deleted", subscription)]

    def refund_in_dashboard(self, payment_intent_id: str, amount: int) -> list[dict[str, Any]]:
        """Someone refunds in Stripe's dashboard (not through our site)."""
        with self.lock:
            intent = self.objects[payment_intent_id]
            refund = self._refund(intent, amount)
            charge = self.objects[refund["charge"]]
            return [self.event("refund.created", refund), self.event("charge.refunded", charge)]

    def refunded_event(self, payment_intent_id: str) -> dict[str, Any]:
        """The ``charge.refunded`` Stripe sends after a refund made through the API."""
        with self.lock:
            intent = self.objects[payment_intent_id]
            return self.event("charge.refunded", self.objects[intent["latest_charge"]])

    def dispute(self, payment_intent_id: str) -> list[dict[str, Any]]:
        """The donor's bank opens a dispute (a chargeback) on the payment."""
        with self.lock:
            intent = self.objects[payment_intent_id]
            charge = self.objects[intent["latest_charge"]]
            charge["disputed"] = True
            dispute = self._new(
                "dp",
                "dispute",
                amount=charge["amount"],
                currency="jpy",
                charge=charge["id"],
                payment_intent=intent["id"],
                reason="fraudulent",
                status="needs_response",
            )
            return [self.event("charge.dispute.created", dispute)]

    def close_dispute(self, dispute_id: str, status: str) -> list[dict[str, Any]]:
        """The dispute ends: "won" (money stays) or "lost" (the bank takes it back)."""
        with self.lock:
            dispute = self.objects[dispute_id]
            dispute["status"] = status
            return [self.event("charge.dispute.closed", dispute)]

    def payout(self, *, status: str = "paid", arrival_days: int = 0) -> list[dict[str, Any]]:
        """Stripe pays out everything in the balance not paid out yet: charges less their fees,
        less refunds. ``status="in_transit"``: on its way (``payout_paid`` lands it)."""
        with self.lock:
            carried = [
                o
                for o in self._of_type("balance_transaction")
                if o["_payout"] is None and o["type"] != "payout"
            ]
            assert carried, "nothing to pay out"
            net = sum(o["net"] for o in carried)
            assert net >= 1, net
            payout = self._new(
                "po",
                "payout",
                amount=net,
                currency="jpy",
                arrival_date=int(time.time()) + arrival_days * 86400,
                automatic=True,
                method="standard",
                type="bank_account",
                status=status,
                failure_code=None,
                balance_transaction=None,
                metadata={},
            )
            own = self._balance_transaction("payout", -net, 0, payout, payout=payout["id"])
            payout["balance_transaction"] = own["id"]
            for o in carried:
                o["_payout"] = payout["id"]
            events = [self.event("payout.created", payout)]
            if status == "paid":
                events.append(self.event("payout.paid", payout))
            return events

    def payout_paid(self, payout_id: str) -> list[dict[str, Any]]:
        with self.lock:
            payout = self.objects[payout_id]
            payout["status"] = "paid"
            return [self.event("payout.paid", payout)]

    def fail_payout(self, payout_id: str) -> list[dict[str, Any]]:
        """The bank refuses the payout: Stripe puts the money back in the balance."""
        with self.lock:
            payout = self.objects[payout_id]
            payout.update(status="failed", failure_code="account_closed")
            self._balance_transaction("payout_failure", payout["amount"], 0, payout)
            return [self.event("payout.failed", payout)]

    def requests_to(self, method: str, path: str) -> list[Request]:
        return [r for r in self.requests if r.method == method and r.path == path]


@pytest.fixture(name="fake_stripe")
def fake_stripe_fixture(settings):
    """The site configured for Stripe, talking to a fresh ``FakeStripe``."""
    from donations.providers import _stripe_provider

    fake = FakeStripe().start()
    settings.STRIPE_SECRET_KEY = SECRET_KEY
    settings.STRIPE_API_BASE = fake.url
    settings.STRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET
    _stripe_provider.cache_clear()
    yield fake
    _stripe_provider.cache_clear()
    fake.stop()


@pytest.fixture(name="eager_tasks")
def eager_tasks_fixture(settings):
    """Celery tasks run in-process, also when REDIS_URL is set (CI's second run)."""
    from config.celery import app

    settings.CELERY_TASK_ALWAYS_EAGER = True
    before = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = before

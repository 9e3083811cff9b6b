"""Unit tests of the Python guest SDK under ordinary CPython, against a fake host.

componentize-py generates the WIT bindings (``wit_world``) for the connector and channel
worlds together into a temporary directory; each test replaces the host functions it needs.
What only the real host can show (grants, secrets attached, traps) is in ``tests/probe``, run
by ``tributary plugins test sdk/python/tests/probe``.

    python3 -m unittest discover -s sdk/python/tests -v

The toolchain is ``$TRIBUTARY_PY_TOOLCHAIN``, else ``~/.cache/tributary-pip/<hash of
requirements.txt>/`` (installed with ``pip install --target … -r sdk/python/requirements.txt``).
"""

import hashlib
import json
import os
import subprocess
import sys
import tempfile
import unittest

SDK = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WIT = os.path.join(os.path.dirname(os.path.dirname(SDK)), "proto", "wit")


def _toolchain() -> str:
    if os.environ.get("TRIBUTARY_PY_TOOLCHAIN"):
        return os.environ["TRIBUTARY_PY_TOOLCHAIN"]
    with open(os.path.join(SDK, "requirements.txt"), "rb") as file:
        key = hashlib.sha256(file.read()).hexdigest()[:16]
    return os.path.expanduser(f"~/.cache/tributary-pip/{key}")


def _generate_bindings() -> str:
    out = tempfile.mkdtemp(prefix="tributary-py-bindings-")
    env = dict(os.environ, PYTHONPATH=_toolchain())
    run = "import sys; from componentize_py import script; sys.argv[0] = 'componentize-py'; sys.exit(script())"
    subprocess.run(
        [sys.executable, "-c", run, "-d", WIT, "-w", "connector", "-w", "channel", "bindings", out],
        env=env, check=True, stdout=subprocess.DEVNULL,
    )
    return out


sys.path[:0] = [_generate_bindings(), SDK]

from componentize_py_types import Err  # noqa: E402
from wit_world.exports import messaging as wit_messaging  # noqa: E402
from wit_world.exports import sync as wit_sync  # noqa: E402
from wit_world.imports import host as wit_host  # noqa: E402
from wit_world.imports import types as wit_types  # noqa: E402

import tributary_plugin as tp  # noqa: E402
import tributary_plugin.channel  # noqa: E402,F401  (both worlds' parts, loaded before anything runs)
import tributary_plugin.connector  # noqa: E402,F401
import tributary_plugin.runtime  # noqa: E402

# The guard against imports in a call is for components (tests/probe checks it there); under
# CPython it would refuse the test runner's own imports.
tributary_plugin.runtime._sealed = True
from tributary_plugin.http import parse_link_header, parse_retry_after_ms  # noqa: E402


class FakeHost:
    """Replaces the generated host functions for one test; ``answers`` are http-fetch's, in turn."""

    def __init__(self, test: unittest.TestCase, config=None, answers=()):
        self.config = config or {}
        self.answers = list(answers)
        self.requests = []
        self.logs = []
        self.clock = 1_700_000_000_000
        for name in ("config", "http_fetch", "now_ms", "cancelled", "log", "secret"):
            original = getattr(wit_host, name)
            setattr(wit_host, name, getattr(self, name))
            test.addCleanup(setattr, wit_host, name, original)

    def config(self):
        return json.dumps(self.config)

    def secret(self, field):
        if field == "missing":
            raise Err(wit_types.PluginError_Config(wit_types.ConfigProblem(field=field, message="is not set")))
        return "s3cret"

    def http_fetch(self, request):
        self.requests.append(request)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        status, headers, body = answer
        return wit_host.HttpResponse(
            status=status,
            headers=[wit_types.Header(name=k, value=v) for k, v in headers.items()],
            body=body.encode() if isinstance(body, str) else body,
        )

    def now_ms(self):
        self.clock += 10
        return self.clock

    def cancelled(self):
        return False

    def log(self, level, message):
        self.logs.append((level, message))


class Errors(unittest.TestCase):
    def test_each_wit_case_comes_back_as_its_exception_and_goes_back_unchanged(self):
        cases = [
            wit_types.PluginError_Denied("permission `network:outbound:x.example` is not granted"),
            wit_types.PluginError_Limit("memory limit 32 MiB exceeded"),
            wit_types.PluginError_Config(wit_types.ConfigProblem(field="token", message="is not set")),
            wit_types.PluginError_Http(wit_types.HttpProblem(status=404, message="GET a/b answered 404")),
            wit_types.PluginError_Transient("timed out"),
            wit_types.PluginError_Other("something"),
        ]
        kinds = ["denied", "limit", "config", "http", "transient", "other"]
        for case, kind in zip(cases, kinds):
            error = tp.errors.from_wit(case)
            self.assertEqual(error.kind, kind)
            self.assertEqual(error.to_wit(), case)

    def test_a_host_refusal_caught_and_raised_again_keeps_denied_and_its_text(self):
        host = FakeHost(self, answers=[Err(wit_types.PluginError_Denied("permission `network:outbound:x.example` is not granted"))])
        with self.assertRaises(tp.PermissionDenied) as caught:
            tp.request("GET", "https://x.example/a")
        self.assertEqual(caught.exception.message, "permission `network:outbound:x.example` is not granted")
        self.assertEqual(tp.errors.to_wit_error(caught.exception), wit_types.PluginError_Denied(caught.exception.message))
        self.assertEqual(len(host.requests), 1)

    def test_require_config_names_the_key(self):
        with self.assertRaises(tp.ConfigError) as caught:
            tp.require_config({"other": 1, "empty": ""}, "empty")
        self.assertEqual((caught.exception.field, caught.exception.problem), ("empty", "is required"))
        self.assertEqual(str(caught.exception), "config field `empty` is required")
        self.assertEqual(tp.require_config({"key": 0}, "key"), 0)

    def test_config_helpers_check_urls_and_numbers_naming_the_field(self):
        self.assertEqual(tp.config_url({}, "baseUrl", "https://api.example.com/"), "https://api.example.com")
        for bad in ["ftp://x", "https://", "https:///path", 7]:
            with self.assertRaises(tp.ConfigError) as caught:
                tp.config_url({"baseUrl": bad}, "baseUrl")
            self.assertEqual(caught.exception.field, "baseUrl")
        self.assertEqual(tp.config_int({}, "n", 10, 0, 45), 10)
        for bad in [46, -1, True, "3", 2.5]:
            with self.assertRaises(tp.ConfigError):
                tp.config_int({"n": bad}, "n", 10, 0, 45)

    def test_a_secret_that_is_not_set_is_a_config_error_naming_it(self):
        FakeHost(self)
        self.assertEqual(tp.secret("apiToken"), "s3cret")
        with self.assertRaises(tp.ConfigError) as caught:
            tp.secret("missing")
        self.assertEqual(caught.exception.field, "missing")

    def test_a_bug_says_what_was_raised_where(self):
        try:
            {}["absent"]
        except KeyError as error:
            text = tp.errors.describe_exception(error)
        self.assertRegex(text, r"^KeyError: 'absent' \(at test_sdk\.py:\d+ in test_a_bug_says_what_was_raised_where\)$")


class Http(unittest.TestCase):
    def test_a_request_carries_method_headers_json_and_the_secret_to_attach(self):
        host = FakeHost(self, answers=[(201, {"Content-Type": "application/json"}, '{"id": 7}')])
        response = tp.request(
            "post", "https://api.example.com/messages", headers={"idempotency-key": "k"},
            json={"text": "hi"}, auth=tp.bearer("apiToken"), timeout_ms=5000,
        )
        sent = host.requests[0]
        self.assertEqual((sent.method, sent.url, sent.timeout_ms), ("POST", "https://api.example.com/messages", 5000))
        self.assertEqual([(h.name, h.value) for h in sent.headers], [("idempotency-key", "k"), ("content-type", "application/json")])
        self.assertEqual(json.loads(sent.body), {"text": "hi"})
        self.assertEqual(sent.auth, wit_host.SecretAuth_Bearer("apiToken"))
        self.assertEqual((response.status, response.header("content-type"), response.json()), (201, "application/json", {"id": 7}))

    def test_query_parameters_are_encoded_as_urlsearchparams_does(self):
        # What JavaScript's URLSearchParams writes for the same parameters, so the TypeScript
        # and Python SDKs ask the same URL (and share fixtures).
        url = tp.with_query("https://api.example.com/notes?x=1#top", {
            "q": "a b~*!'()\u00e9/?&=+:", "since": "2026-01-02T09:00:00Z", "skip": None, "all": True,
        })
        self.assertEqual(url, "https://api.example.com/notes?x=1&q=a+b%7E*%21%27%28%29%C3%A9%2F%3F%26%3D%2B%3A"
                              "&since=2026-01-02T09%3A00%3A00Z&all=true#top")
        self.assertEqual(tp.with_query("https://a.example/n", {"cursor": None}), "https://a.example/n")

    def test_request_json_checks_the_status_and_asks_for_json(self):
        host = FakeHost(self, answers=[(200, {}, '{"notes": []}'), (404, {}, "no such thing")])
        self.assertEqual(tp.request_json("GET", "https://a.example/notes", query={"page": 2}), {"notes": []})
        self.assertEqual(host.requests[0].url, "https://a.example/notes?page=2")
        self.assertEqual([(h.name, h.value) for h in host.requests[0].headers], [("accept", "application/json")])
        with self.assertRaisesRegex(tp.HttpError, r"^GET a\.example/notes answered 404: no such thing$"):
            tp.request_json("GET", "https://a.example/notes")

    def test_basic_and_header_secrets(self):
        self.assertEqual(tp.basic("me", "password"), wit_host.SecretAuth_Basic(wit_host.BasicAuth(user="me", password_field="password")))
        self.assertEqual(tp.header("x-api-key", "apiKey"), wit_host.SecretAuth_Header(wit_host.SecretHeader(name="x-api-key", field="apiKey")))

    def test_ensure_ok_names_method_host_and_path_but_not_the_query(self):
        FakeHost(self, answers=[(503, {"retry-after": "7"}, "down for maintenance")])
        with self.assertRaises(tp.HttpError) as caught:
            tp.request("GET", "https://api.example.com/notes?key=secret").ensure_ok()
        error = caught.exception
        self.assertEqual(error.status, 503)
        self.assertEqual(error.message, "GET api.example.com/notes answered 503: down for maintenance")
        self.assertEqual(error.retry_after_ms, 7000)

    def test_no_answer_is_transient_naming_the_request(self):
        FakeHost(self, answers=[Err(wit_types.PluginError_Transient("connection refused"))])
        with self.assertRaises(tp.TransientError) as caught:
            tp.request("GET", "https://api.example.com/notes")
        self.assertEqual(caught.exception.message, "GET api.example.com/notes got no answer: connection refused")

    def test_a_body_that_is_not_json_names_the_request(self):
        FakeHost(self, answers=[(200, {}, "<html>")])
        with self.assertRaisesRegex(tp.PluginError, r"^GET api\.example\.com/x answered something that is not JSON"):
            tp.request("GET", "https://api.example.com/x").json()

    def test_link_headers_as_github_sends_them(self):
        value = ('<https://api.github.com/repositories/1300192/issues?page=2>; rel="next", '
                 '<https://api.github.com/repositories/1300192/issues?page=515>; rel="last"')
        self.assertEqual(parse_link_header(value), {
            "next": "https://api.github.com/repositories/1300192/issues?page=2",
            "last": "https://api.github.com/repositories/1300192/issues?page=515",
        })
        self.assertEqual(parse_link_header('<a>; title="x, y"; rel="prev first", <b>;rel=next'),
                         {"prev": "a", "first": "a", "next": "b"})
        self.assertEqual(parse_link_header(""), {})

    def test_retry_after_in_seconds_or_as_an_http_date(self):
        now = 1445412480000 - 60_000  # a minute before Wed, 21 Oct 2015 07:28:00 GMT
        self.assertEqual(parse_retry_after_ms("120", now), 120_000)
        self.assertEqual(parse_retry_after_ms("Wed, 21 Oct 2015 07:28:00 GMT", now), 60_000)
        self.assertEqual(parse_retry_after_ms("Wednesday, 21-Oct-15 07:28:00 GMT", now), 60_000)
        self.assertEqual(parse_retry_after_ms("Wed, 21 Oct 2015 07:28:00 GMT", now + 3_600_000), 0)
        for bad in ["soon", "-5", "Wed, 32 Oct 2015 07:28:00 GMT", ""]:
            self.assertIsNone(parse_retry_after_ms(bad, now))


class Retry(unittest.TestCase):
    def test_it_retries_what_may_pass_waiting_what_the_error_asks(self):
        host = FakeHost(self)
        outcomes = [tp.HttpError(429, "slow down", retry_after_ms=1000), tp.TransientError("reset"), "done"]

        def work():
            outcome = outcomes.pop(0)
            if isinstance(outcome, Exception):
                raise outcome
            return outcome

        started = host.clock
        self.assertEqual(tp.with_retry(work, attempts=3, base_ms=100), "done")
        # 1000 ms asked for, then 200 ms of backoff (100 doubled on the second attempt).
        self.assertGreaterEqual(host.clock - started, 1200)
        self.assertLess(host.clock - started, 1300)

    def test_it_does_not_retry_other_errors_or_past_its_attempts(self):
        FakeHost(self)
        calls = []

        def not_found():
            calls.append(1)
            raise tp.HttpError(404, "GET a/b answered 404")

        with self.assertRaises(tp.HttpError):
            tp.with_retry(not_found)
        self.assertEqual(len(calls), 1)

        def always_busy():
            calls.append(1)
            raise tp.HttpError(503, "busy")

        calls.clear()
        with self.assertRaises(tp.HttpError):
            tp.with_retry(always_busy, attempts=2, base_ms=1)
        self.assertEqual(len(calls), 2)

    def test_a_wait_asked_for_over_max_wait_ms_is_not_made(self):
        host = FakeHost(self)
        started = host.clock
        with self.assertRaises(tp.HttpError):
            tp.with_retry(lambda: (_ for _ in ()).throw(tp.HttpError(429, "later", retry_after_ms=3_600_000)), max_wait_ms=2000)
        self.assertLess(host.clock - started, 100)


class Paginate(unittest.TestCase):
    def test_it_follows_the_chain_until_next_is_none(self):
        FakeHost(self)
        chain = {None: (["a", "b"], 2), 2: (["c"], 3), 3: ([], None)}
        self.assertEqual(list(tp.paginate(None, chain.__getitem__)), [["a", "b"], ["c"], []])

    def test_a_cursor_that_does_not_move_is_an_error(self):
        FakeHost(self)
        with self.assertRaisesRegex(tp.PluginError, "does not move on"):
            list(tp.paginate(1, lambda cursor: ([cursor], 1)))


class ConnectorExport(unittest.TestCase):
    def request(self, mode=wit_sync.SyncMode.INCREMENTAL, cursor='{"since": "2026-01-01T00:00:00Z"}'):
        return wit_sync.SyncRequest(mode=mode, since=None, cursor=cursor)

    def test_json_text_in_and_out(self):
        FakeHost(self)
        seen = []

        class Sync(tp.Connector):
            def next_page(self, request, token):
                seen.append((request, token))
                item = tp.upsert("documents", 7, "2026-01-02T00:00:00Z", {"title": "Seven"}, raw={"id": 7})
                return tp.Page(items=[item, tp.remove("documents", "8", "2026-01-02T00:00:00Z")],
                               checkpoint={"since": "2026-01-02T00:00:00Z"}, next={"page": 2})

        page = Sync().next_page(self.request(), '{"page": 1}')
        self.assertEqual(seen, [(tp.SyncRequest("incremental", None, {"since": "2026-01-01T00:00:00Z"}), {"page": 1})])
        first, second = page.items
        self.assertEqual((first.entity_type, first.external_id, first.operation), ("documents", "7", wit_sync.ItemOperation.UPSERT))
        self.assertEqual((json.loads(first.data), json.loads(first.raw)), ({"title": "Seven"}, {"id": 7}))
        self.assertEqual(second.operation, wit_sync.ItemOperation.DELETE)
        self.assertEqual((json.loads(page.checkpoint), json.loads(page.next)), ({"since": "2026-01-02T00:00:00Z"}, {"page": 2}))

    def test_a_last_page_without_checkpoint(self):
        FakeHost(self)

        class Sync(tp.Connector):
            def next_page(self, request, token):
                return tp.Page()

        page = Sync().next_page(self.request(mode=wit_sync.SyncMode.FULL, cursor=None), None)
        self.assertEqual((page.items, page.checkpoint, page.next), ([], None, None))

    def test_errors_reach_the_host_as_their_case(self):
        FakeHost(self)

        class Sync(tp.Connector):
            def next_page(self, request, token):
                raise tp.ConfigError("baseUrl", "must be an https URL")

        with self.assertRaises(Err) as caught:
            Sync().next_page(self.request(), None)
        self.assertEqual(caught.exception.value, wit_types.PluginError_Config(wit_types.ConfigProblem(field="baseUrl", message="must be an https URL")))

    def test_a_bug_or_a_bad_item_is_other_naming_it(self):
        FakeHost(self)

        class Buggy(tp.Connector):
            def next_page(self, request, token):
                return None + 1

        with self.assertRaises(Err) as caught:
            Buggy().next_page(self.request(), None)
        self.assertRegex(caught.exception.value.value, r"^the plugin failed: TypeError: .* \(at test_sdk\.py:\d+ in next_page\)$")

        class BadItem(tp.Connector):
            def next_page(self, request, token):
                return tp.Page(items=[tp.upsert("people", "1", "2026-01-01T00:00:00Z", {})])

        with self.assertRaises(Err) as caught:
            BadItem().next_page(self.request(), None)
        self.assertIn("item 0 (people `1`): the entity type must be one of persons", caught.exception.value.value)

        class NotJson(tp.Connector):
            def next_page(self, request, token):
                return tp.Page(items=[tp.upsert("documents", "1", "2026-01-01T00:00:00Z", {"title": object()})])

        with self.assertRaises(Err) as caught:
            NotJson().next_page(self.request(), None)
        self.assertIn("item 0 (documents `1`)'s data is not JSON", caught.exception.value.value)

    def test_an_unreadable_cursor_is_named(self):
        FakeHost(self)

        class Sync(tp.Connector):
            def next_page(self, request, token):
                return tp.Page()

        with self.assertRaises(Err) as caught:
            Sync().next_page(self.request(cursor="{oops"), None)
        self.assertIn("unreadable cursor '{oops'", caught.exception.value.value)


class ChannelExport(unittest.TestCase):
    def webhook(self, headers=(("x-token", "t"),), body=b'{"id": "d1"}', method="POST"):
        return wit_messaging.IncomingWebhook(
            method=method, url="https://hub.example/w", query="a=1&b=2",
            headers=[wit_types.Header(name=k, value=v) for k, v in headers], body=body,
            received_at="2026-01-01T00:00:00Z",
        )

    def test_verdicts_and_rejections(self):
        FakeHost(self)

        class Messaging(tp.Channel):
            headers_to_keep = ["Content-Type"]

            def verify_webhook(self, request):
                if request.method == "GET":
                    return tp.respond(200, request.query_params()["a"])
                if request.header("X-Token") != "t":
                    raise tp.WebhookRejected(401, "the x-token header does not match")
                return tp.accept(request.json()["id"])

        channel = Messaging()
        self.assertEqual(channel.verify_webhook(self.webhook()), wit_messaging.WebhookVerdict_Accept("d1"))
        self.assertEqual(channel.verify_webhook(self.webhook(method="GET")),
                         wit_messaging.WebhookVerdict_Respond(wit_messaging.WebhookResponse(status=200, content_type="text/plain", body=b"1")))
        with self.assertRaises(Err) as caught:
            channel.verify_webhook(self.webhook(headers=[("x-token", "wrong")]))
        self.assertEqual(caught.exception.value, wit_messaging.WebhookRejection(status=401, reason="the x-token header does not match"))
        with self.assertRaises(Err) as caught:
            channel.verify_webhook(self.webhook(body=b"not json"))
        self.assertEqual(caught.exception.value.status, 400)
        self.assertEqual(channel.headers_to_keep(), ["content-type"])

    def test_a_misconfigured_or_failing_verification_is_500_without_details(self):
        host = FakeHost(self)

        class Misconfigured(tp.Channel):
            def verify_webhook(self, request):
                raise tp.ConfigError("webhookToken", "is not set")

        with self.assertRaises(Err) as caught:
            Misconfigured().verify_webhook(self.webhook())
        self.assertEqual(caught.exception.value, wit_messaging.WebhookRejection(
            status=500, reason="the channel instance is misconfigured (config field `webhookToken`)"))

        class Buggy(tp.Channel):
            def verify_webhook(self, request):
                return {"token": "s3cret"}["missing"]

        with self.assertRaises(Err) as caught:
            Buggy().verify_webhook(self.webhook())
        self.assertEqual(caught.exception.value.status, 500)
        self.assertRegex(caught.exception.value.reason, r"^the channel plugin failed: KeyError \(at test_sdk\.py:\d+ in verify_webhook\)$")
        self.assertIn("KeyError: 'missing'", host.logs[-1][1])

    def test_the_defaults_refuse_webhooks_and_sending(self):
        FakeHost(self)

        class Messaging(tp.Channel):
            pass

        with self.assertRaises(Err) as caught:
            Messaging().verify_webhook(self.webhook())
        self.assertEqual(caught.exception.value.status, 404)
        self.assertEqual(json.loads(Messaging().handle_incoming(self.webhook())), [])
        with self.assertRaises(Err) as caught:
            Messaging().send_message('{"id": "x", "recipients": [], "text": "hi"}')
        self.assertEqual(caught.exception.value, wit_types.PluginError_Other("this channel does not send messages"))

    def test_events_and_sent_messages_as_json(self):
        FakeHost(self)

        class Messaging(tp.Channel):
            def handle_incoming(self, request):
                body = request.json()
                return [tp.message_event(body["id"], tp.participant("ada", "Ada"), "hello", "2026-01-01T00:00:00Z",
                                         conversation_id="c1"),
                        tp.delivery_status_event("p1", "delivered", "2026-01-01T00:00:01Z")]

            def send_message(self, message):
                return tp.sent_message(message["id"], 42, "sent", "2026-01-01T00:00:02Z")

        events = json.loads(Messaging().handle_incoming(self.webhook()))
        self.assertEqual(events, [
            {"kind": "message", "provider_message_id": "d1", "sender": {"address": "ada", "display_name": "Ada"},
             "recipients": [], "text": "hello", "sent_at": "2026-01-01T00:00:00Z", "raw": None, "conversation_id": "c1"},
            {"kind": "delivery_status", "provider_message_id": "p1", "status": "delivered", "at": "2026-01-01T00:00:01Z"},
        ])
        sent = json.loads(Messaging().send_message('{"id": "m-1", "recipients": [], "text": "hi"}'))
        self.assertEqual(sent, {"id": "m-1", "provider_message_id": "42", "status": "sent", "sent_at": "2026-01-01T00:00:02Z"})


class Time(unittest.TestCase):
    def test_rfc3339_both_ways(self):
        self.assertEqual(tp.format_time_ms(0), "1970-01-01T00:00:00.000Z")
        self.assertEqual(tp.parse_time_ms("2026-01-31T09:30:00Z"), 1769851800000)
        self.assertEqual(tp.parse_time_ms("2026-01-31T10:30:00+01:00"), 1769851800000)
        with self.assertRaises(ValueError):
            tp.parse_time_ms("2026-01-31T09:30:00")


if __name__ == "__main__":
    unittest.main()

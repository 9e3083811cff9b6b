"""A real SMTP server for the e-mail channel's tests (aiosmtpd), recording every message.

Usage: python3 smtp_sink.py <port> <output.jsonl>

Listens on 127.0.0.1:<port> and appends to the output file one JSON line per RCPT command,
{"event": "rcpt", "address", "reply"}, and one per accepted message, {"event": "data",
"mail_from", "rcpt_tos", "content"}. Recipients with "reject" in the address are refused with
550; those with "flaky" get 451 on their first RCPT and are accepted after. Runs until killed.
"""

import json
import sys
import threading

from aiosmtpd.controller import Controller


class Recorder:
    def __init__(self, output):
        self.output = output
        self.seen_flaky = set()

    def record(self, record):
        with open(self.output, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if "reject" in address:
            reply = "550 5.1.1 <%s>: Recipient address rejected: User unknown" % address
        elif "flaky" in address and address not in self.seen_flaky:
            self.seen_flaky.add(address)
            reply = "451 4.7.1 <%s>: Greylisted, try again later" % address
        else:
            envelope.rcpt_tos.append(address)
            reply = "250 OK"
        self.record({"event": "rcpt", "address": address, "reply": reply})
        return reply

    async def handle_DATA(self, server, session, envelope):
        self.record(
            {
                "event": "data",
                "mail_from": envelope.mail_from,
                "rcpt_tos": envelope.rcpt_tos,
                "content": envelope.original_content.decode("utf-8", "replace"),
            }
        )
        return "250 2.0.0 Message accepted for delivery"


def main():
    port, output = int(sys.argv[1]), sys.argv[2]
    controller = Controller(Recorder(output), hostname="127.0.0.1", port=port)
    controller.start()
    print("listening on 127.0.0.1:%d" % port, flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()

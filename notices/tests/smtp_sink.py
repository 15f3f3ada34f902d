"""A local SMTP server for the mail tests (aiosmtpd).

Usage: python3 smtp_sink.py OUTDIR
Listens on 127.0.0.1 on a free port, prints the port on stdout, and for each
message received writes OUTDIR/N/ with: envelope_to.txt, to.txt, from.txt,
subject.txt (decoded), body.txt (decoded text part), attachment_name.txt,
attachment.bin, raw.eml — then OUTDIR/N/done.
"""
import asyncio
import os
import sys
from email import policy
from email.parser import BytesParser

from aiosmtpd.smtp import SMTP

OUT = sys.argv[1]
COUNT = 0


class Handler:
    async def handle_DATA(self, server, session, envelope):
        global COUNT
        COUNT += 1
        d = os.path.join(OUT, str(COUNT))
        os.makedirs(d, exist_ok=True)
        raw = envelope.original_content or envelope.content
        msg = BytesParser(policy=policy.default).parsebytes(raw)

        def w(name, data):
            mode = "wb" if isinstance(data, bytes) else "w"
            kw = {} if isinstance(data, bytes) else {"encoding": "utf-8", "newline": ""}
            with open(os.path.join(d, name), mode, **kw) as f:
                f.write(data)

        w("raw.eml", raw)
        w("envelope_to.txt", "\n".join(envelope.rcpt_tos))
        w("to.txt", str(msg["To"]))
        w("from.txt", str(msg["From"]))
        w("subject.txt", str(msg["Subject"]))
        body = msg.get_body(preferencelist=("plain",))
        w("body.txt", body.get_content() if body is not None else "")
        for part in msg.iter_attachments():
            w("attachment_name.txt", part.get_filename() or "")
            w("attachment_type.txt", part.get_content_type())
            w("attachment.bin", part.get_payload(decode=True))
        w("done", "")
        return "250 OK"


async def main():
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(Handler(), hostname="localhost"), "127.0.0.1", 0
    )
    print(server.sockets[0].getsockname()[1], flush=True)
    await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())

#!/usr/bin/python3
"""SMTP sink for casegate's tests: a real SMTP server that keeps every message.

Run with Debian's /usr/bin/python3 (package python3-aiosmtpd).

    smtp_sink.py --dir SMTP_DIR --port P [--tls-port P2 --cert CERT --key KEY]
                 [--host 127.0.0.1] [--log FILE] [--introspect-url URL]

Storage
    For every accepted recipient of a message, the DATA exactly as received
    (CRLF line endings, dot-unstuffed, no header added) is written atomically
    (temporary file, then rename) to

        SMTP_DIR/<recipient lower-cased>/<monotonic ns, 20 digits>-<seq, 8 digits>.eml

    next to a sidecar with the same stem, `.json`:
        {"mail_from": ..., "rcpt_to": ..., "rcpt_tos": [...], "mail_options": [...],
         "rcpt_options": [...], "peer": ..., "tls": bool, "auth_user": ... or null,
         "accepted_at_ns": wall-clock ns when the DATA was complete, before the 250}
    The sidecar is renamed into place BEFORE the .eml, so whoever sees an .eml
    can read its .json. Sorting the .eml names sorts by arrival (CLOCK_MONOTONIC
    is system-wide, so the order holds across restarts of the sink).
    Temporary files start with "." and never end in ".eml".

Failure injection (per recipient, so parallel tests do not interfere)
    If SMTP_DIR/rules/<recipient lower-cased> exists, its content is
    "CODE [COUNT]", e.g. "451" or "554" or "451 2". RCPT TO for that recipient is
    answered with CODE (451 -> "451 4.3.0 ...", 554 -> "554 5.7.1 ...", other
    codes get a generic text). With COUNT, only the next COUNT RCPTs for that
    recipient fail; the file is then removed. Without COUNT it fails until the
    file is removed.

Features: 8BITMIME, SMTPUTF8, SIZE 200 MB, STARTTLS on the plain port and an
implicit-TLS port when a certificate is given, AUTH PLAIN/LOGIN (not required;
any user name with password "secret"; allowed without TLS), and AUTH XOAUTH2
with an access token that the token server (scripts/token_server.py) says, by RFC 7662
introspection at --introspect-url, is active for that user. A refused token gets the
XOAUTH2 error challenge (334 + base64 JSON), then 535 after the client's empty line.
"""

import argparse
import asyncio
import base64
import urllib.parse
import urllib.request
import json
import logging
import os
import signal
import ssl
import sys
import time

from aiosmtpd.smtp import MISSING, SMTP, AuthResult, LoginPassword

PASSWORD = b"secret"
DATA_SIZE_LIMIT = 200 * 1024 * 1024

log = logging.getLogger("smtp_sink")

CODE_TEXT = {
    "421": "421 4.3.0 Service not available (injected)",
    "450": "450 4.2.0 Mailbox unavailable (injected)",
    "451": "451 4.3.0 Temporary failure (injected)",
    "452": "452 4.3.1 Insufficient storage (injected)",
    "550": "550 5.1.1 Mailbox unavailable (injected)",
    "552": "552 5.3.4 Message too big (injected)",
    "553": "553 5.1.3 Bad address (injected)",
    "554": "554 5.7.1 Rejected (injected)",
}


def safe_name(address: str) -> str:
    """Directory / rule file name for a recipient address."""
    name = address.strip().lower().replace("/", "_").replace("\x00", "_")
    if name.startswith(".") or not name:
        name = "_" + name
    return name


class Sink:
    def __init__(self, root: str, introspect_url=None):
        self.root = root
        self.introspect_url = introspect_url
        self.rules = os.path.join(root, "rules")
        os.makedirs(self.rules, exist_ok=True)
        self.seq = 0
        self.count = 0

    def _rule_for(self, rcpt: str):
        path = os.path.join(self.rules, safe_name(rcpt))
        try:
            with open(path, "r", encoding="utf-8") as f:
                text = f.read().split()
        except FileNotFoundError:
            return None
        except OSError as e:
            log.warning("cannot read rule %s: %s", path, e)
            return None
        if not text:
            return None
        code = text[0]
        if len(code) != 3 or not code.isdigit() or code[0] not in "45":
            log.warning("ignoring bad rule %r in %s", text, path)
            return None
        if len(text) >= 2 and text[1].isdigit():
            left = int(text[1])
            if left <= 0:
                self._remove(path)
                return None
            left -= 1
            if left == 0:
                self._remove(path)
            else:
                tmp = path + ".tmp"
                with open(tmp, "w", encoding="utf-8") as f:
                    f.write(f"{code} {left}\n")
                os.replace(tmp, path)
        return CODE_TEXT.get(code, f"{code} {code[0]}.0.0 Injected failure")

    @staticmethod
    def _remove(path):
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass

    async def auth_XOAUTH2(self, server, args):
        """AUTH XOAUTH2 [initial response]: user=U^Aauth=Bearer T^A^A, checked by introspection."""
        try:
            if len(args) >= 2:
                raw = base64.b64decode(args[1], validate=True)
            else:
                raw = await server.challenge_auth("", encode_to_b64=False)
                if raw is MISSING:
                    return AuthResult(success=False, handled=True)
            text = raw.decode("utf-8")
            fields = dict(f.split("=", 1) for f in text.split("\x01") if "=" in f)
            user = fields["user"]
            token = fields["auth"].split(" ", 1)[1]
        except Exception:
            await server.push("501 5.5.2 Cannot decode XOAUTH2 response")
            return AuthResult(success=False, handled=True)
        loop = asyncio.get_running_loop()
        ok = await loop.run_in_executor(None, self._token_user_ok, token, user)
        if ok:
            return AuthResult(success=True, auth_data=user)
        # Google's and Microsoft's way: an error challenge, the client sends an empty
        # line, then the failure.
        err = base64.b64encode(json.dumps({"status": "401", "schemes": "bearer"}).encode()).decode()
        await server.challenge_auth(err, encode_to_b64=False)
        await server.push("535 5.7.8 Username and Password not accepted (XOAUTH2)")
        return AuthResult(success=False, handled=True)

    def _token_user_ok(self, token, user):
        if not self.introspect_url:
            return False
        url = urllib.parse.urlsplit(self.introspect_url)
        plain = url._replace(netloc=f"{url.hostname}:{url.port}").geturl()
        req = urllib.request.Request(plain, data=urllib.parse.urlencode({"token": token}).encode())
        cred = base64.b64encode(f"{url.username}:{url.password}".encode()).decode()
        req.add_header("Authorization", "Basic " + cred)
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                info = json.load(r)
        except Exception as e:
            log.warning("introspection failed: %s", e)
            return False
        return bool(info.get("active")) and info.get("username", "").lower() == user.lower()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        reply = self._rule_for(address)
        if reply is not None:
            log.info("RCPT %s -> %s", address, reply)
            return reply
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.append(rcpt_options)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        accepted_at_ns = time.time_ns()
        data = envelope.original_content
        if data is None:
            data = envelope.content
        if isinstance(data, str):
            data = data.encode("utf-8", "surrogateescape")
        auth_user = None
        if session.auth_data is not None:
            auth_user = session.auth_data
            if isinstance(auth_user, bytes):
                auth_user = auth_user.decode("utf-8", "replace")
            auth_user = str(auth_user)
        meta_common = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": list(envelope.rcpt_tos),
            "mail_options": list(envelope.mail_options or []),
            "rcpt_options": [list(o or []) for o in envelope.rcpt_options],
            "peer": list(session.peer) if session.peer else None,
            "tls": session.ssl is not None or server.transport.get_extra_info("sslcontext") is not None,
            "auth_user": auth_user,
            "accepted_at_ns": accepted_at_ns,
        }
        for rcpt in envelope.rcpt_tos:
            d = os.path.join(self.root, safe_name(rcpt))
            os.makedirs(d, exist_ok=True)
            self.seq += 1
            stem = f"{time.monotonic_ns():020d}-{self.seq:08d}"
            meta = dict(meta_common, rcpt_to=rcpt)
            self._atomic_write(d, stem + ".json", json.dumps(meta, ensure_ascii=False).encode("utf-8"))
            self._atomic_write(d, stem + ".eml", data)
        self.count += 1
        log.info("DATA from=%s to=%s bytes=%d", envelope.mail_from, envelope.rcpt_tos, len(data))
        return "250 2.0.0 OK queued"

    @staticmethod
    def _atomic_write(d, name, data: bytes):
        tmp = os.path.join(d, "." + name + ".tmp")
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, os.path.join(d, name))


def authenticator(server, session, envelope, mechanism, auth_data):
    if isinstance(auth_data, LoginPassword) and auth_data.password == PASSWORD:
        return AuthResult(success=True, auth_data=auth_data.login)
    return AuthResult(success=False, handled=False)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--tls-port", type=int, default=0)
    ap.add_argument("--cert")
    ap.add_argument("--key")
    ap.add_argument("--log")
    ap.add_argument("--introspect-url")
    args = ap.parse_args()

    logging.basicConfig(
        filename=args.log,
        level=logging.INFO,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    # aiosmtpd logs every command at INFO/DEBUG: too much at hundreds of mails/s.
    logging.getLogger("mail.log").setLevel(logging.WARNING)

    handler = Sink(os.path.abspath(args.dir), args.introspect_url)

    ctx = None
    if args.cert:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(args.cert, args.key or args.cert)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE

    def factory(tls_context):
        def make():
            return SMTP(
                handler,
                data_size_limit=DATA_SIZE_LIMIT,
                enable_SMTPUTF8=True,
                decode_data=False,
                hostname="sink.localhost",
                ident="casegate-test-sink",
                tls_context=tls_context,
                require_starttls=False,
                auth_required=False,
                auth_require_tls=False,
                authenticator=authenticator,
                timeout=120,
                loop=loop,
            )
        return make

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    servers = [
        loop.run_until_complete(
            loop.create_server(factory(ctx), args.host, args.port, reuse_address=True)
        )
    ]
    if args.tls_port and ctx is not None:
        servers.append(
            loop.run_until_complete(
                loop.create_server(factory(None), args.host, args.tls_port, ssl=ctx, reuse_address=True)
            )
        )
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    log.info("listening on %s:%d (tls port %s), dir %s", args.host, args.port, args.tls_port or "-", args.dir)
    try:
        loop.run_until_complete(stop.wait())
    finally:
        for s in servers:
            s.close()
        log.info("stopping after %d messages", handler.count)
        loop.close()


if __name__ == "__main__":
    sys.exit(main())

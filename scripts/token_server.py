#!/usr/bin/python3
"""OAuth2 token server for casegate's tests: a real authorization server, no provider.

    token_server.py --port P --state DIR [--host 127.0.0.1] [--log FILE]

Standard library only. State (clients, grants, issued tokens) is kept in memory and
written atomically to DIR/state.json after every change, so a restart keeps it.

Endpoints (form-encoded POST bodies, JSON answers, as the RFCs say):
    POST /token        RFC 6749 token endpoint. Grants: refresh_token (the refresh token
                       ROTATES: every use returns a new one and the old one stops
                       working), client_credentials, authorization_code (with PKCE S256,
                       RFC 7636), urn:ietf:params:oauth:grant-type:device_code (RFC 8628),
                       urn:ietf:params:oauth:grant-type:jwt-bearer (RFC 7523, Google
                       service accounts: an RS256 JWT whose iss is a client registered
                       with a public_key, checked with the openssl command; sub is the
                       mailbox, aud this token endpoint).
                       Client authentication: HTTP Basic or client_id/client_secret in
                       the body. Errors: invalid_client (401), invalid_grant,
                       unsupported_grant_type, invalid_scope, authorization_pending.
    POST /introspect   RFC 7662, HTTP Basic "dovecot:introspect" (what Dovecot's
                       introspection_url carries): {"active": true, "username", "scope",
                       "exp", "client_id"} or {"active": false}.
    POST /revoke       RFC 7009: token=...; revokes a refresh token (and the access
                       tokens issued from it) or an access token.
    POST /device       RFC 8628 device authorization: device_code, user_code, ...
    GET  /authorize    authorization endpoint (response_type=code, PKCE S256 required).
                       Headless: `login_hint=USER` signs USER in and approves at once;
                       answers 302 to redirect_uri?code=...&state=...
Test controls (not part of any RFC; the tests drive the "user" side with them):
    POST /admin/client   client_id, client_secret, [user] (the mailbox of the app's
                         client_credentials grant), [access_ttl] seconds (default 3),
                         [scope] allowed scopes (space separated; default any),
                         [public_key] PEM (a service account: client_id is its email)
    POST /admin/grant    client_id, user, scope -> {"refresh_token": ...}: what a
                         user's first sign-in yields
    POST /admin/approve  user_code, user: the user approves a device code
    POST /admin/revoke-user  user: revokes every token of that user
    POST /admin/revoke-access  user: revokes that user's access tokens only (the
                         refresh token still works: a client must fetch a new one)
    GET  /admin/issued   every token ever issued (access and refresh), to check logs
    GET  /health
Access tokens live `access_ttl` seconds (a few, so tests see them expire).
"""

import argparse
import base64
import hashlib
import json
import logging
import os
import secrets
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

INTROSPECT_USER = "dovecot"
INTROSPECT_PASSWORD = "introspect"
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"

log = logging.getLogger("token_server")


class State:
    def __init__(self, path):
        self.path = path
        self.lock = threading.Lock()
        self.data = {
            "clients": {},   # client_id -> {secret, user, access_ttl, scope}
            "refresh": {},   # token -> {client_id, user, scope, active}
            "access": {},    # token -> {client_id, user, scope, exp, refresh, active}
            "codes": {},     # authorization code -> {client_id, user, scope, redirect_uri, challenge, used}
            "devices": {},   # device_code -> {client_id, user_code, scope, user, exp, used}
            "issued": [],    # every token issued
        }
        try:
            with open(path, "r", encoding="utf-8") as f:
                self.data.update(json.load(f))
        except FileNotFoundError:
            pass

    def save(self):
        tmp = self.path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(self.data, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)

    def issue(self, client_id, user, scope, refresh=True, parent=None):
        """A fresh access token (and a refresh token unless `refresh` is False)."""
        client = self.data["clients"][client_id]
        ttl = int(client.get("access_ttl", 3))
        access = "at-" + secrets.token_urlsafe(24)
        out = {"access_token": access, "token_type": "Bearer", "expires_in": ttl, "scope": scope}
        rt = None
        if refresh:
            rt = "rt-" + secrets.token_urlsafe(24)
            self.data["refresh"][rt] = {"client_id": client_id, "user": user, "scope": scope, "active": True}
            self.data["issued"].append(rt)
            out["refresh_token"] = rt
        self.data["access"][access] = {
            "client_id": client_id, "user": user, "scope": scope,
            "exp": time.time() + ttl, "refresh": rt or parent, "active": True,
        }
        self.data["issued"].append(access)
        return out


def verify_rs256(public_pem, data, signature):
    """RSASSA-PKCS1-v1_5 with SHA-256, checked by the openssl command (no RSA in the stdlib)."""
    import subprocess
    import tempfile
    with tempfile.TemporaryDirectory() as d:
        paths = {}
        for name, content in (("pub.pem", public_pem.encode()), ("data", data), ("sig", signature)):
            paths[name] = os.path.join(d, name)
            with open(paths[name], "wb") as fh:
                fh.write(content)
        r = subprocess.run(
            ["openssl", "dgst", "-sha256", "-verify", paths["pub.pem"], "-signature", paths["sig"], paths["data"]],
            capture_output=True,
        )
        return r.returncode == 0


class Handler(BaseHTTPRequestHandler):
    server_version = "casegate-test-token-server"
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        # The path only: query strings and bodies carry codes and tokens.
        log.info("%s %s", self.command, self.path.split("?")[0])

    # ------------------------------------------------------------ plumbing
    def reply(self, status, body, headers=None):
        data = json.dumps(body).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Cache-Control", "no-store")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def error(self, code, description, status=400):
        headers = {"WWW-Authenticate": 'Basic realm="token"'} if status == 401 else None
        self.reply(status, {"error": code, "error_description": description}, headers)

    def form(self):
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n).decode("utf-8") if n else ""
        return {k: v[0] for k, v in urllib.parse.parse_qs(raw, keep_blank_values=True).items()}

    def basic(self):
        h = self.headers.get("Authorization", "")
        if not h.lower().startswith("basic "):
            return None
        try:
            user, _, pw = base64.b64decode(h[6:]).decode("utf-8").partition(":")
        except Exception:
            return None
        return urllib.parse.unquote_plus(user), urllib.parse.unquote_plus(pw)

    @property
    def st(self):
        return self.server.state

    # ------------------------------------------------------------ routing
    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        q = {k: v[0] for k, v in urllib.parse.parse_qs(url.query).items()}
        if url.path == "/health":
            return self.reply(200, {"ok": True})
        if url.path == "/authorize":
            return self.authorize(q)
        if url.path == "/admin/issued":
            with self.st.lock:
                return self.reply(200, {"issued": list(self.st.data["issued"])})
        self.error("not_found", url.path, 404)

    def do_POST(self):
        path = urllib.parse.urlsplit(self.path).path
        f = self.form()
        routes = {
            "/token": self.token,
            "/introspect": self.introspect,
            "/revoke": self.revoke,
            "/device": self.device,
            "/admin/client": self.admin_client,
            "/admin/grant": self.admin_grant,
            "/admin/approve": self.admin_approve,
            "/admin/revoke-user": self.admin_revoke_user,
            "/admin/revoke-access": self.admin_revoke_access,
        }
        route = routes.get(path)
        if route is None:
            return self.error("not_found", path, 404)
        with self.st.lock:
            route(f)
            self.st.save()

    # ------------------------------------------------------------ OAuth2
    def client(self, f):
        """The authenticated client id, or None after answering invalid_client."""
        creds = self.basic() or (f.get("client_id"), f.get("client_secret"))
        cid, secret = creds
        client = self.st.data["clients"].get(cid or "")
        if client is None:
            self.error("invalid_client", "unknown client", 401)
            return None
        # Public clients (no secret registered) authenticate by id alone (device, PKCE).
        if client.get("secret") and client["secret"] != secret:
            self.error("invalid_client", "client authentication failed", 401)
            return None
        return cid

    def scope_ok(self, cid, scope):
        allowed = self.st.data["clients"][cid].get("scope")
        if not allowed:
            return True
        return set(scope.split()) <= set(allowed.split())

    def token(self, f):
        grant = f.get("grant_type", "")
        if grant == JWT_GRANT:
            return self.jwt_bearer(f)
        cid = self.client(f)
        if cid is None:
            return
        d = self.st.data
        if grant == "refresh_token":
            rt = d["refresh"].get(f.get("refresh_token", ""))
            if rt is None or not rt["active"] or rt["client_id"] != cid:
                return self.error("invalid_grant", "the refresh token is invalid, expired or revoked")
            rt["active"] = False  # rotation: the old one is used up
            scope = f.get("scope") or rt["scope"]
            return self.reply(200, self.st.issue(cid, rt["user"], scope))
        if grant == "client_credentials":
            user = d["clients"][cid].get("user")
            if not user:
                return self.error("unauthorized_client", "this client has no mailbox of its own")
            scope = f.get("scope", "")
            if not self.scope_ok(cid, scope):
                return self.error("invalid_scope", "scope not granted to this client")
            return self.reply(200, self.st.issue(cid, user, scope, refresh=False))
        if grant == "authorization_code":
            code = d["codes"].get(f.get("code", ""))
            if code is None or code["used"] or code["client_id"] != cid:
                return self.error("invalid_grant", "unknown or used authorization code")
            if code["redirect_uri"] != f.get("redirect_uri"):
                return self.error("invalid_grant", "redirect_uri does not match")
            verifier = f.get("code_verifier", "")
            digest = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
            if digest != code["challenge"]:
                return self.error("invalid_grant", "PKCE verification failed")
            code["used"] = True
            return self.reply(200, self.st.issue(cid, code["user"], code["scope"]))
        if grant == DEVICE_GRANT:
            dev = d["devices"].get(f.get("device_code", ""))
            if dev is None or dev["used"] or dev["client_id"] != cid:
                return self.error("invalid_grant", "unknown device code")
            if time.time() > dev["exp"]:
                return self.error("expired_token", "the device code expired")
            if dev["user"] is None:
                return self.error("authorization_pending", "waiting for the user")
            dev["used"] = True
            return self.reply(200, self.st.issue(cid, dev["user"], dev["scope"]))
        self.error("unsupported_grant_type", grant)

    def jwt_bearer(self, f):
        """RFC 7523 section 2.1: the signed assertion is the client's credential."""
        def b64d(part):
            return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
        try:
            head_b64, claims_b64, sig_b64 = f.get("assertion", "").split(".")
            header = json.loads(b64d(head_b64))
            claims = json.loads(b64d(claims_b64))
            signature = b64d(sig_b64)
        except Exception:
            return self.error("invalid_grant", "the assertion is not a JWT")
        client = self.st.data["clients"].get(claims.get("iss", ""))
        if client is None or not client.get("public_key"):
            return self.error("invalid_grant", "unknown issuer")
        if header.get("alg") != "RS256":
            return self.error("invalid_grant", "alg must be RS256")
        if not verify_rs256(client["public_key"], f"{head_b64}.{claims_b64}".encode(), signature):
            return self.error("invalid_grant", "bad signature")
        now = time.time()
        token_url = f"http://{self.headers.get('Host', '')}/token"
        if claims.get("aud") != token_url:
            return self.error("invalid_grant", "wrong audience")
        if not (claims.get("iat", 0) <= now + 60 and now < claims.get("exp", 0) <= now + 3700):
            return self.error("invalid_grant", "expired or not yet valid")
        if not claims.get("sub"):
            return self.error("invalid_grant", "no subject")
        self.reply(200, self.st.issue(claims["iss"], claims["sub"], claims.get("scope", ""), refresh=False))

    def introspect(self, f):
        if self.basic() != (INTROSPECT_USER, INTROSPECT_PASSWORD):
            return self.error("invalid_client", "introspection needs credentials", 401)
        at = self.st.data["access"].get(f.get("token", ""))
        if at is None or not at["active"] or time.time() > at["exp"]:
            # RFC 7662: a refused token is a 200 with active=false.
            return self.reply(200, {"active": False})
        rt = self.st.data["refresh"].get(at["refresh"] or "")
        if rt is not None and rt.get("revoked"):
            return self.reply(200, {"active": False})
        self.reply(200, {
            "active": True, "username": at["user"], "scope": at["scope"],
            "client_id": at["client_id"], "exp": int(at["exp"]), "token_type": "Bearer",
        })

    def revoke(self, f):
        tok = f.get("token", "")
        d = self.st.data
        if tok in d["refresh"]:
            d["refresh"][tok]["active"] = False
            d["refresh"][tok]["revoked"] = True
        if tok in d["access"]:
            d["access"][tok]["active"] = False
        self.reply(200, {})

    def device(self, f):
        cid = self.client(f)
        if cid is None:
            return
        dc = "dc-" + secrets.token_urlsafe(24)
        uc = "-".join(secrets.token_hex(2).upper() for _ in range(2))
        self.st.data["devices"][dc] = {
            "client_id": cid, "user_code": uc, "scope": f.get("scope", ""),
            "user": None, "exp": time.time() + 600, "used": False,
        }
        host = self.headers.get("Host", "127.0.0.1")
        self.reply(200, {
            "device_code": dc, "user_code": uc,
            "verification_uri": f"http://{host}/device/verify",
            "expires_in": 600, "interval": 1,
        })

    def authorize(self, q):
        with self.st.lock:
            cid = q.get("client_id", "")
            if cid not in self.st.data["clients"]:
                return self.error("invalid_client", "unknown client")
            if q.get("response_type") != "code":
                return self.error("unsupported_response_type", "only code")
            if q.get("code_challenge_method") != "S256" or not q.get("code_challenge"):
                return self.error("invalid_request", "PKCE S256 is required")
            redirect = q.get("redirect_uri", "")
            host = urllib.parse.urlsplit(redirect).hostname
            if host not in ("127.0.0.1", "localhost", "::1"):
                return self.error("invalid_request", "only loopback redirects")
            user = q.get("login_hint")
            if not user:
                return self.error("login_required", "headless test server: give login_hint=USER")
            code = "ac-" + secrets.token_urlsafe(24)
            self.st.data["codes"][code] = {
                "client_id": cid, "user": user, "scope": q.get("scope", ""),
                "redirect_uri": redirect, "challenge": q["code_challenge"], "used": False,
            }
            self.st.data["issued"].append(code)
            self.st.save()
        params = {"code": code}
        if "state" in q:
            params["state"] = q["state"]
        sep = "&" if "?" in redirect else "?"
        self.send_response(302)
        self.send_header("Location", redirect + sep + urllib.parse.urlencode(params))
        self.send_header("Content-Length", "0")
        self.end_headers()

    # ------------------------------------------------------------ test controls
    def admin_client(self, f):
        cid = f["client_id"]
        self.st.data["clients"][cid] = {
            "secret": f.get("client_secret", ""), "user": f.get("user"),
            "access_ttl": int(f.get("access_ttl", 3)), "scope": f.get("scope", ""),
            "public_key": f.get("public_key", ""),
        }
        self.reply(200, {"client_id": cid})

    def admin_grant(self, f):
        cid = f.get("client_id", "")
        if cid not in self.st.data["clients"]:
            return self.error("invalid_client", "unknown client")
        out = self.st.issue(cid, f["user"], f.get("scope", ""))
        self.reply(200, {"refresh_token": out["refresh_token"]})

    def admin_approve(self, f):
        for dev in self.st.data["devices"].values():
            if dev["user_code"] == f.get("user_code"):
                dev["user"] = f["user"]
                return self.reply(200, {})
        self.error("invalid_request", "unknown user code", 404)

    def admin_revoke_access(self, f):
        for at in self.st.data["access"].values():
            if at["user"] == f.get("user"):
                at["active"] = False
        self.reply(200, {})

    def admin_revoke_user(self, f):
        user = f.get("user")
        for rt in self.st.data["refresh"].values():
            if rt["user"] == user:
                rt["active"] = False
                rt["revoked"] = True
        for at in self.st.data["access"].values():
            if at["user"] == user:
                at["active"] = False
        self.reply(200, {})


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--state", required=True)
    ap.add_argument("--log")
    args = ap.parse_args()
    logging.basicConfig(filename=args.log, level=logging.INFO,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    os.makedirs(args.state, exist_ok=True)
    server = ThreadingHTTPServer((args.host, args.port), Handler)
    server.daemon_threads = True
    server.state = State(os.path.join(args.state, "state.json"))
    log.info("listening on %s:%d", args.host, args.port)
    import signal
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    try:
        server.serve_forever()
    finally:
        server.server_close()


if __name__ == "__main__":
    sys.exit(main())

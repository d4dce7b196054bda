"""A small but real OpenID Connect provider for the tests, built from Authlib's server side.

Real HTTP, state in memory: discovery, ``/jwks``, ``/authorize`` (an HTML form with user name
and password), ``/token``, ``/userinfo``; ID tokens signed RS256 with a key made at start.
Strict where a client could get away with less: PKCE with S256 and a ``nonce`` are required;
a code works once, for a minute, for the client and redirect URI it was issued to.

Users come from a JSON file, ``{"name": {"password": ..., "groups": [...]}}`` (clear-text
passwords: tests only). Attributes that make it misbehave on purpose, for the client to refuse:

* ``claims``: merged over the ID token's claims last (``{"aud": "other-app"}``, ``{"exp": 1}``,
  ``{"iss": ...}``, ``{"nonce": ...}``);
* ``foreign_key``: sign the ID token with a key that ``/jwks`` does not publish;
* ``groups_in_id_token: false``: the groups only in ``/userinfo`` (as Okta does by default).

``python tests/oidc_provider.py --port 0 --users FILE --client-id ID --client-secret S
--redirect-uri URI`` prints ``listening on ISSUER`` (:class:`ProviderProcess` runs it so).
"""
from __future__ import annotations

import argparse
import contextvars
import hmac
import json
import logging
import re
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

from authlib.integrations.flask_oauth2 import AuthorizationServer, ResourceProtector, current_token
from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749 import ClientMixin, TokenMixin, grants
from authlib.oauth2.rfc6749.errors import InvalidRequestError
from authlib.oauth2.rfc6750 import BearerTokenValidator
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oidc.core import UserInfo
from authlib.oidc.core.grants import OpenIDCode
from authlib.oidc.core.models import AuthorizationCodeMixin
from flask import Flask, Response, jsonify, request
from joserfc.jwk import KeySet, RSAKey
from markupsafe import escape

CODE_LIFETIME = 60
ID_TOKEN_LIFETIME = 300
SCOPES = ("openid", "profile", "email", "groups")


@dataclass(frozen=True)
class User:
    name: str
    password: str
    groups: list | str = field(default_factory=list)
    claims: dict = field(default_factory=dict)
    foreign_key: bool = False
    groups_in_id_token: bool = True

    @classmethod
    def from_json(cls, name: str, data: dict) -> User:
        return cls(name=name, password=data["password"], groups=data.get("groups", []),
                   claims=data.get("claims", {}), foreign_key=bool(data.get("foreign_key")),
                   groups_in_id_token=data.get("groups_in_id_token", True))

    def userinfo(self, with_groups: bool = True) -> UserInfo:
        info = UserInfo(sub=f"sub-{self.name}", preferred_username=self.name, name=self.name.title(),
                        email=f"{self.name}@example.test")
        if with_groups:
            info["groups"] = self.groups
        return info


@dataclass(frozen=True)
class Client(ClientMixin):
    client_id: str
    client_secret: str
    redirect_uris: tuple[str, ...]

    def get_client_id(self):
        return self.client_id

    def get_default_redirect_uri(self):
        return self.redirect_uris[0]

    def get_allowed_scope(self, scope):
        return " ".join(s for s in (scope or "").split() if s in SCOPES)

    def check_redirect_uri(self, redirect_uri):
        return redirect_uri in self.redirect_uris   # exact match, as real providers do

    def check_client_secret(self, client_secret):
        return hmac.compare_digest(client_secret.encode(), self.client_secret.encode())

    def check_endpoint_auth_method(self, method, endpoint):
        return method in ("client_secret_basic", "client_secret_post") if endpoint == "token" else True

    def check_response_type(self, response_type):
        return response_type == "code"

    def check_grant_type(self, grant_type):
        return grant_type == "authorization_code"


@dataclass
class Code(AuthorizationCodeMixin):
    code: str
    client_id: str
    redirect_uri: str
    scope: str
    user: str
    nonce: str | None
    code_challenge: str | None
    code_challenge_method: str | None
    auth_time: int
    expires_at: float

    def get_redirect_uri(self):
        return self.redirect_uri

    def get_scope(self):
        return self.scope

    def get_nonce(self):
        return self.nonce

    def get_auth_time(self):
        return self.auth_time


@dataclass
class Token(TokenMixin):
    client_id: str
    user: str
    scope: str
    expires_at: float

    def get_scope(self):
        return self.scope

    def is_expired(self):
        return time.time() >= self.expires_at

    def is_revoked(self):
        return False


class Provider:
    """The provider's state: keys, users, client, and the codes and tokens it issued."""

    def __init__(self, issuer: str, users: dict[str, User], client: Client) -> None:
        self.issuer = issuer.rstrip("/")
        self.users = users
        self.client = client
        self.key = RSAKey.generate_key(2048, parameters={"kid": "test-key", "use": "sig", "alg": "RS256"})
        # signs the ID tokens of ``foreign_key`` users; never published
        self.foreign = RSAKey.generate_key(2048, parameters={"kid": "test-key", "use": "sig", "alg": "RS256"})
        self.codes: dict[str, Code] = {}
        self.tokens: dict[str, Token] = {}
        self.nonces: set[str] = set()
        self.lock = threading.Lock()


class StrictCodeChallenge(CodeChallenge):
    """PKCE with S256 for every client, confidential ones too (RFC 9700 recommends it)."""

    def validate_code_challenge(self, grant, redirect_uri):
        data = grant.request.payload.data
        if not data.get("code_challenge") or data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("This provider requires PKCE with code_challenge_method=S256.")
        super().validate_code_challenge(grant, redirect_uri)


class CodeGrant(grants.AuthorizationCodeGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]

    @property
    def provider(self) -> Provider:
        return self.server.provider

    def save_authorization_code(self, code, request):
        data = request.payload.data
        with self.provider.lock:
            self.provider.codes[code] = Code(
                code=code, client_id=request.client.get_client_id(), redirect_uri=request.payload.redirect_uri,
                scope=request.scope, user=request.user.name, nonce=data.get("nonce"),
                code_challenge=data.get("code_challenge"), code_challenge_method=data.get("code_challenge_method"),
                auth_time=int(time.time()), expires_at=time.time() + CODE_LIFETIME)
            self.provider.nonces.add(data.get("nonce"))

    def query_authorization_code(self, code, client):
        item = self.provider.codes.get(code)
        if item and item.client_id == client.get_client_id() and time.time() < item.expires_at:
            return item
        return None

    def delete_authorization_code(self, authorization_code):
        # a code works once: a replayed one is answered invalid_grant
        with self.provider.lock:
            self.provider.codes.pop(authorization_code.code, None)

    def authenticate_user(self, authorization_code):
        return self.provider.users.get(authorization_code.user)


_signing_key: contextvars.ContextVar = contextvars.ContextVar("signing_key")


class OpenIDConnect(OpenIDCode):
    def __init__(self, provider: Provider) -> None:
        super().__init__(require_nonce=True)
        self.provider = provider

    def exists_nonce(self, nonce, request):
        # a nonce a code was already issued for is a replayed authorization request (the form
        # validates the request twice, on display and on submit, so it is not marked here)
        return nonce in self.provider.nonces

    def resolve_client_private_key(self, client):
        return _signing_key.get()

    def get_client_algorithm(self, client):
        return "RS256"

    def get_encode_header(self, client):
        return {"alg": "RS256", "kid": _signing_key.get().kid}

    def get_client_claims(self, client):
        now = int(time.time())
        return {"iss": self.provider.issuer, "aud": [client.get_client_id()], "iat": now,
                "exp": now + ID_TOKEN_LIFETIME}

    def generate_user_info(self, user, scope):
        info = user.userinfo(with_groups=user.groups_in_id_token)
        info.update(user.claims)   # the test's deliberate faults go over everything else
        return info

    def encode_id_token(self, token, request):
        _signing_key.set(self.provider.foreign if request.user.foreign_key else self.provider.key)
        return super().encode_id_token(token, request)


def create_app(provider: Provider) -> Flask:
    app = Flask("oidc_provider")
    server = AuthorizationServer(app, query_client=lambda cid: provider.client if cid == provider.client.client_id else None,
                                 save_token=lambda token, req: _save_token(provider, token, req))
    server.provider = provider
    server.register_grant(CodeGrant, [StrictCodeChallenge(required=True), OpenIDConnect(provider)])

    class Validator(BearerTokenValidator):
        def authenticate_token(self, token_string):
            return provider.tokens.get(token_string)

    require_oauth = ResourceProtector()
    require_oauth.register_token_validator(Validator())
    issuer = provider.issuer

    @app.get("/.well-known/openid-configuration")
    def discovery():
        return jsonify(
            issuer=issuer, authorization_endpoint=f"{issuer}/authorize", token_endpoint=f"{issuer}/token",
            userinfo_endpoint=f"{issuer}/userinfo", jwks_uri=f"{issuer}/jwks",
            response_types_supported=["code"], grant_types_supported=["authorization_code"],
            subject_types_supported=["public"], id_token_signing_alg_values_supported=["RS256"],
            scopes_supported=list(SCOPES), code_challenge_methods_supported=["S256"],
            token_endpoint_auth_methods_supported=["client_secret_basic", "client_secret_post"],
            claims_supported=["sub", "iss", "aud", "exp", "iat", "nonce", "preferred_username", "name",
                              "email", "groups"])

    @app.get("/jwks")
    def jwks():
        return jsonify(KeySet([provider.key]).as_dict(private=False))

    @app.route("/authorize", methods=["GET", "POST"])
    def authorize():
        try:
            grant = server.get_consent_grant(end_user=None)
        except OAuth2Error as error:   # redirected back to the client when its redirect URI is known
            return server.handle_error_response(None, error)
        if request.method == "GET":
            return _login_form()
        if "cancel" in request.form:
            return server.create_authorization_response(grant=grant, grant_user=None)
        user = provider.users.get(request.form.get("username", ""))
        password = request.form.get("password", "")
        if user is None or not hmac.compare_digest(password.encode(), user.password.encode()):
            return _login_form("Wrong user name or password.", 401)
        grant = server.get_consent_grant(end_user=user)
        return server.create_authorization_response(grant=grant, grant_user=user)

    @app.post("/token")
    def token():
        return server.create_token_response()

    @app.route("/userinfo", methods=["GET", "POST"])
    @require_oauth("openid")
    def userinfo():
        return jsonify(provider.users[current_token.user].userinfo())

    return app


def _save_token(provider: Provider, token: dict, req) -> None:
    with provider.lock:
        provider.tokens[token["access_token"]] = Token(
            client_id=req.client.get_client_id(), user=req.user.name, scope=token.get("scope", ""),
            expires_at=time.time() + token.get("expires_in", 3600))


def _login_form(error: str = "", status: int = 200) -> Response:
    # the form posts back to /authorize with the same query, so the request is validated again
    action = "/authorize?" + urlencode(list(request.args.items(multi=True)))
    alert = f'<p class="error" role="alert">{escape(error)}</p>' if error else ""
    html = (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Test provider sign-in</title>'
            f'</head><body><h1>Test provider</h1>{alert}<form method="post" action="{escape(action)}">'
            '<label>User name <input name="username" autocomplete="username"></label>'
            '<label>Password <input name="password" type="password"></label>'
            '<button type="submit" name="login">Sign in</button>'
            '<button type="submit" name="cancel">Cancel</button></form></body></html>')
    return Response(html, status, mimetype="text/html")


class ProviderProcess:
    """This module run in a subprocess: ``issuer`` once its discovery document answers."""

    def __init__(self, users: Path, client_id: str, client_secret: str, redirect_uris: list[str],
                 port: int = 0) -> None:
        self.log = users.with_name(f"provider-{port}-{time.monotonic_ns()}.log")
        command = [sys.executable, __file__, "--port", str(port), "--users", str(users),
                   "--client-id", client_id, "--client-secret", client_secret]
        command += [arg for uri in redirect_uris for arg in ("--redirect-uri", uri)]
        with open(self.log, "wb") as log:   # a file, not a pipe: a full pipe would stall it
            self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=log)
        try:
            self.issuer = self._wait_until_up()
        except BaseException:
            self.stop()
            raise

    def _wait_until_up(self) -> str:
        import requests

        found: list[str] = []   # its first line names the issuer (the port is chosen by the OS)
        reader = threading.Thread(target=lambda: found.append(self.process.stdout.readline().decode()), daemon=True)
        reader.start()
        reader.join(timeout=30)
        match = re.match(r"listening on (\S+)", found[0] if found else "")
        for _ in range(600 if match else 0):
            try:
                if requests.get(f"{match.group(1)}/.well-known/openid-configuration", timeout=2).ok:
                    return match.group(1)
            except requests.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError(f"the test provider did not start: {self.log.read_text()[-2000:]}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process.stdout.close()


def main(argv: list[str] | None = None) -> int:
    from werkzeug.serving import make_server

    parser = argparse.ArgumentParser(description="A test OpenID Connect provider (in memory, clear-text passwords).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0: any free port (printed on start)")
    parser.add_argument("--users", required=True, help="JSON file: {name: {password, groups, ...}}")
    parser.add_argument("--client-id", required=True)
    parser.add_argument("--client-secret", required=True)
    parser.add_argument("--redirect-uri", action="append", required=True, help="repeat for several")
    parser.add_argument("--issuer", help="default: http://HOST:PORT")
    args = parser.parse_args(argv)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)   # no line per request
    # the issuer names the port, which is known once the socket is bound: bind, then build
    holder: dict = {}
    httpd = make_server(args.host, args.port, lambda env, start: holder["app"](env, start), threaded=True)
    issuer = args.issuer or f"http://{args.host}:{httpd.server_port}"
    client = Client(args.client_id, args.client_secret, tuple(args.redirect_uri))
    users = json.loads(Path(args.users).read_text(encoding="utf-8"))
    holder["app"] = create_app(Provider(issuer, {n: User.from_json(n, a) for n, a in users.items()}, client))
    print(f"listening on {issuer}", flush=True)
    try:
        httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())

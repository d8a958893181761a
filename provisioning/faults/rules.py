"""Fault rules, request classification and the AWS error bodies the proxy injects.

Everything here is pure (no sockets), so it can be unit-tested with requests botocore
builds but never sends. ``proxy.py`` puts it on the wire.
"""

from __future__ import annotations

import json
import random
import re
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qsl, unquote
from xml.sax.saxutils import escape

from botocore.exceptions import DataNotFoundError, UnknownServiceError
from botocore.session import get_session

from ..exceptions import ConfigError

LATENCY = "latency"
DROP = "drop"


@dataclass(frozen=True)
class ErrorFault:
    """An AWS error answer: status, error code, message."""

    status: int
    code: str
    message: str


# One code per fault for every service, so a chaos assertion reads the same everywhere.
ERROR_FAULTS: dict[str, ErrorFault] = {
    "slowdown": ErrorFault(503, "SlowDown", "Please reduce your request rate. (injected fault)"),
    "throttling": ErrorFault(400, "ThrottlingException", "Rate exceeded (injected fault)"),
    "internal-error": ErrorFault(500, "InternalError", "We encountered an internal error. (injected fault)"),
    "access-denied": ErrorFault(403, "AccessDenied", "Access Denied (injected fault)"),
}
FAULTS: tuple[str, ...] = (LATENCY, *ERROR_FAULTS, DROP)

# Protocol families that decide what an error body looks like.
S3 = "s3"  # <Error><Code>…</Code></Error>
QUERY = "query"  # <ErrorResponse><Error>…</Error><RequestId>…</RequestId></ErrorResponse>
JSON = "json"  # {"__type": …} (awsJson 1.0/1.1 and rest-json alike)

_CREDENTIAL_SCOPE = re.compile(r"Credential=[^/,\s]+/\d{8}/[^/,\s]+/([^/,\s]+)/aws4_request")


@dataclass(frozen=True)
class FaultRule:
    """When to inject which fault.

    Every non-None selector (``service``, ``operation``, ``bucket``) must equal the request's;
    ``bucket`` only ever matches S3 requests. ``until`` is a ``time.time()`` deadline after
    which the rule stops matching. ``latency_s`` delays any fault: for ``latency`` the
    request is then forwarded, for the others the error (or the dropped connection) comes late.
    """

    fault: str
    service: str | None = None
    operation: str | None = None
    bucket: str | None = None
    probability: float = 1.0
    latency_s: float = 0.0
    until: float | None = None
    name: str = ""

    def __post_init__(self) -> None:
        if self.fault not in FAULTS:
            raise ConfigError(f"unknown fault {self.fault!r}: choose one of {', '.join(FAULTS)}")
        if not 0.0 <= self.probability <= 1.0:
            raise ConfigError(f"fault probability {self.probability!r} is outside [0, 1]")
        if self.latency_s < 0:
            raise ConfigError(f"fault latency_s {self.latency_s!r} is negative")
        if self.fault == LATENCY and self.latency_s == 0:
            raise ConfigError("a latency fault needs latency_s > 0")

    def lasting(self, seconds: float) -> FaultRule:
        """A copy that expires ``seconds`` from now."""
        return replace(self, until=time.time() + seconds)

    def active(self, now: float | None = None) -> bool:
        return self.until is None or (time.time() if now is None else now) < self.until

    def selects(self, request: RequestInfo) -> bool:
        """Whether the selectors match, ignoring expiry and probability."""
        if self.service is not None and self.service != request.service:
            return False
        if self.operation is not None and self.operation != request.operation:
            return False
        return self.bucket is None or (request.service == "s3" and self.bucket == request.bucket)

    def matches(self, request: RequestInfo, now: float | None = None, rng: random.Random | None = None) -> bool:
        """Selectors match, the rule has not expired, and a random draw falls under ``probability``."""
        if not self.active(now) or not self.selects(request):
            return False
        return self.probability >= 1.0 or (rng or random).random() < self.probability

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FaultRule:
        """Build from JSON-like data; unknown keys or wrong types are a ConfigError."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown fault rule field(s) {', '.join(unknown)}: expected {', '.join(sorted(known))}")
        if "fault" not in data:
            raise ConfigError("a fault rule needs a 'fault'")
        for key in ("fault", "name"):
            if key in data and not isinstance(data[key], str):
                raise ConfigError(f"fault rule field {key!r} must be a string, not {data[key]!r}")
        for key in ("service", "operation", "bucket"):
            if data.get(key) is not None and not isinstance(data[key], str):
                raise ConfigError(f"fault rule field {key!r} must be a string or null, not {data[key]!r}")
        for key in ("probability", "latency_s", "until"):
            value = data.get(key)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
                raise ConfigError(f"fault rule field {key!r} must be a number, not {value!r}")
        if data.get("probability", 0) is None or data.get("latency_s", 0) is None:
            raise ConfigError("fault rule fields 'probability' and 'latency_s' cannot be null")
        return cls(**data)


@dataclass(frozen=True)
class RequestInfo:
    """What a request is: service (SigV4 scope), operation, S3 bucket, and error protocol."""

    service: str | None
    operation: str | None
    bucket: str | None = None
    protocol: str = QUERY


@dataclass(frozen=True)
class ErrorResponse:
    status: int
    headers: dict[str, str]
    body: bytes


def error_response(fault: str, request: RequestInfo, request_id: str | None = None) -> ErrorResponse:
    """The answer AWS would give for ``fault``, in the shape botocore parses for this protocol."""
    spec = ERROR_FAULTS[fault]
    rid = request_id or uuid.uuid4().hex.upper()
    if request.protocol == JSON:
        body = json.dumps({"__type": spec.code, "message": spec.message}).encode()
        headers = {"Content-Type": "application/x-amz-json-1.1", "x-amzn-ErrorType": spec.code, "x-amzn-RequestId": rid}
    elif request.protocol == S3:
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Error><Code>{spec.code}</Code><Message>{escape(spec.message)}</Message>"
            f"<RequestId>{rid}</RequestId><HostId>{rid}</HostId></Error>"
        ).encode()
        headers = {"Content-Type": "application/xml", "x-amz-request-id": rid, "x-amz-id-2": rid}
    else:
        kind = "Sender" if spec.status < 500 else "Receiver"
        body = (
            f"<ErrorResponse><Error><Type>{kind}</Type><Code>{spec.code}</Code>"
            f"<Message>{escape(spec.message)}</Message></Error><RequestId>{rid}</RequestId></ErrorResponse>"
        ).encode()
        headers = {"Content-Type": "text/xml", "x-amzn-RequestId": rid}
    return ErrorResponse(spec.status, headers, body)


# S3 sub-resources, checked in this order; values are the operation-name stems.
_S3_OBJECT_SUBRESOURCES = {
    "tagging": "ObjectTagging",
    "acl": "ObjectAcl",
    "retention": "ObjectRetention",
    "legal-hold": "ObjectLegalHold",
    "attributes": "ObjectAttributes",
}
_S3_BUCKET_SUBRESOURCES = {
    "versioning": "BucketVersioning",
    "tagging": "BucketTagging",
    "policy": "BucketPolicy",
    "notification": "BucketNotificationConfiguration",
    "acl": "BucketAcl",
    "lifecycle": "BucketLifecycleConfiguration",
    "encryption": "BucketEncryption",
    "cors": "BucketCors",
    "website": "BucketWebsite",
    "logging": "BucketLogging",
    "replication": "BucketReplication",
    "object-lock": "ObjectLockConfiguration",
    "ownershipControls": "BucketOwnershipControls",
    "publicAccessBlock": "PublicAccessBlock",
    "location": "BucketLocation",
    "accelerate": "BucketAccelerateConfiguration",
}
# Object request parameters that may legitimately come without a value.
_S3_OBJECT_PARAMS = {"versionId", "partNumber", "response-content-type", "x-id"}
_VERBS = {"GET": "Get", "PUT": "Put", "DELETE": "Delete"}


def _s3_operation(method: str, bucket: str | None, key: str | None, query: dict[str, str], has_copy: bool) -> str:
    if bucket is None:
        return "ListBuckets" if method == "GET" else f"{method} service"
    if key:
        return _s3_object_operation(method, query, has_copy)
    return _s3_bucket_operation(method, query)


def _s3_object_operation(method: str, query: dict[str, str], has_copy: bool) -> str:
    if "uploadId" in query:
        if method == "PUT" and "partNumber" in query:
            return "UploadPartCopy" if has_copy else "UploadPart"
        named = {"GET": "ListParts", "POST": "CompleteMultipartUpload", "DELETE": "AbortMultipartUpload"}
        if method in named:
            return named[method]
    if method == "POST":
        for sub, operation in (("uploads", "CreateMultipartUpload"), ("restore", "RestoreObject")):
            if sub in query:
                return operation
        if "select" in query:
            return "SelectObjectContent"
    for sub, stem in _S3_OBJECT_SUBRESOURCES.items():
        if sub in query:
            return f"{_VERBS[method]}{stem}" if method in _VERBS else f"{method} object?{sub}"
    unknown = _unknown_subresource(query, _S3_OBJECT_PARAMS)
    if unknown:
        return f"{method} object?{unknown}"
    plain = {
        "GET": "GetObject",
        "HEAD": "HeadObject",
        "PUT": "CopyObject" if has_copy else "PutObject",
        "DELETE": "DeleteObject",
    }
    return plain.get(method, f"{method} object")


def _s3_bucket_operation(method: str, query: dict[str, str]) -> str:
    if method == "GET":
        if query.get("list-type") == "2":
            return "ListObjectsV2"
        if "versions" in query:
            return "ListObjectVersions"
        if "uploads" in query:
            return "ListMultipartUploads"
    if method == "POST" and "delete" in query:
        return "DeleteObjects"
    for sub, stem in _S3_BUCKET_SUBRESOURCES.items():
        if sub in query:
            return f"{_VERBS[method]}{stem}" if method in _VERBS else f"{method} bucket?{sub}"
    unknown = _unknown_subresource(query, set())
    plain = {"GET": "ListObjects", "HEAD": "HeadBucket", "PUT": "CreateBucket", "DELETE": "DeleteBucket"}
    if unknown or method not in plain:
        return f"{method} bucket?{unknown}" if unknown else f"{method} bucket"
    return plain[method]


def _unknown_subresource(query: dict[str, str], parameters: set[str]) -> str:
    """The first value-less query key (``?torrent``): a sub-resource this table does not name."""
    return next((key for key, value in sorted(query.items()) if not value and key not in parameters), "")


@dataclass(frozen=True)
class _RestRoute:
    operation: str
    method: str
    segments: tuple[str, ...]  # literal text, "{}" one label, "{+}" the greedy rest
    query: tuple[str, ...]  # literal query keys the URI requires

    def score(self, method: str, segments: list[str], query: Mapping[str, str]) -> int:
        """How specifically this route matches (literals matched), or -1."""
        if method != self.method or any(key not in query for key in self.query):
            return -1
        literals = len(self.query)
        for index, part in enumerate(self.segments):
            if part == "{+}":
                return literals if index < len(segments) else -1
            if index >= len(segments):
                return -1
            if part != "{}":
                if part != segments[index]:
                    return -1
                literals += 1
        return literals if len(segments) == len(self.segments) else -1


@lru_cache(maxsize=32)
def _service_model(service: str) -> tuple[str, tuple[_RestRoute, ...]] | None:
    """(protocol, REST routes) from botocore's model of ``service``; None when botocore has no model."""
    try:
        model = get_session().get_service_model(service)
    except (UnknownServiceError, DataNotFoundError):
        return None
    routes: list[_RestRoute] = []
    if model.protocol in ("rest-json", "rest-xml"):
        for name in model.operation_names:
            http = model.operation_model(name).http
            path, _, query = str(http.get("requestUri", "/")).partition("?")
            segments = tuple(
                "{+}" if part.endswith("+}") else "{}" if part.startswith("{") else part
                for part in path.strip("/").split("/")
                if part
            )
            keys = tuple(k for k, _ in parse_qsl(query, keep_blank_values=True))
            routes.append(_RestRoute(name, str(http.get("method", "GET")), segments, keys))
    return str(model.protocol), tuple(routes)


class RequestClassifier:
    """Names the service, operation and bucket of a signed AWS request.

    Service: the SigV4 credential scope. S3: method + path-style URL + query + headers.
    JSON protocols: ``X-Amz-Target``. Query protocols: ``Action`` from the form body or query.
    Other REST services (Lambda): the route in botocore's model that matches most literally.
    """

    def classify(
        self, method: str, path: str, query: str, headers: Mapping[str, str], body: bytes = b""
    ) -> RequestInfo:
        lowered = {k.lower(): v for k, v in headers.items()}
        params = dict(parse_qsl(query, keep_blank_values=True))
        service = self.service(lowered, params)
        method = method.upper()
        if service == "s3":
            bucket, key = self._s3_path(path)
            operation = _s3_operation(method, bucket, key, params, "x-amz-copy-source" in lowered)
            return RequestInfo("s3", operation, bucket, S3)
        target = lowered.get("x-amz-target")
        content_type = lowered.get("content-type", "")
        if target or content_type.startswith("application/x-amz-json"):
            return RequestInfo(service, target.rpartition(".")[2] if target else None, None, JSON)
        if content_type.startswith("application/x-www-form-urlencoded") or "Action" in params:
            form = dict(parse_qsl(body.decode("utf-8", "replace"))) if body else {}
            return RequestInfo(service, form.get("Action") or params.get("Action"), None, QUERY)
        model = _service_model(service) if service else None
        if model is None:
            return RequestInfo(service, None, None, QUERY)
        protocol, routes = model
        segments = [part for part in path.split("/") if part]
        best = max(((route.score(method, segments, params), route.operation) for route in routes), default=(-1, ""))
        operation = best[1] if best[0] >= 0 else f"{method} {path}"
        return RequestInfo(service, operation, None, JSON if protocol in ("json", "rest-json") else QUERY)

    @staticmethod
    def service(headers: Mapping[str, str], params: Mapping[str, str]) -> str | None:
        """The signing name from the SigV4 credential scope (header, or query for presigned URLs)."""
        authorization = headers.get("authorization", "")
        found = _CREDENTIAL_SCOPE.search(authorization) or _CREDENTIAL_SCOPE.search(
            "Credential=" + params.get("X-Amz-Credential", "")
        )
        if found:
            return found.group(1)
        # SigV2 survives only in S3 (botocore still presigns S3 URLs with it by default).
        if authorization.startswith("AWS ") or ("AWSAccessKeyId" in params and "Signature" in params):
            return "s3"
        return None

    @staticmethod
    def _s3_path(path: str) -> tuple[str | None, str | None]:
        bucket, _, key = path.lstrip("/").partition("/")
        return (unquote(bucket) or None), (unquote(key) or None)


_DEFAULT_CLASSIFIER = RequestClassifier()


def classify(method: str, path: str, query: str, headers: Mapping[str, str], body: bytes = b"") -> RequestInfo:
    """Module-level shortcut for ``RequestClassifier().classify``."""
    return _DEFAULT_CLASSIFIER.classify(method, path, query, headers, body)


@dataclass
class FaultRuleSet:
    """Thread-safe, ordered rules with ids and one seedable random source.

    ``select`` walks the rules in the order they were added: every matching ``latency``
    rule applies and the walk goes on; the first other matching fault ends it. Rules whose
    ``until`` has passed are dropped, so ``rules()`` lists only the live ones.
    """

    rng: random.Random = field(default_factory=random.Random)
    _rules: dict[str, FaultRule] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _counter: int = 0

    def seed(self, seed: int | None) -> None:
        with self._lock:
            self.rng.seed(seed)

    def add(self, rule: FaultRule) -> str:
        with self._lock:
            self._counter += 1
            rule_id = f"{rule.name or rule.fault}-{self._counter}"
            self._rules[rule_id] = rule
            return rule_id

    def remove(self, rule_id: str) -> bool:
        """True when the rule existed; removing twice is fine (rollbacks repeat)."""
        with self._lock:
            return self._rules.pop(rule_id, None) is not None

    def clear(self) -> int:
        """Remove every rule; returns how many were live."""
        with self._lock:
            self._prune(time.time())
            count = len(self._rules)
            self._rules.clear()
            return count

    def rules(self, now: float | None = None) -> dict[str, FaultRule]:
        with self._lock:
            self._prune(time.time() if now is None else now)
            return dict(self._rules)

    def select(self, request: RequestInfo, now: float | None = None) -> list[tuple[str, FaultRule]]:
        now = time.time() if now is None else now
        chosen: list[tuple[str, FaultRule]] = []
        with self._lock:
            self._prune(now)
            for rule_id, rule in self._rules.items():
                if rule.matches(request, now, self.rng):
                    chosen.append((rule_id, rule))
                    if rule.fault != LATENCY:
                        break
        return chosen

    def _prune(self, now: float) -> None:
        for rule_id in [rule_id for rule_id, rule in self._rules.items() if not rule.active(now)]:
            del self._rules[rule_id]

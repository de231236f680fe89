"""Schemathesis hooks for scripts/fuzz.sh --api (loaded through SCHEMATHESIS_HOOKS).

Schemathesis draws the Idempotency-Key header independently of the body, so it sends
one well-formed key (often "0") with different bodies. The order API then answers 422,
as the IETF Idempotency-Key draft asks for a key reused with another payload; that is
state Schemathesis cannot know, and its positive-data check would report it. Each
well-formed key is therefore replaced by a fresh UUID; malformed keys are sent as drawn,
so the 400 for a bad key is still exercised. Key reuse itself is covered by the
producer's idempotency tests.
"""

import re
import uuid

import schemathesis

WELL_FORMED_KEY = re.compile(r"^[\x21-\x7E]([\x20-\x7E]{0,253}[\x21-\x7E])?$")


@schemathesis.hook
def before_call(ctx, case, **kwargs):
    for name, value in list((case.headers or {}).items()):
        if name.lower() == "idempotency-key" and isinstance(value, str) and WELL_FORMED_KEY.match(value):
            case.headers[name] = str(uuid.uuid4())

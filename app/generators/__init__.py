"""Text generators (LLMs) behind one protocol: an OpenAI-compatible HTTP client and an
in-process llama.cpp model, plus the circuit breaker that guards them.

See :mod:`app.generators.base` for the :class:`~app.generators.base.Generator` protocol.
"""

from app.generators.base import (
    Generation,
    Generator,
    GeneratorError,
    GeneratorTimeout,
    GeneratorUnavailable,
    Message,
    Timeouts,
    TokenStream,
    estimate_tokens,
)
from app.generators.breaker import CircuitBreaker

__all__ = [
    "CircuitBreaker",
    "Generation",
    "Generator",
    "GeneratorError",
    "GeneratorTimeout",
    "GeneratorUnavailable",
    "Message",
    "Timeouts",
    "TokenStream",
    "estimate_tokens",
]

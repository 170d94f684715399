"""Grounded answers: prompts and citations, small extractive answers, routing, the pipeline.

* :mod:`app.answers.prompt`: passages numbered [1]..[n], packed into the context budget.
* :mod:`app.answers.citations`: citation markers parsed and validated.
* :mod:`app.answers.small`: small-mode answers (extractive reader or best sentence).
* :mod:`app.answers.router`: per-request routing, the LLM slot, the hardware check.
* :mod:`app.answers.service`: the ask pipeline used by the HTTP service and ``tandem ask``.
"""

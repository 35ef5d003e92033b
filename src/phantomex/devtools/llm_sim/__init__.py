"""A local LLM server simulator speaking the documented Ollama and OpenAI chat APIs.

Endpoints (responses shaped like the fixtures in ``fixtures/``):

* Ollama: ``GET /``, ``GET /api/version``, ``GET /api/tags``, ``GET /api/ps``,
  ``POST /api/chat`` (non-streaming; ``format`` schema or ``"json"``, ``tools``, ``think``,
  ``keep_alive``, ``options.seed/temperature/num_predict``), ``POST /api/generate``
  (the documented load/unload call: no prompt, ``keep_alive: 0`` unloads).
* OpenAI: ``GET /v1/models``, ``POST /v1/chat/completions`` (``response_format`` incl.
  llama-cpp-python's ``json_object`` + ``schema`` and vLLM's ``guided_json``, ``tools``,
  ``max_tokens``/``max_completion_tokens``, ``usage``), errors as ``{"error": {...}}``.
* Streaming (``stream: true``): Ollama's NDJSON parts, OpenAI's server-sent
  ``chat.completion.chunk`` events (usage in a last chunk when ``stream_options.include_usage``
  and ``stream_usage``); a client that goes away mid-stream is counted in ``cancelled``.
* A model's ``context_window``: OpenAI requests that do not fit get llama-cpp-python's HTTP 400
  ``context_length_exceeded``; Ollama's ``POST /api/show`` and llama-server's ``GET /props``
  report it.
* Control: ``GET /sim/stats``, ``POST /sim/reset``, ``POST /sim/script``, ``POST /sim/config``,
  ``GET /sim/requests``.

Model accounting: a request for a model that is not loaded waits ``load_seconds`` and loads it
(``max_loaded`` evicts the least recently used); ``keep_alive`` sets the expiry shown by
``/api/ps`` and ``keep_alive: 0`` unloads after the reply. ``max_parallel`` requests are served
at a time (0: unlimited), the rest queue in FIFO order like on a single GPU.

The default reply is the deterministic decision of :mod:`.behaviour`. Scripted replies per model
(``POST /sim/script`` or :meth:`SimServer.script`) are consumed first, one per request; an item is

* a string: the raw content (prose around JSON, ``<think>`` blocks, fences, truncated JSON...);
* ``{"status": 429|500|400|..., "body": <json or text>, "headers": {...}}``: an error reply
  (default bodies in the documented shapes of the API called);
* ``{"delay": seconds}``: wait, then use the next item (or the default reply);
* ``{"stream_seconds": seconds}``: a streamed reply takes that long to generate (spread over its
  chunks), combined with any other reply item;
* ``{"disconnect": true}``: close the connection without a response;
* ``{"content": ..., "thinking": ..., "refusal": ..., "finish_reason": ...,
  "tool_calls": [{"name": ..., "arguments": {...} or "raw string", "id": ...}]}``, any subset
  (``{"refusal": "..."}`` is an OpenAI refusal; ``{"finish_reason": "length", "content": "{\\""}``
  a truncated reply). ``delay`` may be combined with any item.

Run it: ``phantomex llm-sim`` or ``python -m phantomex.devtools.llm_sim --port 11434
[--latency 0.2] [--load-seconds 2] [--models a,b,c]``; in tests:
``with SimServer(models=[...]) as sim: sim.url ...`` (:mod:`.server`).

Modules: :mod:`.protocol` (wire formats), :mod:`.state` (models, scripts, counters),
:mod:`.handlers` (request handling), :mod:`.app` (routes), :mod:`.server` (serving),
:mod:`.behaviour` (the deterministic decisions), :mod:`.connection` (dropping connections).
"""

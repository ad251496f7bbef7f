"""Chat: conversations, and each user turn run as an agent run.

- :mod:`~jarvis.services.chat.conversations` — ``ConversationService``: list, create, rename,
  switch model, delete, history, the chat page's overview.
- :mod:`~jarvis.services.chat.runs` — ``RunService``: admission of a turn (message, rate,
  budget, concurrency; the run row and the user's message in one transaction).
- :mod:`~jarvis.services.chat.engine` — ``RunEngine``: the tool loop of one run, as events.
- :mod:`~jarvis.services.chat.tool_calls` — ``ToolCallExecutor``: one tool call, checked,
  run, bounded and recorded.
- :mod:`~jarvis.services.chat.recovery` — heartbeats and stale-run recovery.
- :mod:`~jarvis.services.chat.events` — the run's typed events (the future SSE stream).
- :mod:`~jarvis.services.chat.views` / :mod:`~jarvis.services.chat.ports` — what pages get,
  and what the run needs from other capabilities.
"""

"""The poll, on top of the runtime: the model, its policy, the fused poller, many tasks.

`model` (``server_timer``, ``until_terminal``), `policy` (``PollPolicy``, ``Retry``),
`parts` (a poll's optional parts, one per policy element or option), `fused` (``poll``,
the model fused for speed) and `many` (``poll_many``).
"""

"""The report contract shared by the agent and the collector (see :mod:`contract.report`)."""

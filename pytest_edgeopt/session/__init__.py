"""The run: one EdgeSession per pytest run, and what each pytest hook asks of it.

- `edge_session.py`: EdgeSession, the state of the run (rows, collection, baselines, the end of
  the run, the xdist merge), in `config.stash` under `session_key`.
- `configure.py`: settings, platform, runtimes and transport decided once, the session built.
- `fixtures.py`: the plugin's fixtures (edge_model, edge_runtime, edge_runner) and its report hook.
- `measuring.py`: the Measurer protocol and the host's measurer; `mcu.py` the microcontroller's.
- `runner.py` (edge_runner.measure), `gate.py` (a row judged), `assemble.py` (Result -> Measurement),
  `parametrize.py` (markers -> parameters), `progress.py` (progress lines).

Nothing is imported here, so importing one of these modules does not import the others.
"""

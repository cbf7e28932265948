"""SIGTERM that lands inside a ``__del__`` (LiteRT's ``Interpreter.__del__`` frees the native interpreter) still stops
the command: an exception raised there would be printed as "Exception ignored" and the work would go on."""

from __future__ import annotations

import subprocess
import sys
import textwrap

CHILD = textwrap.dedent("""
    import os, signal, sys, time
    from edgeq import cli

    class Slow:
        def __del__(self):
            os.kill(os.getpid(), signal.SIGTERM)  # handled while this finalizer runs
            time.sleep(0.2)

    def command(args, ui):
        obj = Slow()
        del obj
        for _ in range(100):  # two seconds of further "work": SIGTERM must stop it
            time.sleep(0.02)
        print("FINISHED")
        return 0

    cli.build_parser = lambda: _parser(command)

    def _parser(func):
        import argparse
        p = argparse.ArgumentParser()
        p.add_argument("--debug", action="store_true")
        p.set_defaults(func=func)
        return p

    sys.exit(cli.main([]))
""")


def test_sigterm_inside_a_finalizer_still_terminates() -> None:
    done = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, timeout=60)
    assert "FINISHED" not in done.stdout, "SIGTERM was swallowed by __del__ and the command ran to the end"
    assert done.returncode == 143, done.stderr
    assert "Exception ignored" not in done.stderr
    assert done.stderr.strip().splitlines() == ["Terminated: stopped by SIGTERM; no partial output was left behind"]

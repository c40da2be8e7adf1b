"""python inline_program.py PROJECT_DIR pulumi ARGS... — run a Pulumi CLI command on a Python project
whose program is served by the Python SDK's own language server (an Automation API inline program).

Why: the real CLI runs a `runtime: python` project through the pulumi-language-python plugin, which
the Go module proxy does not serve (see toolchain/versions), so it cannot be built here. The Python
SDK carries a language server of its own for inline programs; this does what `pulumi.automation`'s
`Stack.up`/`preview` do (pulumi/automation/_stack.py@3.272.0: a grpc server with `LanguageServer`,
the CLI started with `--client=127.0.0.1:PORT --exec-kind inline`), with the project's own
`__main__.py` as the program. Everything else — the engine, the providers, the state — is the CLI's.

The CLI's stdout is this process's stdout; the program's own prints go to stderr, so they cannot mix
into the CLI's JSON. SIGINT is passed on to the CLI (which then cancels as it does on Ctrl-C), and
this process keeps serving the program until the CLI exits.
"""

from __future__ import annotations

import os
import runpy
import signal
import subprocess
import sys
from concurrent import futures
from pathlib import Path

import grpc
from pulumi.automation._server import LanguageServer
from pulumi.runtime._grpc_settings import _GRPC_CHANNEL_OPTIONS
from pulumi.runtime.proto import language_pb2_grpc


def main(argv: list[str]) -> int:
    project, command = Path(argv[0]).resolve(), argv[1:]
    sys.path.insert(0, str(project))

    def program() -> None:
        runpy.run_path(str(project / "__main__.py"), run_name="__main__")

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4), options=_GRPC_CHANNEL_OPTIONS)
    language_pb2_grpc.add_LanguageRuntimeServicer_to_server(LanguageServer(program), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    cli_stdout = os.dup(1)
    os.dup2(2, 1)  # the program's prints: never into the CLI's JSON
    child = subprocess.Popen([*command, f"--client=127.0.0.1:{port}", "--exec-kind", "inline"],
                             stdout=cli_stdout, cwd=project)
    signal.signal(signal.SIGINT, lambda *_: child.send_signal(signal.SIGINT))
    signal.signal(signal.SIGTERM, lambda *_: child.send_signal(signal.SIGTERM))
    try:
        return child.wait()
    finally:
        server.stop(0)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

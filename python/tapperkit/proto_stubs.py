"""tapper.v1 Python stubs (grpcio), generated from proto/ with grpc_tools.protoc at run
time, for the tests and the benchmark drivers alike."""

import sys
from pathlib import Path

PROTO_DIR = Path(__file__).resolve().parents[2] / "proto"


def generate(out):
    """Generates the stubs into the directory `out`, puts it on sys.path and returns the
    modules (hub_pb2, hub_pb2_grpc, event_pb2)."""
    from grpc_tools import protoc
    import grpc_tools

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    well_known = Path(grpc_tools.__file__).parent / "_proto"
    args = ["protoc", f"-I{PROTO_DIR}", f"-I{well_known}", f"--python_out={out}",
            f"--grpc_python_out={out}", "tapper/v1/event.proto", "tapper/v1/hub.proto"]
    if protoc.main(args) != 0:
        raise RuntimeError(f"protoc failed: {args}")
    for d in (out / "tapper", out / "tapper" / "v1"):
        (d / "__init__.py").touch()
    sys.path.insert(0, str(out))
    from tapper.v1 import hub_pb2, hub_pb2_grpc, event_pb2
    return hub_pb2, hub_pb2_grpc, event_pb2

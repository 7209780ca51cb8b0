# Sourced by the examples: the build directory, the data, an output directory.
set -euo pipefail
B=$(cd "${1:-build}" && pwd)
cd "$(dirname "$0")/../.."
DATA=/usr/share/datasets/fashion-mnist
OUT=out/apps
mkdir -p "$OUT"
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3

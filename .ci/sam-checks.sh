#!/usr/bin/env bash
# SAM checks: validate + lint the templates (template.yaml and its nested monitoring
# application, monitoring.yaml), scan them with checkov, then build them (no container;
# the build holds the nested template too). Any finding fails the run.
#
#   bash .ci/sam-checks.sh          (from the repository root, or anywhere)
#   PY313_DIR=/path/to/python-3.13/bin bash .ci/sam-checks.sh
#
# SAM CLI lives in its own virtualenv (.venv-sam, made with python3: 3.11-3.13) because it pins
# boto3/pydantic versions that clash with the application's own venv; checkov
# has its own (.venv-checkov, see .ci/checkov.sh) for the same reason.
# pip runs with -qq (errors only): this keeps unrelated index warnings out.
# Nothing here talks to AWS: region and dummy credentials are set below.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

SAM_CLI_VERSION="1.170.0"
CFN_LINT_VERSION="1.58.0"
VENV="$ROOT/.venv-sam"
PINS="aws-sam-cli==${SAM_CLI_VERSION} cfn-lint==${CFN_LINT_VERSION}"
# Python for the function/layer runtime (python3.13), used by `sam build`: found
# at build time (step 4), from PY313_DIR, PATH or pyenv; never a fixed path.
PY313_DIR="${PY313_DIR:-}"

log() { printf '\n==> %s\n' "$*"; }
die() { printf 'ERROR: %s\n' "$*" >&2; exit 1; }

start=$SECONDS

# --- 1. SAM CLI virtualenv --------------------------------------------------
if [[ ! -x "$VENV/bin/sam" || ! -x "$VENV/bin/cfn-lint" || "$(cat "$VENV/.pins" 2>/dev/null)" != "$PINS" ]]; then
  log "Creating $VENV with $PINS"
  command -v python3 >/dev/null || die "python3 (3.11-3.13) not found"
  [[ -d "$VENV" ]] || python3 -m venv "$VENV"
  "$VENV/bin/python" -m pip install -qq --disable-pip-version-check --upgrade pip
  # shellcheck disable=SC2086
  "$VENV/bin/python" -m pip install -qq --disable-pip-version-check $PINS
  echo "$PINS" > "$VENV/.pins"
else
  log "Reusing $VENV ($PINS)"
fi
SAM="$VENV/bin/sam"
CFN_LINT="$VENV/bin/cfn-lint"

# Never reach AWS: fixed region, dummy credentials, no profile/config files,
# no instance metadata, no telemetry.
export AWS_DEFAULT_REGION=eu-west-1 AWS_REGION=eu-west-1
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_SESSION_TOKEN=testing
export AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null
export AWS_EC2_METADATA_DISABLED=true
export SAM_CLI_TELEMETRY=0
unset AWS_PROFILE AWS_DEFAULT_PROFILE

# --- 2. Validate and lint -----------------------------------------------------
log "sam validate --lint"
"$SAM" validate --lint --template-file template.yaml

# sam validate lints template.yaml only; the nested application's template is plain
# CloudFormation (no Transform), linted here with its parent.
log "cfn-lint template.yaml monitoring.yaml"
"$CFN_LINT" template.yaml monitoring.yaml

# --- 3. Security scan -----------------------------------------------------------
bash "$ROOT/.ci/checkov.sh"

# --- 4. Build (no container) --------------------------------------------------
# `sam build` must find a working python3.13 on PATH. A pyenv shim may exist
# without the version being active, so test that it actually runs. Order:
# PY313_DIR (explicit), then python3.13 on PATH, then pyenv's newest 3.13.
py313_works() { "${1:-python3.13}" -c 'import sys; assert sys.version_info[:2] == (3, 13)' >/dev/null 2>&1; }
if [[ -n "$PY313_DIR" ]]; then
  py313_works "$PY313_DIR/python3.13" || die "PY313_DIR=$PY313_DIR has no working python3.13"
  export PATH="$PY313_DIR:$PATH"
elif ! py313_works; then
  pyenv_prefix=""
  if command -v pyenv >/dev/null 2>&1; then
    pyenv_prefix="$(pyenv prefix 3.13 2>/dev/null || true)"
    if [[ -z "$pyenv_prefix" ]]; then
      latest="$(pyenv latest 3.13 2>/dev/null || true)"
      [[ -z "$latest" ]] || pyenv_prefix="$(pyenv prefix "$latest" 2>/dev/null || true)"
    fi
  fi
  if [[ -n "$pyenv_prefix" ]] && py313_works "$pyenv_prefix/bin/python3.13"; then
    export PATH="$pyenv_prefix/bin:$PATH"
  else
    die "sam build needs python3.13: none works on PATH and pyenv has no 3.13. Install Python 3.13, or set PY313_DIR to the directory that holds its python3.13."
  fi
fi
# The layer's build (layers/preflight/Makefile) runs in a scratch directory, where a
# pyenv shim may not resolve: it is handed the interpreter itself.
PYTHON313="$(python3.13 -c 'import sys; print(sys.executable)')"
export PYTHON313
# The layer's requirements.txt is a hash-pinned lock (`make lock`) with the hashes
# of every file of each pinned version, arm64 wheels included. `sam build` alone
# would check only its first, host-platform pip download against them: it fetches
# the arm64 wheels of native packages in a second pip call, by name, unchecked.
# So the wheels are fetched here first, both kinds, each checked against the lock,
# and `sam build` may install from nothing else (no index, only this wheelhouse).
WHEELS="$ROOT/.aws-sam/wheelhouse"
LAYER_LOCK=layers/preflight/requirements.txt
log "Fetching the layer's wheels, hash-checked against $LAYER_LOCK"
rm -rf "$WHEELS"
python3.13 -m pip download -qq --disable-pip-version-check --require-hashes \
  -r "$LAYER_LOCK" --dest "$WHEELS"
python3.13 -m pip download -qq --disable-pip-version-check --require-hashes \
  -r "$LAYER_LOCK" --dest "$WHEELS" --only-binary=:all: \
  --platform manylinux2014_aarch64 --platform manylinux_2_28_aarch64 \
  --implementation cp --python-version 3.13 --abi cp313 --abi abi3 --abi none
printf '  %s files in %s\n' "$(find "$WHEELS" -type f | wc -l)" "${WHEELS#"$ROOT"/}"

log "sam build (python3.13 = $(command -v python3.13), target arm64, from the wheelhouse only)"
# cached/parallel come from samconfig.toml; output goes to .aws-sam/ (gitignored).
PIP_NO_INDEX=1 PIP_FIND_LINKS="$WHEELS" \
  "$SAM" build --template-file template.yaml --build-dir .aws-sam/build

# --- Summary --------------------------------------------------------------------
BUILD=.aws-sam/build
[[ -d "$BUILD/PreflightLayer/python/export_preflight" ]] || die "layer build lacks python/export_preflight"
for function in PreflightFunction ReadinessFunction ReadinessSweepFunction; do
  # sam build skips a missing CodeUri with a notice only: check every function landed.
  [[ -f "$BUILD/$function/app.py" ]] || die "the $function build lacks app.py"
done
# The nested monitoring application is built next to the functions, and the built
# template points at that copy (what `sam deploy` uploads as the nested stack's template).
[[ -f "$BUILD/MonitoringApp/template.yaml" ]] || die "the build lacks the nested MonitoringApp template"
grep -Eq '^ *Location: +["'"'"']?MonitoringApp/template\.yaml' "$BUILD/template.yaml" \
  || die "the built template.yaml does not point MonitoringApp at MonitoringApp/template.yaml"
# Native extensions must target the Lambda architecture (arm64 / aarch64).
wrong_arch="$(find "$BUILD/PreflightLayer" -name '*.so' | grep -E 'x86_64|amd64' || true)"
[[ -z "$wrong_arch" ]] || die "x86_64 native extensions in the arm64 layer: $wrong_arch"

# Every module of the layer comes compiled (a cold start cannot write to /opt).
uncompiled="$("$VENV/bin/python" - "$BUILD/PreflightLayer/python" <<'PYEOF'
import pathlib, sys
for source in pathlib.Path(sys.argv[1]).rglob("*.py"):  # Lambda's python3.13 reads cpython-313
    if not (source.parent / "__pycache__" / f"{source.stem}.cpython-313.pyc").is_file():
        print(source)
PYEOF
)"
[[ -z "$uncompiled" ]] || die "layer modules without bytecode: $(echo "$uncompiled" | head -3)"
printf '  bytecode: every one of %s modules\n' "$(find "$BUILD/PreflightLayer/python" -name '*.py' | wc -l)"

# The layer holds exactly the lock's packages at the lock's versions.
"$VENV/bin/python" - "$BUILD/PreflightLayer/python" layers/preflight/requirements.txt <<'PYEOF' || die "the layer build does not match layers/preflight/requirements.txt"
import re, sys
from importlib.metadata import distributions
from packaging.markers import Marker
# The Lambda's environment: markers in the (universal) lock are judged for it.
LAMBDA = {"python_version": "3.13", "python_full_version": "3.13.0", "platform_machine": "aarch64",
          "sys_platform": "linux", "platform_system": "Linux", "os_name": "posix",
          "implementation_name": "cpython", "platform_python_implementation": "CPython"}
norm = lambda n: re.sub(r"[-_.]+", "-", n).lower()
built = {norm(d.metadata["Name"]): d.version for d in distributions(path=[sys.argv[1]])}
locked = {}
for m in re.finditer(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^ ;\\]+) *(?:; *([^\\]+?))? *\\?$", open(sys.argv[2]).read(), re.M):
    if not m[3] or Marker(m[3]).evaluate(LAMBDA):
        locked[norm(m[1])] = m[2]
wrong = {k: (locked.get(k), built.get(k)) for k in locked.keys() | built.keys() if locked.get(k) != built.get(k)}
for name, (want, got) in sorted(wrong.items()):
    print(f"  {name}: lock {want}, layer {got}", file=sys.stderr)
print(f"  layer = lock: {len(built)} packages")
sys.exit(1 if wrong else 0)
PYEOF

log "Build summary"
du -sh "$BUILD/PreflightLayer" "$BUILD/PreflightFunction"
find "$BUILD/PreflightLayer" -name '*.so' -printf '  native: %P\n'
printf 'Done in %ss.\n' "$((SECONDS - start))"
